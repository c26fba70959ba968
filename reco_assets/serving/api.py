"""The recommendations API: FastAPI over a serving store.

`GET /v1/members/{member_id}/recommendations` answers the member's whole payload in one call: the stored
bytes as they are, unless styles were withdrawn since the version was built or `feed` / `limit` ask for
less. Every call reads the store's current version once and answers from it alone, so a version switch
never mixes two versions in one answer. Handlers are `async`: they read LMDB directly (a memory-mapped
lookup of microseconds, cheaper than a hand-off to a thread pool) and Redis with its asynchronous client
(one round trip: the pointer is cached for a second), so a slow Redis holds no other request, `/healthz`
included.
"""

import hashlib
import hmac
import logging

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from reco_assets.serving.answers import is_member_id, is_source_id, shape
from reco_assets.serving.schema import FeedName, Namespace, Payload
from reco_assets.serving.store import MEMBER, SOURCE, ServingStore

VERSION_HEADER = "X-Reco-Version"
FALLBACK_HEADER = "X-Reco-Fallback"

log = logging.getLogger(__name__)


def create_app(store: ServingStore, tokens: list[str], max_age_hours: float) -> FastAPI:
    """The app over `store`; requests to `/v1` need `Authorization: Bearer <one of tokens>`."""
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
        description="Per-member product, brand and category feeds of the latest published day.",
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

    @app.get(
        "/v1/members/{member_id}/recommendations",
        tags=["recommendations"],
        dependencies=[Depends(authorized)],
        response_model=None,
        responses={
            200: {"model": Payload, "description": "The member's payload, or the flagged fallback."},
            304: {"description": "Not modified (If-None-Match matched the ETag)."},
            401: {"description": "Missing or wrong bearer token."},
            422: {"description": "Not a member id of the namespace."},
            503: {"description": "No version is served yet, the served one is gone, or the store does not answer."},
        },
    )
    async def recommendations(
        request: Request,
        member_id: str,
        feed: FeedName | None = Query(None, description="Only this feed."),
        limit: int | None = Query(None, ge=1, le=1000, description="At most this many styles per list."),
        id_namespace: Namespace = Query(
            "lakehouse", description="`lakehouse`: the lakehouse's id (decimal); `source`: the imported data's id."
        ),
    ) -> Response:
        """The member's feeds, from the current version, without styles sold out or ended since it was built.

        A member without recommendations gets the day's most popular styles, with `fallback: true` and the
        `X-Reco-Fallback` header."""
        valid = is_source_id(member_id) if id_namespace == "source" else is_member_id(member_id)
        if not valid:
            raise HTTPException(422, f"not a {id_namespace} member id: {member_id!r}")
        try:
            return await answer(request, member_id, feed, limit, id_namespace)
        except store.errors as error:
            raise HTTPException(503, f"serving store unavailable: {error}") from error

    async def answer(request: Request, member_id: str, feed, limit, id_namespace) -> Response:
        manifest = await store.current_async()
        if manifest is None:
            raise HTTPException(503, "no version served yet")
        version = manifest.version
        withdrawn = await store.withdrawn_async(version)
        tag = hashlib.blake2b(
            f"{version}|{withdrawn.digest}|{request.url.path}|{request.url.query}".encode(), digest_size=12
        ).hexdigest()
        headers = {VERSION_HEADER: version, "ETag": f'"{tag}"'}
        if request.headers.get("if-none-match") == headers["ETag"]:
            return Response(status_code=304, headers=headers)
        internal = member_id
        if id_namespace == "source":
            found = await store.get_async(version, SOURCE + member_id.encode())
            internal = found.decode() if found is not None else None
        stored = await store.get_async(version, MEMBER + internal.encode()) if internal is not None else None
        fill = None
        if stored is None:
            stored = manifest.fallback
            fill = {"member_id": internal} | ({"member_source_id": member_id} if id_namespace == "source" else {})
            headers[FALLBACK_HEADER] = "true"
        body = shape(stored, withdrawn.style_ids, feed, limit, fill)
        return Response(content=body, media_type="application/json", headers=headers)

    return app
