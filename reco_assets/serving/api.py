"""The recommendations API: FastAPI over a serving store.

`GET /v1/members/{member_id}/recommendations` answers the member's whole payload in one call: the stored
bytes as they are, unless styles were withdrawn since the version was built or `feed` / `limit` ask for
less. `GET /v1/styles/{style_id}/similar` and `/bought-together` answer the style's subclass-brand list,
`POST /v1/baskets/recommendations` what goes with a cart (`item_answers`). Every call reads the store's
current version once and answers from it alone, so a version switch never mixes two versions in one
answer. Handlers are `async`: they read LMDB directly (a memory-mapped lookup of microseconds, cheaper
than a hand-off to a thread pool) and Redis with its asynchronous client (one round trip: the pointer is
cached for a second), so a slow Redis holds no other request, `/healthz` included.
"""

import hashlib
import hmac
import logging
from collections.abc import Awaitable
from functools import partial
from typing import Annotated

import orjson
from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from reco_assets.serving import item_answers, session_answers
from reco_assets.serving.answers import is_lakehouse_id, is_source_id, shape
from reco_assets.serving.event_rules import BadBatch
from reco_assets.serving.intake import EventIntake, take
from reco_assets.serving.rerank import Weights
from reco_assets.serving.schema import (
    Basket,
    BasketList,
    EventBatch,
    EventsAnswer,
    FeedName,
    Namespace,
    Payload,
    StyleList,
)
from reco_assets.serving.sessions import MEMBER as MEMBER_SHOPPER
from reco_assets.serving.sessions import SESSION as SESSION_SHOPPER
from reco_assets.serving.sessions import digest
from reco_assets.serving.store import (
    BOUGHT,
    MEMBER,
    SIMILAR,
    SOURCE,
    STYLE_GROUP,
    STYLE_SOURCE,
    Manifest,
    ServingStore,
    Withdrawn,
)

VERSION_HEADER = "X-Reco-Version"
FALLBACK_HEADER = "X-Reco-Fallback"

log = logging.getLogger(__name__)

IdNamespace = Annotated[
    Namespace,
    Query(description="`lakehouse`: the lakehouse's id (decimal); `source`: the imported data's id."),
]
ItemLimit = Annotated[int, Query(ge=1, le=100, description="At most this many styles.")]
SessionId = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=256,
        description="The shopper's session: its events posted to `/v1/events` re-rank the list.",
    ),
]
COMMON_RESPONSES = {
    304: {"description": "Not modified (If-None-Match matched the ETag)."},
    401: {"description": "Missing or wrong bearer token."},
    503: {"description": "No version is served yet, the served one is gone, or the store does not answer."},
}


def documented(responses: dict[int, dict]) -> dict[int, dict]:
    """A route's responses for the OpenAPI document: its own and those of every `/v1` route, by code."""
    return dict(sorted((responses | COMMON_RESPONSES).items()))


def is_id(text: str, id_namespace: Namespace) -> bool:
    return is_source_id(text) if id_namespace == "source" else is_lakehouse_id(text)


def create_app(
    store: ServingStore,
    tokens: list[str],
    max_age_hours: float,
    intake: EventIntake | None = None,
    weights: Weights | None = None,
) -> FastAPI:
    """The app over `store`; requests to `/v1` need `Authorization: Bearer <one of tokens>`. With `intake`, it
    takes events (`POST /v1/events`) and re-ranks answers by the shopper's session with `weights`."""
    if not tokens:
        raise ValueError("no API token: set RECO_API_TOKENS (comma-separated)")
    accepted = [t.encode() for t in tokens]
    bearer = HTTPBearer(auto_error=False, description="One of the tokens of RECO_API_TOKENS.")

    def accepts(credentials: HTTPAuthorizationCredentials | None) -> bool:
        given = credentials.credentials.encode() if credentials else b""
        # every token compared, each in constant time: the answer's timing says nothing about which is close
        return bool(sum(hmac.compare_digest(given, token) for token in accepted) and credentials)

    async def authorized(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if not accepts(credentials):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    app = FastAPI(
        title="reco_assets recommendations",
        version="1",
        description="Per-member product, brand and category feeds of the latest published day; similar styles, "
        "styles bought together and what goes with a cart.",
    )

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict:
        """The process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], responses={503: {"description": "not ready, with the reason"}})
    async def readyz(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)):
        """Ready when the store opens, a version is served and it is not older than the allowed age. Why the
        store fails (paths, hosts) is logged, and told only to a caller with a bearer token."""
        try:
            manifest = await store.current_async()
        except store.errors as error:
            log.warning("not ready: serving store unavailable: %s", error)
            reason = f"store: {error}" if accepts(credentials) else "serving store unavailable"
            return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)
        if manifest is None:
            return JSONResponse({"status": "unavailable", "reason": "no version served yet"}, status_code=503)
        age = manifest.age_hours()
        body = {"version": manifest.version, "as_of_date": manifest.as_of_date, "age_hours": round(age, 2)}
        if age > max_age_hours:
            reason = f"served version is {age:.1f} h old (more than {max_age_hours} h)"
            return JSONResponse(body | {"status": "stale", "reason": reason}, status_code=503)
        return body | {"status": "ready"}

    async def current() -> Manifest:
        manifest = await store.current_async()
        if manifest is None:
            raise HTTPException(503, "no version served yet")
        return manifest

    async def recent(shopper: str | None) -> list[list]:
        """The shopper's recent events (none without sessions)."""
        if intake is None or shopper is None:
            return []
        try:
            return await intake.sessions.recent_async(shopper)
        except intake.sessions.errors as error:
            raise HTTPException(503, f"session store unavailable: {error}") from error

    async def served(
        request: Request, body: bytes = b"", manifest: Manifest | None = None, entries: list[list] | None = None
    ) -> tuple[Manifest, Withdrawn, dict[str, str]]:
        """The current version (`manifest` when read already), its withdrawn styles, and the answer's headers:
        the version, and an ETag over what the answer depends on (the version, its withdrawn styles, the
        path and query, a request body, the shopper's session `entries`)."""
        manifest = manifest or await current()
        withdrawn = await store.withdrawn_async(manifest.version)
        depends = f"{manifest.version}|{withdrawn.digest}|{request.url.path}|{request.url.query}".encode()
        depends += f"|{digest(entries or [])}".encode()
        if body:
            depends += b"|" + hashlib.blake2b(body, digest_size=16).digest()
        tag = hashlib.blake2b(depends, digest_size=12).hexdigest()
        return manifest, withdrawn, {VERSION_HEADER: manifest.version, "ETag": f'"{tag}"'}

    def not_modified(request: Request, headers: dict[str, str]) -> Response | None:
        if request.headers.get("if-none-match") == headers["ETag"]:
            return Response(status_code=304, headers=headers)
        return None

    async def from_store(answer: Awaitable[Response]) -> Response:
        """`answer`, or 503 with the reason when the store fails."""
        try:
            return await answer
        except store.errors as error:
            raise HTTPException(503, f"serving store unavailable: {error}") from error

    def json_answer(body: dict, headers: dict[str, str]) -> Response:
        if body["fallback"]:
            headers[FALLBACK_HEADER] = "true"
        return Response(content=orjson.dumps(body), media_type="application/json", headers=headers)

    @app.get(
        "/v1/members/{member_id}/recommendations",
        tags=["recommendations"],
        dependencies=[Depends(authorized)],
        response_model=None,
        responses=documented(
            {
                200: {"model": Payload, "description": "The member's payload, or the flagged fallback."},
                422: {"description": "Not a member id of the namespace."},
            }
        ),
    )
    async def recommendations(
        request: Request,
        member_id: str,
        feed: FeedName | None = Query(None, description="Only this feed."),
        limit: int | None = Query(None, ge=1, le=1000, description="At most this many styles per list."),
        id_namespace: IdNamespace = "lakehouse",
    ) -> Response:
        """The member's feeds, from the current version, without styles sold out or ended since it was built.

        A member without recommendations gets the day's most popular styles, with `fallback: true` and the
        `X-Reco-Fallback` header."""
        if not is_id(member_id, id_namespace):
            raise HTTPException(422, f"not a {id_namespace} member id: {member_id!r}")
        return await from_store(member_answer(request, member_id, feed, limit, id_namespace))

    async def member_answer(request: Request, member_id: str, feed, limit, id_namespace) -> Response:
        manifest = await current()
        version = manifest.version
        internal = member_id
        if id_namespace == "source":
            found = await store.get_async(version, SOURCE + member_id.encode())
            internal = found.decode() if found is not None else None
        entries = await recent(MEMBER_SHOPPER + internal if internal is not None else None)
        manifest, withdrawn, headers = await served(request, manifest=manifest, entries=entries)
        if unchanged := not_modified(request, headers):
            return unchanged
        stored = await store.get_async(version, MEMBER + internal.encode()) if internal is not None else None
        fill = None
        if stored is None:
            stored = manifest.fallback
            fill = {"member_id": internal} | ({"member_source_id": member_id} if id_namespace == "source" else {})
            headers[FALLBACK_HEADER] = "true"
        shopper = MEMBER_SHOPPER + (internal or "")
        return await reshaped(stored, shopper, entries, manifest, withdrawn, headers, feed, limit, fill)

    remembered = session_answers.Remembered()

    async def reshaped(stored: bytes, shopper: str, entries, manifest, withdrawn, headers, feed, limit, fill):
        """A payload answered: re-ranked by the `shopper`'s session `entries` when it has any (the styles it
        bought dropped with the withdrawn ones; remembered until their next event), then `shape`d."""
        dropped = withdrawn.style_ids
        if entries:
            key = (manifest.version, shopper, digest(entries))
            found = remembered.get(key)
            if found is None:
                read = partial(store.get_many_async, manifest.version)
                found = await session_answers.member_payload(read, stored, entries, weights)
                remembered.put(key, found)
            stored, session = found
            dropped = dropped | session.bought
        body = shape(stored, dropped, feed, limit, fill)
        return Response(content=body, media_type="application/json", headers=headers)

    @app.get(
        "/v1/sessions/{session_id}/recommendations",
        tags=["recommendations"],
        dependencies=[Depends(authorized)],
        response_model=None,
        responses=documented(
            {
                200: {"model": Payload, "description": "The day's popular styles re-ranked by the session, flagged."},
                422: {"description": "Not a session id (1 to 256 printable characters)."},
            }
        ),
    )
    async def session_recommendations(
        request: Request,
        session_id: str,
        feed: FeedName | None = Query(None, description="Only this feed."),
        limit: int | None = Query(None, ge=1, le=1000, description="At most this many styles per list."),
    ) -> Response:
        """For a shopper without a member id: the day's most popular styles on sale, re-ranked by the events
        the session posted (`/v1/events`), similar styles of what it browsed drawn in. Always `fallback: true`
        (nothing is known of the shopper beyond the session), with `session.reranked` and `session.events`."""
        if not is_source_id(session_id):
            raise HTTPException(422, f"not a session id: {session_id!r}")
        return await from_store(session_answer(request, session_id, feed, limit))

    async def session_answer(request: Request, session_id: str, feed, limit) -> Response:
        entries = await recent(SESSION_SHOPPER + session_id)
        manifest, withdrawn, headers = await served(request, entries=entries)
        if unchanged := not_modified(request, headers):
            return unchanged
        headers[FALLBACK_HEADER] = "true"
        fill = {"member_id": None, "session_id": session_id}
        shopper = SESSION_SHOPPER + session_id
        return await reshaped(manifest.fallback, shopper, entries, manifest, withdrawn, headers, feed, limit, fill)

    style_responses = documented(
        {
            200: {"model": StyleList, "description": "The style's subclass-brand list, flagged when a fallback."},
            404: {"description": "The style is not in the served version (the reason names it, the version and day)."},
            422: {"description": "Not a style id of the namespace, or a limit out of 1..100."},
        }
    )

    @app.get(
        "/v1/styles/{style_id}/similar",
        tags=["items"],
        dependencies=[Depends(authorized)],
        response_model=None,
        responses=style_responses,
    )
    async def similar(
        request: Request,
        style_id: str,
        limit: ItemLimit = 20,
        id_namespace: IdNamespace = "lakehouse",
        session_id: SessionId = None,
    ) -> Response:
        """Styles like this one: the best styles of the subclass-brands browsed in the same sessions as the
        style's, without sold-out or ended styles. A subclass-brand without neighbours gets the popular
        styles of its class, with `fallback: true` and the `X-Reco-Fallback` header."""
        if not is_id(style_id, id_namespace):
            raise HTTPException(422, f"not a {id_namespace} style id: {style_id!r}")
        return await from_store(style_answer(request, SIMILAR, style_id, limit, id_namespace, session_id))

    @app.get(
        "/v1/styles/{style_id}/bought-together",
        tags=["items"],
        dependencies=[Depends(authorized)],
        response_model=None,
        responses=style_responses,
    )
    async def bought_together(
        request: Request,
        style_id: str,
        limit: ItemLimit = 20,
        id_namespace: IdNamespace = "lakehouse",
        session_id: SessionId = None,
    ) -> Response:
        """Styles bought with this one: the best styles of the subclass-brands bought in the same baskets as
        the style's, without sold-out or ended styles. A subclass-brand without co-purchases gets the styles
        most often bought, with `fallback: true` and the `X-Reco-Fallback` header."""
        if not is_id(style_id, id_namespace):
            raise HTTPException(422, f"not a {id_namespace} style id: {style_id!r}")
        return await from_store(style_answer(request, BOUGHT, style_id, limit, id_namespace, session_id))

    async def style_answer(
        request: Request, lists: bytes, asked: str, limit: int, id_namespace, session_id: str | None
    ) -> Response:
        """The list under `lists` (`SIMILAR`, `BOUGHT`) of the group of the style `asked`, re-ranked by the
        session's events when `session_id` has any (similar lists draw in the session's neighbours)."""
        entries = await recent(SESSION_SHOPPER + session_id if session_id else None)
        manifest, withdrawn, headers = await served(request, entries=entries)
        if unchanged := not_modified(request, headers):
            return unchanged
        version = manifest.version
        style_id = asked
        if id_namespace == "source":
            found = await store.get_async(version, STYLE_SOURCE + asked.encode())
            style_id = found.decode() if found is not None else None
        group = await store.get_async(version, STYLE_GROUP + style_id.encode()) if style_id is not None else None
        if group is None:
            reason = f"{id_namespace} style {asked} is not in the served version {version} (day {manifest.as_of_date})"
            raise HTTPException(404, reason, headers={VERSION_HEADER: version})
        stored = await store.get_async(version, lists + group)
        source_id = asked if id_namespace == "source" else None
        dropped, session = withdrawn.style_ids, None
        if entries and stored is not None:
            document = orjson.loads(stored)
            read = partial(store.get_many_async, version)
            draw_in = lists == SIMILAR
            document["styles"], session = await session_answers.entries_list(
                read, document["styles"], entries, weights, draw_in
            )
            stored, dropped = orjson.dumps(document), dropped | session.bought
        body = item_answers.style_list(manifest, style_id, source_id, group, stored, dropped, limit)
        return json_answer(body | (session_answers.summary(session) if session else {}), headers)

    @app.post(
        "/v1/baskets/recommendations",
        tags=["items"],
        dependencies=[Depends(authorized)],
        response_model=None,
        responses=documented(
            {
                200: {"model": BasketList, "description": "What goes with the cart, flagged when a fallback."},
                422: {"description": "Not 1 to 100 style ids of the namespace, or a limit out of 1..100."},
            }
        ),
    )
    async def basket_recommendations(
        request: Request,
        basket: Basket,
        limit: ItemLimit = 20,
        id_namespace: IdNamespace = "lakehouse",
        session_id: SessionId = None,
    ) -> Response:
        """Styles to add to a cart: the co-purchase rules of the cart's subclass-brands and of the pairs of its
        first ten, merged (each proposed subclass-brand's best rule), and the proposed subclass-brands' best
        styles, without the cart's subclass-brands and styles and sold-out or ended styles. Styles the served
        version does not know are ignored and listed in `unknown_style_ids`. A cart no rule matches gets the
        styles most often bought, with `fallback: true` and the `X-Reco-Fallback` header. The ETag covers
        the cart (If-None-Match gives 304)."""
        bad = [style for style in basket.style_ids if not is_id(style, id_namespace)]
        if bad:
            raise HTTPException(422, f"not {id_namespace} style ids: {bad!r}")
        return await from_store(basket_answer(request, basket.style_ids, limit, id_namespace, session_id))

    async def basket_answer(
        request: Request, style_ids: list[str], limit: int, id_namespace, session_id: str | None
    ) -> Response:
        entries = await recent(SESSION_SHOPPER + session_id if session_id else None)
        manifest, withdrawn, headers = await served(request, orjson.dumps(style_ids), entries=entries)
        if unchanged := not_modified(request, headers):
            return unchanged
        read = partial(store.get_many_async, manifest.version)
        by_source = id_namespace == "source"
        body = await item_answers.basket_list(read, manifest, style_ids, by_source, withdrawn.style_ids, limit)
        if entries:  # the cart's answer moved and thinned by the session: nothing drawn in
            ranked, session = await session_answers.entries_list(read, body["styles"], entries, weights, False)
            body |= {"styles": [e for e in ranked if e["style_id"] not in session.bought]}
            body |= session_answers.summary(session)
        return json_answer(body, headers)

    @app.post(
        "/v1/events",
        tags=["events"],
        dependencies=[Depends(authorized)],
        response_model=None,
        openapi_extra={"requestBody": {"content": {"application/json": {"schema": EventBatch.model_json_schema()}}}},
        responses=documented(
            {
                200: {"model": EventsAnswer, "description": "Each event's status, in the batch's order."},
                400: {"description": "Not a batch: not JSON, no `events` list, too many events, duplicate keys."},
            }
        ),
    )
    async def events(request: Request) -> Response:
        """Events of the served day (the day after the served cards' day), checked by ingestion's rules and
        landed durably before the answer, then kept for their member and session: the next answers for them
        are re-ranked. Each event is `accepted` or `rejected` with the rule's `reason`; an id posted twice
        counts once (`duplicate_event_id`)."""
        if intake is None:
            raise HTTPException(503, "this API process takes no events (no landing zone)")
        body = await request.body()
        manifest = await from_store(current())
        try:
            answer = await take(intake, manifest, body)
        except BadBatch as error:
            raise HTTPException(400, f"not a batch of events: {error}") from error
        except intake.sessions.errors as error:
            raise HTTPException(503, f"landing zone or session store unavailable: {error}") from error
        return Response(
            content=orjson.dumps(answer), media_type="application/json", headers={VERSION_HEADER: manifest.version}
        )

    return app
