"""The API as shoppers' clients see it: `python -m reco_assets serve` (uvicorn) over a real LMDB store and a
real redis-server, called over loopback HTTP. The store is filled here by hand, so each answer can be
compared with known bytes."""

import os
import stat
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timezone

import orjson
import pytest
import requests

from reco_assets.serving.lmdb_store import LmdbStore
from reco_assets.serving.redis_store import RedisStore
from reco_assets.serving.store import SOURCE, Manifest, ServingStore, Withdrawn, member_key
from reco_assets_tests.conftest import free_port, start_redis
from reco_assets_tests.serving.test_store import remove_by_hand

TOKENS = ("token-one", "token-two")
MEMBERS = ("1", "2", str(2**63 - 1))
FALLBACK = {
    "member_id": None,
    "as_of_date": "2026-10-31",
    "version": None,
    "source": "member_cards",
    "cohort": None,
    "fallback": True,
    "feeds": {
        "products": [
            {
                "position": 1,
                "group_key": "popular",
                "group_name": "Popular today",
                "affinity": None,
                "card": ["900"],
                "full": ["900", "901"],
            }
        ],
        "brands": [],
        "categories": [],
    },
}


def payload(member: str, version: str) -> bytes:
    group = {
        "position": 1,
        "group_key": "all",
        "group_name": "Picked for you",
        "affinity": 1.5,
        "card": ["10", "11"],
        "full": ["10", "11", "12", "13"],
    }
    return orjson.dumps(
        {
            "member_id": member,
            "member_source_id": f"src-{member}",
            "as_of_date": "2026-10-31",
            "version": version,
            "source": "member_cards",
            "cohort": "women_1",
            "fallback": False,
            "feeds": {"products": [group], "brands": [], "categories": []},
        }
    )


def publish(store: ServingStore, version: str, loaded_at: str | None = None) -> None:
    pairs = [(member_key(m), payload(m, version)) for m in MEMBERS]
    pairs += [(SOURCE + f"src-{m}".encode(), m.encode()) for m in MEMBERS]
    store.write(version, iter(pairs))
    store.switch(
        Manifest(
            version,
            "2026-10-31",
            "member_cards",
            len(MEMBERS),
            loaded_at or datetime.now(timezone.utc).isoformat(),
            orjson.dumps(FALLBACK | {"version": version}),
        )
    )


@pytest.fixture(scope="module", params=["lmdb", "redis"])
def api(request, tmp_path_factory):
    home = tmp_path_factory.mktemp("serving-home")
    port = free_port()
    env = dict(os.environ, RECO_API_TOKENS=",".join(TOKENS), RECO_SERVING_STORE=request.param)
    store = LmdbStore(str(home / "serving"), keep=2)
    if request.param == "redis":
        url, prefix = request.getfixturevalue("redis_url"), f"api-{uuid.uuid4().hex[:8]}"
        # the server reads the pointer on every request here, so each test sees its own switch at once
        env |= {"RECO_REDIS_URL": url, "RECO_REDIS_PREFIX": prefix, "RECO_REDIS_REFRESH_SECONDS": "0"}
        store = RedisStore(url, prefix, keep=2, refresh=0)
    server, url = serve(home, port, env)
    yield url, store
    server.terminate()
    server.wait(10)


def serve(home, port: int, env: dict) -> tuple[subprocess.Popen, str]:
    """`python -m reco_assets serve` on `port`, once it answers `/healthz`."""
    server = subprocess.Popen(
        [sys.executable, "-m", "reco_assets", "serve", "--home", str(home), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            requests.get(f"{url}/healthz", timeout=1)
            break
        except requests.ConnectionError:
            assert server.poll() is None, server.stdout.read().decode()
            time.sleep(0.1)
    return server, url


def get(url: str, path: str, token: str | None = TOKENS[0], **headers) -> requests.Response:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.get(f"{url}{path}", headers=headers, timeout=5)


def test_not_ready_until_a_version_is_served_then_ready(api):
    url, store = api  # the module's first test: nothing served yet
    ready = get(url, "/readyz")
    assert ready.status_code == 503 and ready.json()["reason"] == "no version served yet"
    assert get(url, "/v1/members/1/recommendations").status_code == 503
    publish(store, "2026-10-31.batch.20261101T000000.0001")
    ready = get(url, "/readyz", token=None)
    assert ready.status_code == 200 and ready.json()["version"] == "2026-10-31.batch.20261101T000000.0001"
    assert get(url, "/healthz", token=None).json() == {"status": "ok"}


def test_a_stale_version_is_not_ready(api):
    url, store = api
    publish(store, "2026-10-31.batch.20261101T000000.0002", loaded_at="2026-01-01T00:00:00+00:00")
    ready = get(url, "/readyz")
    assert ready.status_code == 503 and ready.json()["status"] == "stale"
    publish(store, "2026-10-31.batch.20261101T000000.0003")
    assert get(url, "/readyz").status_code == 200


def test_tokens_are_required(api):
    url, store = api
    publish(store, "2026-10-31.batch.20261101T000000.0004")
    path = "/v1/members/1/recommendations"
    missing, wrong = get(url, path, token=None), get(url, path, token="token-on")
    assert missing.status_code == wrong.status_code == 401
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert get(url, path, token=TOKENS[1]).status_code == 200


def test_the_stored_bytes_are_the_answer_with_version_and_etag(api):
    url, store = api
    version = "2026-10-31.batch.20261101T000000.0005"
    publish(store, version)
    answer = get(url, f"/v1/members/{MEMBERS[2]}/recommendations")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    assert answer.content == payload(MEMBERS[2], version)  # byte for byte
    assert answer.json()["member_id"] == "9223372036854775807"  # 64-bit ids as strings
    assert answer.headers["X-Reco-Version"] == version
    again = get(url, f"/v1/members/{MEMBERS[2]}/recommendations", **{"If-None-Match": answer.headers["ETag"]})
    assert again.status_code == 304 and again.content == b""
    assert "X-Reco-Fallback" not in answer.headers


def test_ids_that_are_not_ids_are_422(api):
    url, store = api
    publish(store, "2026-10-31.batch.20261101T000000.0006")
    for bad in ("abc", "-1", "1.5", "007", str(2**63), "%20"):
        assert get(url, f"/v1/members/{bad}/recommendations").status_code == 422, bad
    assert get(url, "/v1/members/1/recommendations?limit=0").status_code == 422
    assert get(url, "/v1/members/1/recommendations?feed=shoes").status_code == 422


def test_an_unknown_member_gets_the_flagged_fallback(api):
    url, store = api
    version = "2026-10-31.batch.20261101T000000.0007"
    publish(store, version)
    answer = get(url, "/v1/members/424242/recommendations")
    assert answer.status_code == 200 and answer.headers["X-Reco-Fallback"] == "true"
    assert answer.json() == FALLBACK | {"version": version, "member_id": "424242"}
    unknown_source = get(url, "/v1/members/nobody/recommendations?id_namespace=source").json()
    assert unknown_source["fallback"] is True and unknown_source["member_source_id"] == "nobody"
    assert unknown_source["member_id"] is None


def test_source_ids_answer_the_same_payload(api):
    url, store = api
    version = "2026-10-31.batch.20261101T000000.0008"
    publish(store, version)
    answer = get(url, "/v1/members/src-2/recommendations?id_namespace=source")
    assert answer.status_code == 200 and answer.content == payload("2", version)


def test_styles_withdrawn_after_loading_leave_the_answers_at_once(api):
    url, store = api
    version = "2026-10-31.batch.20261101T000000.0009"
    publish(store, version)
    before = get(url, "/v1/members/1/recommendations")
    store.set_withdrawn(version, Withdrawn("2026-11-01 11:00 EST", frozenset({"11", "12"})))
    after = get(url, "/v1/members/1/recommendations")
    group = after.json()["feeds"]["products"][0]
    assert group["full"] == ["10", "13"] and group["card"] == ["10", "13"]
    assert after.headers["ETag"] != before.headers["ETag"]
    limited = get(url, "/v1/members/1/recommendations?feed=products&limit=1").json()
    assert limited["feeds"]["brands"] == [] and limited["feeds"]["products"][0]["full"] == ["10"]


def test_a_served_version_whose_data_is_gone_answers_503_not_the_fallback(api):
    """The version the pointer names is removed by hand under the running API: members, known or not, get
    503 (not the fallback, which would look like a day without recommendations) and `/readyz` 503, until
    the next switch."""
    url, store = api
    gone = "2026-10-31.batch.20261101T000000.0010"
    publish(store, gone)
    assert get(url, "/v1/members/1/recommendations").content == payload("1", gone)
    remove_by_hand(store, gone)
    for member in ("1", "424242"):
        answer = get(url, f"/v1/members/{member}/recommendations")
        assert answer.status_code == 503 and "X-Reco-Fallback" not in answer.headers, member
    assert get(url, "/readyz").status_code == 503
    publish(store, "2026-10-31.batch.20261101T000000.0011")
    assert get(url, "/readyz").status_code == 200
    assert get(url, "/v1/members/1/recommendations").content == payload("1", "2026-10-31.batch.20261101T000000.0011")


def test_the_openapi_document_describes_the_payload(api):
    url, _ = api
    document = get(url, "/openapi.json", token=None).json()
    schema = document["components"]["schemas"]["Payload"]
    assert {"member_id", "version", "fallback", "feeds"} <= set(schema["properties"])
    assert "string" in schema["properties"]["member_id"]["description"]
    route = document["paths"]["/v1/members/{member_id}/recommendations"]["get"]
    assert route["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/Payload")
    assert {p["name"] for p in route["parameters"]} >= {"member_id", "feed", "limit", "id_namespace"}


def test_a_switch_under_concurrent_requests_never_fails_or_mixes(api):
    """Clients keep asking while five versions are switched in: every answer is 200 and is one version's
    payload of the member asked for, the version its header names."""
    url, store = api
    publish(store, "2026-10-31.batch.20261101T000001.0000")
    stop, problems, seen = threading.Event(), [], set()

    def client(member: str):
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {TOKENS[0]}"
            while not stop.is_set():
                answer = session.get(f"{url}/v1/members/{member}/recommendations", timeout=5)
                version = answer.headers.get("X-Reco-Version")
                seen.add(version)
                if answer.status_code != 200 or answer.content != payload(member, version):
                    problems.append((answer.status_code, version, answer.content[:80]))

    clients = [threading.Thread(target=client, args=(m,)) for m in MEMBERS]
    for thread in clients:
        thread.start()
    try:
        for n in range(1, 6):
            time.sleep(0.2)
            publish(store, f"2026-10-31.batch.20261101T000001.000{n}")
        time.sleep(0.2)
    finally:
        stop.set()
        for thread in clients:
            thread.join()
    assert problems == []
    assert len(seen) >= 4  # the clients saw the switches


def test_a_redis_server_that_goes_away_gives_503_and_the_process_stays_healthy(tmp_path):
    """Its own redis-server, stopped while the API runs: requests answer 503 with the reason (after at most
    the client's timeout), and `/healthz` answers at once."""
    redis_server, redis_url = start_redis()
    prefix = "gone"
    env = dict(
        os.environ,
        RECO_API_TOKENS=TOKENS[0],
        RECO_SERVING_STORE="redis",
        RECO_REDIS_URL=redis_url,
        RECO_REDIS_PREFIX=prefix,
        RECO_REDIS_REFRESH_SECONDS="0",
    )
    api_server, url = serve(tmp_path, free_port(), env)
    try:
        publish(RedisStore(redis_url, prefix, keep=2), "2026-10-31.batch.20261101T000000.0001")
        assert get(url, "/v1/members/1/recommendations").status_code == 200
        redis_server.terminate()
        redis_server.wait(10)
        gone = get(url, "/v1/members/1/recommendations")
        assert gone.status_code == 503 and "serving store unavailable" in gone.json()["detail"]
        port = redis_url.rsplit(":", 1)[1].split("/")[0]
        anyone = get(url, "/readyz", token=None)
        assert anyone.status_code == 503 and anyone.json()["reason"] == "serving store unavailable"
        assert "127.0.0.1" not in anyone.text and port not in anyone.text  # no host to an anonymous caller
        assert port in get(url, "/readyz").json()["reason"]  # the reason, to a caller with a token
        started = time.perf_counter()
        assert get(url, "/healthz", token=None).status_code == 200
        assert time.perf_counter() - started < 1
    finally:
        api_server.terminate()
        api_server.wait(10)
        if redis_server.poll() is None:
            redis_server.terminate()


def test_readyz_tells_why_the_store_fails_only_to_a_caller_with_a_token(tmp_path):
    """An LMDB store whose folder becomes a file under the running API: `/readyz` answers 503 to everyone,
    with the path only to a caller with a token; the server's log has it."""
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, RECO_API_TOKENS=TOKENS[0], RECO_SERVING_STORE="lmdb")
    server, url = serve(home, free_port(), env)
    try:
        (home / "serving").write_text("not a folder")
        anyone = get(url, "/readyz", token=None)
        assert anyone.status_code == 503 and anyone.json() == {
            "status": "unavailable",
            "reason": "serving store unavailable",
        }
        told = get(url, "/readyz")
        assert told.status_code == 503 and str(home / "serving") in told.json()["reason"]
    finally:
        server.terminate()
        server.wait(10)
    assert f"not ready: serving store unavailable: [Errno 20] Not a directory: '{home / 'serving'}" in (
        server.stdout.read().decode()
    )


def test_a_made_up_token_is_in_a_file_only_its_owner_reads_and_is_not_printed(tmp_path):
    """`serve` without RECO_API_TOKENS: the token it makes up is in `<home>/api_token` (mode 0600), which it
    names; the token itself is nowhere in its output. It is accepted, and only it."""
    env = {name: value for name, value in os.environ.items() if name != "RECO_API_TOKENS"}
    env["RECO_SERVING_STORE"] = "lmdb"
    version = "2026-10-31.batch.20261101T000000.0001"
    publish(LmdbStore(str(tmp_path / "serving"), keep=2), version)
    server, url = serve(tmp_path, free_port(), env)
    try:
        path = tmp_path / "api_token"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        token = path.read_text()
        assert len(token) >= 32
        assert get(url, "/v1/members/1/recommendations", token=token).content == payload("1", version)
        assert get(url, "/v1/members/1/recommendations", token=token[:-1]).status_code == 401
    finally:
        server.terminate()
        server.wait(10)
    output = server.stdout.read().decode()
    assert str(path) in output and token not in output
