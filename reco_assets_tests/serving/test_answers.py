"""Request-time shaping of a stored payload, and which ids the API accepts: plain functions, no server."""

import orjson
import pytest

from reco_assets.serving.answers import is_lakehouse_id, is_source_id, shape

GROUP = {
    "position": 1,
    "group_key": "all",
    "group_name": "Picked for you",
    "affinity": 2.5,
    "card": ["1", "2", "3"],
    "full": ["1", "2", "3", "4", "5", "6"],
    "card_source_ids": ["a", "b", "c"],
    "full_source_ids": ["a", "b", "c", "d", "e", "f"],
}
PAYLOAD = orjson.dumps(
    {
        "member_id": "9",
        "version": "v1",
        "fallback": False,
        "feeds": {
            "products": [GROUP],
            "brands": [GROUP | {"group_key": "Nike", "card": ["2", "4"], "card_source_ids": ["b", "d"]}],
            "categories": [
                GROUP
                | {"position": 1, "full": ["2"], "card": ["2"], "full_source_ids": ["b"], "card_source_ids": ["b"]}
            ],
        },
    }
)


def test_nothing_to_change_passes_the_stored_bytes_through():
    assert shape(PAYLOAD) is PAYLOAD
    assert shape(PAYLOAD, frozenset({"7", "99"})) is PAYLOAD  # withdrawn styles it does not name


def test_withdrawn_styles_leave_every_list_and_their_source_ids_with_them():
    answer = orjson.loads(shape(PAYLOAD, frozenset({"2", "5"})))
    products = answer["feeds"]["products"][0]
    assert products["full"] == ["1", "3", "4", "6"]
    assert products["full_source_ids"] == ["a", "c", "d", "f"]
    # the card is the head of the full list: it keeps its three styles
    assert products["card"] == ["1", "3", "4"] and products["card_source_ids"] == ["a", "c", "d"]
    brand = answer["feeds"]["brands"][0]  # a card that is not the head of its list is only filtered
    assert brand["card"] == ["4"] and brand["card_source_ids"] == ["d"]
    assert answer["feeds"]["categories"] == []  # a group left without styles is dropped
    assert answer["member_id"] == "9" and answer["version"] == "v1"


def test_one_feed_and_a_limit():
    answer = orjson.loads(shape(PAYLOAD, feed="products", limit=2))
    assert answer["feeds"]["brands"] == answer["feeds"]["categories"] == []  # the schema's feeds stay
    group = answer["feeds"]["products"][0]
    assert group["full"] == ["1", "2"] and group["card"] == ["1", "2"] and group["full_source_ids"] == ["a", "b"]


def test_fill_sets_fields_of_a_fallback():
    answer = orjson.loads(shape(PAYLOAD, fill={"member_id": "77", "member_source_id": "abc"}))
    assert answer["member_id"] == "77" and answer["member_source_id"] == "abc"
    assert answer["feeds"] == orjson.loads(PAYLOAD)["feeds"]


@pytest.mark.parametrize(
    "text, valid",
    [
        ("0", True),
        ("8102", True),
        (str(2**63 - 1), True),
        (str(2**63), False),
        ("-1", False),
        ("1.0", False),
        ("1e3", False),
        ("abc", False),
        ("", False),
        ("\u0661\u0662", False),  # Arabic-Indic digits: isdigit, but not an id
        ("00000000000000000001", False),  # 20 characters
        ("007", False),  # not as the lakehouse writes member 7
        ("00", False),
    ],
)
def test_member_ids(text, valid):
    assert is_lakehouse_id(text) is valid


def test_source_ids():
    assert is_source_id("17850") and is_source_id("user-\u00e9")
    assert not is_source_id("") and not is_source_id("a" * 257) and not is_source_id("a\nb")
