"""Events posted to the API and the answers they re-rank, as clients see them: `python -m reco_assets serve`
over a real LMDB store and a real redis-server, the version filled here by hand. Re-ranked lists are worked
out by hand below with the weights of the home's settings (`WEIGHTS`: group boost 0, subclass boost 0.5,
neighbour weight 0.5 over the 3 most recent groups): an item at daily place p scores 1/log2(p + 1), plus 0.5
when its subclass was browsed; a style drawn in at place q of a similar list scores 0.5/log2(q + 1)."""

import os
import signal
import subprocess
import sys
import threading
import uuid

import orjson
import pytest
import requests

from reco_assets.serving.lmdb_store import LmdbStore
from reco_assets.serving.redis_store import RedisStore
from reco_assets.serving.store import GROUP_SUBCLASS, SIMILAR, STYLE_GROUP, Manifest, member_key
from reco_assets.settings import RecoSettings, save_settings
from reco_assets_tests.conftest import free_port
from reco_assets_tests.serving.test_api import FALLBACK, TOKENS, get, serve

CARDS_DAY, SERVED_DAY = "2026-10-31", "2026-11-01"
WEIGHTS = {"sessions.group_boost": 0.0, "sessions.subclass_boost": 0.5, "sessions.neighbor_weight": 0.5}
GROUP_OF = {
    "10": "100", "11": "100", "12": "200", "13": "300", "14": "400", "15": "500",  # member 1's feed
    "50": "600",  # browsed in the session, in no list
    "60": "700", "61": "700",  # similar to group 600
    "900": "800", "901": "300", "902": "800", "903": "800",  # the fallback's popular styles
}  # fmt: skip
SUBCLASS_OF = {"100": "A", "200": "B", "300": "C", "400": "C", "500": "D", "600": "C", "700": "E", "800": "F"}
SIMILAR_600 = [
    {"style_id": "60", "score": 0.9, "group_key": "700"},
    {"style_id": "61", "score": 0.8, "group_key": "700"},
    {"style_id": "12", "score": 0.7, "group_key": "200"},
]
SIMILAR_200 = [
    {"style_id": "15", "score": 0.9, "group_key": "500"},
    {"style_id": "14", "score": 0.8, "group_key": "400"},
]
PRODUCTS = {"card": ["10", "11"], "full": ["10", "11", "12", "13", "14", "15"]}
BRANDS = {"card": ["11"], "full": ["11", "14"]}


def feed(key: str, lists: dict) -> dict:
    return {"position": 1, "group_key": key, "group_name": key, "affinity": 1.0} | lists


def member_payload(version: str) -> bytes:
    return orjson.dumps(
        {
            "member_id": "1",
            "as_of_date": CARDS_DAY,
            "version": version,
            "source": "member_cards",
            "cohort": "women_1",
            "fallback": False,
            "feeds": {"products": [feed("all", PRODUCTS)], "brands": [feed("Acme", BRANDS)], "categories": []},
        }
    )


def publish(store, version: str) -> None:
    pairs = [(member_key("1"), member_payload(version))]
    pairs += [(STYLE_GROUP + s.encode(), g.encode()) for s, g in GROUP_OF.items()]
    pairs += [(GROUP_SUBCLASS + g.encode(), c.encode()) for g, c in SUBCLASS_OF.items()]
    pairs += [(SIMILAR + b"600", orjson.dumps({"fallback": False, "styles": SIMILAR_600}))]
    pairs += [(SIMILAR + b"200", orjson.dumps({"fallback": False, "styles": SIMILAR_200}))]
    store.write(version, iter(pairs))
    popular = feed("popular", {"card": ["900"], "full": ["900", "901", "902", "903"]})
    fallback = orjson.dumps(
        FALLBACK | {"version": version, "feeds": {"products": [popular], "brands": [], "categories": []}}
    )
    store.switch(Manifest(version, CARDS_DAY, "member_cards", 1, "2026-11-01T00:00:00+00:00", fallback))


@pytest.fixture(scope="module", params=["lmdb", "redis"])
def served(request, tmp_path_factory):
    """(url, home) of an API over a published version, on each store."""
    home = tmp_path_factory.mktemp("session-home")
    save_settings(home, RecoSettings().changed(WEIGHTS))
    env = dict(os.environ, RECO_API_TOKENS=",".join(TOKENS), RECO_SERVING_STORE=request.param)
    env["RECO_API_WRITER"] = "test"
    store = LmdbStore(str(home / "serving"), keep=2)
    if request.param == "redis":
        url, prefix = request.getfixturevalue("redis_url"), f"sessions-{uuid.uuid4().hex[:8]}"
        env |= {"RECO_REDIS_URL": url, "RECO_REDIS_PREFIX": prefix, "RECO_REDIS_REFRESH_SECONDS": "0"}
        store = RedisStore(url, prefix, keep=2, refresh=0)
    publish(store, f"{CARDS_DAY}.batch.1.a")
    server, url = serve(home, free_port(), env)
    yield url, home
    server.terminate()
    server.wait(10)


def event(event_id: str, kind: str, style: int | None, member: int | None = 1, session: str = "s-1", **more) -> dict:
    fields = {"event_id": event_id, "event_time": f"{SERVED_DAY}T10:00:00Z", "event_type": kind, "session_id": session}
    fields |= {"member_id": member} if member is not None else {}
    fields |= {"style_id": style, "price": 10.0} if style is not None else {}
    return fields | more


def post(url: str, events: list, token: str = TOKENS[0]) -> requests.Response:
    body = orjson.dumps({"events": events})
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return requests.post(f"{url}/v1/events", data=body, headers=headers, timeout=5)


def landed(home) -> list[dict]:
    path = home / "landing" / "events" / f"{SERVED_DAY}.api-test.jsonl"
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_events_need_a_token_and_a_batch(served):
    url, _ = served
    assert post(url, [], token="wrong").status_code == 401
    headers = {"Authorization": f"Bearer {TOKENS[0]}"}
    for body in (b"not json", b'{"events": 1}', b'{"events": [], "events": []}', b'{"events": [NaN]}'):
        assert requests.post(f"{url}/v1/events", data=body, headers=headers, timeout=5).status_code == 400


def test_each_event_is_answered_by_ingestions_rules_and_only_accepted_ones_land(served):
    url, home = served
    member = 11  # a member of its own: no other test's session
    good = event(unique("good"), "product_view", 50, member, unique("s"))
    batch = [
        good,
        event(unique("e"), "product_view", None, member),  # an item event without a style
        event(unique("e"), "product_view", 50, member, event_time="2026-10-31T23:00:00Z"),  # the cards' day
        event(unique("e"), "wishlist", 50, member),
        event(unique("e"), "purchase", 50, member, quantity=0),
        [1, 2],
        good,  # the same id again in the batch
    ]
    answer = post(url, batch)
    assert answer.status_code == 200
    body = answer.json()
    assert (body["serving_day"], body["accepted"], body["rejected"]) == (SERVED_DAY, 1, 6)
    assert [(e["status"], e.get("reason")) for e in body["events"]] == [
        ("accepted", None),
        ("rejected", "missing_field:style_id"),
        ("rejected", "outside_day"),
        ("rejected", "unknown_event_type"),
        ("rejected", "non_positive_quantity"),
        ("rejected", "not_an_object"),
        ("rejected", "duplicate_event_id"),
    ]
    assert body["events"][0]["event_id"] == good["event_id"] and body["events"][5]["event_id"] is None
    assert [e for e in landed(home) if e["member_id"] == member] == [good]
    again = post(url, [good]).json()  # posted twice: counted once
    assert again["events"] == [{"event_id": good["event_id"], "status": "rejected", "reason": "duplicate_event_id"}]
    assert [e for e in landed(home) if e["member_id"] == member] == [good]


def test_a_members_events_rerank_the_next_answer(served):
    url, _ = served
    before = get(url, "/v1/members/1/recommendations")
    assert "session" not in before.json()
    post(url, [event(unique("v"), "product_view", 50), event(unique("p"), "purchase", 11)])
    after = get(url, "/v1/members/1/recommendations", **{"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200 and after.headers["ETag"] != before.headers["ETag"]  # no stale 304
    body = after.json()
    assert body["session"] == {"reranked": True, "events": 2}
    # 10: 1 (its subclass A was bought, through 11: no boost); 13 (subclass C, browsed through 50):
    # 1/log2(5) + 0.5 = 0.93; 14 (C): 1/log2(6) + 0.5 = 0.89; 12: 1/log2(4) = 0.5 and 60 (drawn in, first of
    # group 600's similar list): 0.5/log2(2) = 0.5, the daily one first; 15: 0.36; 61: 0.5/log2(3) = 0.32 is
    # cut (as long as the daily list); 11 was bought: dropped from every feed
    products = body["feeds"]["products"][0]
    assert products["full"] == ["10", "13", "14", "12", "60", "15"] and products["card"] == ["10", "13"]
    assert body["feeds"]["brands"][0]["full"] == ["14"] and body["feeds"]["brands"][0]["card"] == ["14"]
    assert get(url, "/v1/members/1/recommendations", **{"If-None-Match": after.headers["ETag"]}).status_code == 304


def test_an_anonymous_session_gets_the_popular_styles_reranked_and_flagged(served):
    url, home = served
    session = unique("anon")
    empty = get(url, f"/v1/sessions/{session}/recommendations")
    assert empty.headers["X-Reco-Fallback"] == "true"
    assert empty.json()["feeds"]["products"][0]["full"] == ["900", "901", "902", "903"]
    assert "session" not in empty.json()
    answer = post(url, [event(unique("a"), "product_view", 50, None, session)]).json()
    assert answer["accepted"] == 1  # landed without a member: ingestion quarantines it as missing_field:member_id
    assert any(e["session_id"] == session and "member_id" not in e for e in landed(home))
    body = get(url, f"/v1/sessions/{session}/recommendations").json()
    # 901 (subclass C, browsed through 50): 0.63 + 0.5; 900: 1; 902: 0.5 and 60 (drawn in, first of group
    # 600's similar list): 0.5/log2(2), the daily one first; 903: 0.43 is cut (as long as the daily list)
    products = body["feeds"]["products"][0]
    assert products["full"] == ["901", "900", "902", "60"] and products["card"] == ["901"]
    assert (body["session_id"], body["fallback"], body["session"]) == (session, True, {"reranked": True, "events": 1})


def test_a_style_page_with_a_session_moves_its_list(served):
    url, _ = served
    session = unique("page")
    plain = get(url, "/v1/styles/12/similar").json()
    assert [s["style_id"] for s in plain["styles"]] == ["15", "14"]
    post(url, [event(unique("v"), "product_view", 13, 12, session)])  # subclass C, group 300
    body = get(url, f"/v1/styles/12/similar?session_id={session}").json()
    # 15: 1; 14 (C): 0.63 + 0.5 = 1.13 comes first; group 300 has no similar list to draw in
    assert [s["style_id"] for s in body["styles"]] == ["14", "15"] and body["session"]["events"] == 1


def test_the_day_closes_when_its_site_file_lands(served):
    url, home = served
    site = home / "landing" / "events" / f"{SERVED_DAY}.jsonl"
    site.parent.mkdir(parents=True, exist_ok=True)
    site.write_text("")
    try:
        answer = post(url, [event(unique("late"), "product_view", 50, 12)]).json()
        assert answer["events"][0]["reason"] == "day_closed"
    finally:
        site.unlink()


def test_a_killed_api_loses_no_acknowledged_event(tmp_path):
    """`kill -9` while clients post: every event acknowledged is in the landing file, whole."""
    store = LmdbStore(str(tmp_path / "serving"), keep=2)
    publish(store, f"{CARDS_DAY}.batch.1.a")
    save_settings(tmp_path, RecoSettings().changed(WEIGHTS))
    env = dict(os.environ, RECO_API_TOKENS=TOKENS[0], RECO_API_WRITER="test")
    server, url = serve(tmp_path, free_port(), env)
    acknowledged: list[str] = []
    stop = threading.Event()

    def client(name: str) -> None:
        n = 0
        while not stop.is_set():
            ids = [f"{name}-{n}-{i}" for i in range(5)]
            n += 1
            try:
                answer = post(url, [event(i, "product_view", 50, 1, f"s-{name}") for i in ids])
            except requests.RequestException:
                return
            if answer.status_code == 200:
                acknowledged.extend(e["event_id"] for e in answer.json()["events"] if e["status"] == "accepted")

    clients = [threading.Thread(target=client, args=(f"c{k}",)) for k in range(4)]
    for thread in clients:
        thread.start()
    while len(acknowledged) < 200:
        threading.Event().wait(0.01)
    os.kill(server.pid, signal.SIGKILL)
    server.wait(10)
    stop.set()
    for thread in clients:
        thread.join(10)
    lines = (tmp_path / "landing" / "events" / f"{SERVED_DAY}.api-test.jsonl").read_bytes().split(b"\n")
    whole = [orjson.loads(line) for line in lines[:-1]]  # a last line cut by the kill was never acknowledged
    assert set(acknowledged) <= {e["event_id"] for e in whole}
    assert len(whole) == len({e["event_id"] for e in whole})  # and none twice


def test_the_openapi_document_describes_the_event_route(served):
    url, _ = served
    document = requests.get(f"{url}/openapi.json", timeout=5).json()
    assert "/v1/events" in document["paths"] and "/v1/sessions/{session_id}/recommendations" in document["paths"]
    assert "EventsAnswer" in document["components"]["schemas"]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(subprocess.call([sys.executable, "-m", "pytest", __file__]))
