"""The item-to-item routes as clients see them: `python -m reco_assets serve` (uvicorn) over a real LMDB store
and a real redis-server (`test_api`'s fixture), the version filled here by hand. Expected answers are worked
out by hand from the stored lists below."""

import asyncio
import threading
import time
import uuid

import orjson
import pytest
import requests

from reco_assets.serving.item_answers import kept_entries, style_list
from reco_assets.serving.redis_store import RedisStore
from reco_assets.serving.store import (
    BASKET_FALLBACK,
    BOUGHT,
    LISTED,
    RULES,
    SIMILAR,
    STYLE_GROUP,
    STYLE_SOURCE,
    Manifest,
    MissingVersion,
    Withdrawn,
)
from reco_assets_tests.serving import test_api, test_store
from reco_assets_tests.serving.test_api import TOKENS, get, publish
from reco_assets_tests.serving.test_store import remove_by_hand

api = test_api.api  # the served API (url, store) of this module, on each store
store = test_store.store  # a bare store, on each store

DAY = "2026-10-31"
GROUP_OF = {
    # similar and bought-together: style 12 and 13 of group 77, group 80 has no lists
    **{"12": "77", "13": "77", "21": "78", "22": "78", "31": "79", "32": "79", "40": "80"},
    # carts: 101 of group 100, 201 and 202 of 200, 601 of 600 (no rule); the groups the rules propose
    **{"101": "100", "201": "200", "202": "200", "601": "600"},
    **{"501": "500", "502": "500", "503": "500", "401": "400", "402": "400", "1301": "300", "1302": "300"},
}


def entry(style: str, score: float) -> dict:
    return {"style_id": style, "score": score, "group_key": GROUP_OF.get(style, "81")}


SIMILAR_77 = [entry("21", 0.9), entry("22", 0.8), entry("31", 0.5), entry("32", 0.4)]
BOUGHT_77 = [entry("12", 10.0), entry("40", 8.0), entry("13", 5.0)]  # a fallback: group 77's own styles in it
RULES_BY_ANTECEDENT = {
    "100": [[300, 2.0], [400, 1.0], [200, 5.0]],
    "200": [[400, 3.0]],
    "100,200": [[500, 4.0], [300, 1.5]],
}
LISTINGS = {"200": ["201", "202"], "300": ["1301", "1302"], "400": ["401", "402"], "500": ["501", "502", "503"]}
CART_FALLBACK = [entry("601", 9.0), entry("501", 8.0), entry("13", 7.0)]


def item_pairs(marker: str | None = None) -> list[tuple[bytes, bytes]]:
    """A version's item-to-item keys; `marker` (a style id) ends group 77's similar list, to tell versions apart."""
    similar = SIMILAR_77 + ([entry(marker, 0.1)] if marker else [])
    pairs = [(STYLE_GROUP + style.encode(), group.encode()) for style, group in GROUP_OF.items()]
    pairs += [(STYLE_SOURCE + f"src-{style}".encode(), style.encode()) for style in GROUP_OF]
    pairs += [
        (SIMILAR + b"77", orjson.dumps({"fallback": False, "styles": similar})),
        (BOUGHT + b"77", orjson.dumps({"fallback": True, "styles": BOUGHT_77})),
        (BASKET_FALLBACK, orjson.dumps({"styles": CART_FALLBACK})),
    ]
    pairs += [(RULES + key.encode(), orjson.dumps(rules)) for key, rules in RULES_BY_ANTECEDENT.items()]
    pairs += [(LISTED + group.encode(), orjson.dumps(styles)) for group, styles in LISTINGS.items()]
    return pairs


def publish_items(store, version: str, marker: str | None = None) -> None:
    """The version's item keys, then `test_api`'s members and manifest, then the switch."""
    store.write(version, iter(item_pairs(marker)))
    publish(store, version)


def post(url: str, path: str, body, token: str | None = TOKENS[0], **headers) -> requests.Response:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    headers["Content-Type"] = "application/json"
    return requests.post(f"{url}{path}", data=data, headers=headers, timeout=5)


BASKET = "/v1/baskets/recommendations"
CART = ["201", "101", "999999"]
"""Groups 200 and 100 (cart order), and a style no version knows. Antecedents "200", "100" and "100,200"
propose 300 (best of 2.0 and 1.5), 400 (best of 1.0 and 3.0), 500 (4.0) and 200 (5.0: a cart group, left
out): 500, 400, 300. Each style scores its group's score over its listing rank."""
CART_STYLES = [
    entry("501", 4.0),
    entry("401", 3.0),
    entry("502", 2.0),  # 4.0 / 2, tied with 1301 (2.0 / 1): 502 is the smaller number
    entry("1301", 2.0),
    entry("402", 1.5),
    entry("503", 4.0 / 3),
    entry("1302", 1.0),
]


# --- plain functions, no HTTP ----------------------------------------------------------------------------
def test_kept_entries_leave_out_styles_and_stop_at_the_limit():
    assert kept_entries(SIMILAR_77, frozenset({"22"}), {"21"}, 5) == [entry("31", 0.5), entry("32", 0.4)]
    assert kept_entries(SIMILAR_77, frozenset(), set(), 2) == SIMILAR_77[:2]


def test_a_group_without_a_stored_list_answers_an_empty_fallback():
    manifest = Manifest("v", DAY, "member_cards", 0, "2026-11-01T00:00:00+00:00")
    answer = style_list(manifest, "40", "src-40", b"80", None, frozenset(), 20)
    assert answer == {
        "style_id": "40",
        "style_source_id": "src-40",
        "group_key": "80",
        "version": "v",
        "as_of_date": DAY,
        "fallback": True,
        "styles": [],
    }


def test_get_many_reads_one_version_in_order(store):
    version = "2026-10-31.batch.many"
    store.write(version, iter(item_pairs()))
    store.switch(Manifest(version, DAY, "member_cards", 0, "2026-11-01T00:00:00+00:00"))
    keys = [STYLE_GROUP + b"13", STYLE_GROUP + b"424242", STYLE_GROUP + b"12"]

    async def reads():
        return await store.get_many_async(version, keys), await store.get_many_async(version, [])

    assert asyncio.run(reads()) == ([b"77", None, b"77"], [])


def test_get_many_from_redis_fails_on_a_version_gone_rather_than_missing_every_key(redis_url):
    """The API's Redis store may hold on to a version for `refresh` seconds after it is gone: a miss then
    raises (503), as `get_async` does, instead of answering that no style is known."""
    store = RedisStore(redis_url, prefix=f"many-{uuid.uuid4().hex[:8]}", refresh=60)
    version = "2026-10-31.batch.gone"
    store.write(version, iter(item_pairs()))
    store.switch(Manifest(version, DAY, "member_cards", 0, "2026-11-01T00:00:00+00:00"))

    async def reads():  # one event loop: the store's asynchronous client belongs to it
        assert (await store.current_async()).version == version
        remove_by_hand(store, version)
        assert (await store.current_async()).version == version  # within `refresh`
        with pytest.raises(MissingVersion):
            await store.get_many_async(version, [STYLE_GROUP + b"13", STYLE_GROUP + b"12"])

    asyncio.run(reads())


# --- the served routes -----------------------------------------------------------------------------------
def test_no_version_served_yet_is_503(api):
    url, _ = api  # the module's first served test: nothing served yet
    assert get(url, "/v1/styles/12/similar").status_code == 503
    assert get(url, "/v1/styles/12/bought-together").status_code == 503
    assert post(url, BASKET, {"style_ids": CART}).status_code == 503


def test_tokens_are_required(api):
    url, store = api
    publish_items(store, "2026-10-31.items.20261101T000000.0001")
    for token in (None, "token-on"):
        for path in ("/v1/styles/12/similar", "/v1/styles/12/bought-together"):
            answer = get(url, path, token=token)
            assert answer.status_code == 401 and answer.headers["WWW-Authenticate"] == "Bearer"
        assert post(url, BASKET, {"style_ids": CART}, token=token).status_code == 401
    assert get(url, "/v1/styles/12/similar", token=TOKENS[1]).status_code == 200


def test_similar_styles_are_the_groups_list_with_version_and_etag(api):
    url, store = api
    version = "2026-10-31.items.20261101T000000.0002"
    publish_items(store, version)
    answer = get(url, "/v1/styles/12/similar")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    assert answer.headers["X-Reco-Version"] == version and "X-Reco-Fallback" not in answer.headers
    assert answer.json() == {
        "style_id": "12",
        "group_key": "77",
        "version": version,
        "as_of_date": DAY,
        "fallback": False,
        "styles": SIMILAR_77,
    }
    assert get(url, "/v1/styles/13/similar?limit=2").json()["styles"] == SIMILAR_77[:2]  # the group's list
    again = get(url, "/v1/styles/12/similar", **{"If-None-Match": answer.headers["ETag"]})
    assert again.status_code == 304 and again.content == b"" and again.headers["X-Reco-Version"] == version
    assert get(url, "/v1/styles/12/similar?limit=2").headers["ETag"] != answer.headers["ETag"]
    assert get(url, "/v1/styles/13/similar").headers["ETag"] != answer.headers["ETag"]


def test_a_fallback_list_is_flagged_and_never_names_the_style_asked_about(api):
    url, store = api
    version = "2026-10-31.items.20261101T000000.0003"
    publish_items(store, version)
    for style, expected in (
        ("12", [entry("40", 8.0), entry("13", 5.0)]),
        ("13", [entry("12", 10.0), entry("40", 8.0)]),
    ):
        answer = get(url, f"/v1/styles/{style}/bought-together")
        assert answer.status_code == 200 and answer.headers["X-Reco-Fallback"] == "true"
        body = answer.json()
        assert body["fallback"] is True and body["group_key"] == "77" and body["styles"] == expected, style
    assert get(url, "/v1/styles/12/bought-together?limit=1").json()["styles"] == [entry("40", 8.0)]
    no_lists = get(url, "/v1/styles/40/similar")  # group 80 has no stored list
    assert no_lists.status_code == 200 and no_lists.json()["styles"] == [] and no_lists.json()["fallback"] is True


def test_styles_withdrawn_after_loading_leave_the_lists_at_once(api):
    url, store = api
    version = "2026-10-31.items.20261101T000000.0004"
    publish_items(store, version)
    before = get(url, "/v1/styles/12/similar")
    store.set_withdrawn(version, Withdrawn("2026-11-01 11:00 EST", frozenset({"22", "40"})))
    after = get(url, "/v1/styles/12/similar")
    assert after.json()["styles"] == [entry("21", 0.9), entry("31", 0.5), entry("32", 0.4)]
    assert after.headers["ETag"] != before.headers["ETag"]
    assert get(url, "/v1/styles/12/similar?limit=2").json()["styles"] == [entry("21", 0.9), entry("31", 0.5)]
    assert get(url, "/v1/styles/12/bought-together").json()["styles"] == [entry("13", 5.0)]


def test_an_unknown_style_is_404_naming_it_and_the_version(api):
    url, store = api
    version = "2026-10-31.items.20261101T000000.0005"
    publish_items(store, version)
    for route in ("similar", "bought-together"):
        answer = get(url, f"/v1/styles/424242/{route}")
        assert answer.status_code == 404 and answer.headers["X-Reco-Version"] == version
        assert answer.json()["detail"] == f"lakehouse style 424242 is not in the served version {version} (day {DAY})"
    unknown_source = get(url, "/v1/styles/nobody/similar?id_namespace=source")
    assert unknown_source.status_code == 404 and "source style nobody" in unknown_source.json()["detail"]


def test_ids_that_are_not_ids_and_limits_out_of_range_are_422(api):
    url, store = api
    publish_items(store, "2026-10-31.items.20261101T000000.0006")
    for bad in ("abc", "-1", "1.5", "007", str(2**63), "%20"):
        for route in ("similar", "bought-together"):
            assert get(url, f"/v1/styles/{bad}/{route}").status_code == 422, (bad, route)
    for query in ("limit=0", "limit=101", "id_namespace=other"):
        assert get(url, f"/v1/styles/12/similar?{query}").status_code == 422, query
        assert post(url, f"{BASKET}?{query}", {"style_ids": CART}).status_code == 422, query
    assert get(url, "/v1/styles/a%0Ab/similar?id_namespace=source").status_code == 422  # not printable
    for body in (
        {"style_ids": ["12", "abc"]},
        {"style_ids": ["12", "007"]},
        {"style_ids": []},
        {"style_ids": [str(n) for n in range(1, 102)]},  # 101 styles
        {"style_ids": "12"},
        {"styles": ["12"]},
        b"not json",
    ):
        assert post(url, BASKET, body).status_code == 422, body
    assert post(url, f"{BASKET}?id_namespace=source", {"style_ids": ["src-12", "a\nb"]}).status_code == 422
    assert post(url, BASKET, {"style_ids": [str(n) for n in range(1, 101)]}).status_code == 200  # 100 styles


def test_source_ids_answer_the_same_lists(api):
    url, store = api
    version = "2026-10-31.items.20261101T000000.0007"
    publish_items(store, version)
    answer = get(url, "/v1/styles/src-12/similar?id_namespace=source")
    assert answer.status_code == 200
    assert answer.json() == {
        "style_id": "12",
        "style_source_id": "src-12",
        "group_key": "77",
        "version": version,
        "as_of_date": DAY,
        "fallback": False,
        "styles": SIMILAR_77,
    }
    cart = post(url, f"{BASKET}?id_namespace=source", {"style_ids": ["src-201", "src-101", "nobody"]}).json()
    assert cart["style_ids"] == ["src-201", "src-101", "nobody"] and cart["unknown_style_ids"] == ["nobody"]
    assert cart["styles"] == CART_STYLES


def test_a_cart_gets_the_styles_of_the_groups_its_rules_propose(api):
    url, store = api
    version = "2026-10-31.items.20261101T000000.0008"
    publish_items(store, version)
    answer = post(url, BASKET, {"style_ids": CART})
    assert answer.status_code == 200 and "X-Reco-Fallback" not in answer.headers
    assert answer.headers["X-Reco-Version"] == version
    assert answer.json() == {
        "style_ids": CART,
        "version": version,
        "as_of_date": DAY,
        "fallback": False,
        "unknown_style_ids": ["999999"],
        "styles": CART_STYLES,  # nothing of group 200 (202 scores 5.0): it is in the cart
    }
    assert post(url, f"{BASKET}?limit=3", {"style_ids": CART}).json()["styles"] == CART_STYLES[:3]
    # group 100 alone matches "100": 200 (5.0; not a cart group now), 300 (2.0), 400 (1.0)
    alone = post(url, BASKET, {"style_ids": ["101"]}).json()
    assert alone["fallback"] is False and alone["unknown_style_ids"] == []
    assert alone["styles"] == [
        entry("201", 5.0),
        entry("202", 2.5),
        entry("1301", 2.0),
        entry("401", 1.0),  # tied with 1302: the smaller number
        entry("1302", 1.0),
        entry("402", 0.5),
    ]


def test_a_cart_drops_withdrawn_styles_keeping_the_others_ranks(api):
    url, store = api
    version = "2026-10-31.items.20261101T000000.0009"
    publish_items(store, version)
    before = post(url, BASKET, {"style_ids": CART})
    store.set_withdrawn(version, Withdrawn("2026-11-01 11:00 EST", frozenset({"502", "401"})))
    after = post(url, BASKET, {"style_ids": CART})
    expected = [entry("501", 4.0), entry("1301", 2.0), entry("402", 1.5), entry("503", 4.0 / 3), entry("1302", 1.0)]
    assert after.json()["styles"] == expected  # 402 and 503 keep their ranks 2 and 3
    assert after.headers["ETag"] != before.headers["ETag"]


def test_a_cart_no_rule_matches_gets_the_flagged_fallback_without_its_own_styles(api):
    url, store = api
    version = "2026-10-31.items.20261101T000000.0010"
    publish_items(store, version)
    answer = post(url, BASKET, {"style_ids": ["601"]})
    assert answer.status_code == 200 and answer.headers["X-Reco-Fallback"] == "true"
    body = answer.json()
    assert body["fallback"] is True and body["unknown_style_ids"] == []
    assert body["styles"] == [entry("501", 8.0), entry("13", 7.0)]  # not the cart's 601
    unknown = post(url, BASKET, {"style_ids": ["424242", "424243"]}).json()
    assert unknown["fallback"] is True and unknown["unknown_style_ids"] == ["424242", "424243"]
    assert unknown["styles"] == CART_FALLBACK
    store.set_withdrawn(version, Withdrawn("2026-11-01 11:00 EST", frozenset({"501"})))
    assert post(url, f"{BASKET}?limit=5", {"style_ids": ["601"]}).json()["styles"] == [entry("13", 7.0)]


def test_a_carts_etag_covers_the_cart_not_its_spelling(api):
    url, store = api
    publish_items(store, "2026-10-31.items.20261101T000000.0011")
    answer = post(url, BASKET, {"style_ids": CART})
    spaced = post(url, BASKET, b'{ "style_ids" : [ "201", "101", "999999" ] }')
    assert spaced.headers["ETag"] == answer.headers["ETag"] and spaced.content == answer.content
    assert post(url, BASKET, {"style_ids": ["101", "201"]}).headers["ETag"] != answer.headers["ETag"]
    again = post(url, BASKET, {"style_ids": CART}, **{"If-None-Match": answer.headers["ETag"]})
    assert again.status_code == 304 and again.content == b""


def test_a_served_version_whose_data_is_gone_answers_503(api):
    url, store = api
    gone = "2026-10-31.items.20261101T000000.0012"
    publish_items(store, gone)
    remove_by_hand(store, gone)
    assert get(url, "/v1/styles/12/similar").status_code == 503
    assert get(url, "/v1/styles/424242/bought-together").status_code == 503  # not a 404
    assert post(url, BASKET, {"style_ids": CART}).status_code == 503
    publish_items(store, "2026-10-31.items.20261101T000000.0013")
    assert get(url, "/v1/styles/12/similar").status_code == 200


def test_the_openapi_document_describes_the_item_routes(api):
    url, _ = api
    document = get(url, "/openapi.json", token=None).json()
    schemas = document["components"]["schemas"]
    assert {"style_id", "group_key", "version", "fallback", "styles"} <= set(schemas["StyleList"]["properties"])
    assert "string" in schemas["StyleEntry"]["properties"]["style_id"]["description"]
    assert schemas["Basket"]["properties"]["style_ids"]["maxItems"] == 100
    for route in ("similar", "bought-together"):
        get_route = document["paths"][f"/v1/styles/{{style_id}}/{route}"]["get"]
        assert get_route["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/StyleList")
        assert {p["name"] for p in get_route["parameters"]} == {"style_id", "limit", "id_namespace", "session_id"}
    basket = document["paths"][BASKET]["post"]
    assert basket["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/Basket")
    assert basket["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/BasketList")


def test_a_switch_under_concurrent_requests_never_mixes_versions(api):
    """Clients of the three routes keep asking while five versions are switched in: every answer is 200, its
    body's version is the one its header names, and its list is that version's."""
    url, store = api
    markers = {f"2026-10-31.items.20261101T000001.000{n}": f"900{n}" for n in range(6)}
    versions = list(markers)
    publish_items(store, versions[0], markers[versions[0]])
    stop, problems, seen = threading.Event(), [], set()

    def expected(route: str, version: str) -> list[dict]:
        if route == "similar":
            return SIMILAR_77 + [entry(markers[version], 0.1)]
        return [entry("40", 8.0), entry("13", 5.0)] if route == "bought-together" else CART_STYLES

    def client(route: str):
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {TOKENS[0]}"
            while not stop.is_set():
                if route == "basket":
                    answer = session.post(f"{url}{BASKET}", json={"style_ids": CART}, timeout=5)
                else:
                    answer = session.get(f"{url}/v1/styles/12/{route}", timeout=5)
                version = answer.headers.get("X-Reco-Version")
                seen.add(version)
                body = answer.json() if answer.status_code == 200 else {}
                if body.get("version") != version or body.get("styles") != expected(route, version):
                    problems.append((route, answer.status_code, version, answer.content[:80]))

    clients = [threading.Thread(target=client, args=(r,)) for r in ("similar", "bought-together", "basket")]
    for thread in clients:
        thread.start()
    try:
        for version in versions[1:]:
            time.sleep(0.2)
            publish_items(store, version, markers[version])
        time.sleep(0.2)
    finally:
        stop.set()
        for thread in clients:
            thread.join()
    assert problems == []
    assert len(seen) >= 4  # the clients saw the switches
