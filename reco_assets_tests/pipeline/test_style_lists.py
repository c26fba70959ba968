"""The style lists of a style's page on a hand-built day: listings of five groups, their neighbours and
rules, every list worked out by hand (score = group score / listing rank, ties by the smaller style id)."""

import orjson
import pytest

from reco_assets.pipeline.rules import basket_popularity
from reco_assets.pipeline.style_lists import blended_neighbors, bought_lists, popular_styles, similar_lists
from reco_assets.serving.item_lists import list_rows, listing_rows, rule_rows
from reco_assets_tests.conftest import rows

LISTINGS = "subclass_brand_id long, style_id long, rank int, division string, department string, class string, " + (
    "subclass string, popularity_score double"
)
# group 1 and 2: class (w, tops, tees), subclasses crew and v-neck; 3 and 4: (w, tops, shirts); 5: no class
HAND_LISTINGS = [
    (1, 101, 1, "w", "tops", "tees", "crew", 5.0),
    (1, 102, 2, "w", "tops", "tees", "crew", 9.0),
    (2, 201, 1, "w", "tops", "tees", "v-neck", 1.0),
    (2, 202, 2, "w", "tops", "tees", "v-neck", 3.0),
    (2, 203, 3, "w", "tops", "tees", "v-neck", 2.0),
    (3, 301, 1, "w", "tops", "shirts", "oxford", 4.0),
    (4, 401, 1, "w", "tops", "shirts", "oxford", 7.0),
    (5, 501, 1, None, None, None, None, 0.5),
    (6, 601, 1, "m", "tops", "tees", "crew", 99.0),  # men's tees: another class, though its name repeats
]
NEIGHBORS = [
    # group, neighbour, score: 9 is not listed (nothing on sale)
    (1, 2, 0.6),
    (1, 3, 0.5),
    (1, 9, 0.9),
    (2, 1, 0.6),
    (2, 3, 0.3),
    (3, 9, 0.8),
]
RULES = [
    # antecedent, consequent, rank, lift, confidence
    ([1], 3, 1, 2.0, 0.5),
    ([1], 2, 2, 4.0, 0.1),
    ([1, 2], 3, 1, 3.0, 0.5),  # a pair: for carts, not a style's page
    ([2], 9, 1, 2.0, 0.5),
]
LENGTH = 3


@pytest.fixture
def listings(spark):
    return spark.createDataFrame(HAND_LISTINGS, LISTINGS)


@pytest.fixture
def rules(spark):
    return spark.createDataFrame(
        RULES, "antecedent array<long>, consequent long, rank int, lift double, confidence double"
    )


def _lists(frame):
    return rows(frame, "subclass_brand_id", "position", "fallback", "style_id", "group_id", "score")


def test_similar_styles_spread_over_the_neighbours_listings(spark, listings):
    neighbors = spark.createDataFrame(NEIGHBORS, "subclass_brand_id long, neighbor_id long, score double")
    got = _lists(similar_lists(listings, blended_neighbors(neighbors, None, 20), LENGTH))
    assert got == sorted(
        [
            # 1: 201 (0.6 / 1), 301 (0.5 / 1), 202 (0.6 / 2); 203 (0.6 / 3) is past the length
            (1, 1, False, 201, 2, pytest.approx(0.6)),
            (1, 2, False, 301, 3, pytest.approx(0.5)),
            (1, 3, False, 202, 2, pytest.approx(0.3)),
            # 2: 101 (0.6), then 102 (0.3) and 301 (0.3) tie: the smaller id first
            (2, 1, False, 101, 1, pytest.approx(0.6)),
            (2, 2, False, 102, 1, pytest.approx(0.3)),
            (2, 3, False, 301, 3, pytest.approx(0.3)),
            # 3: its only neighbour has nothing listed; 4 has none: their class's most popular styles
            (3, 1, True, 401, 4, 7.0),
            (3, 2, True, 301, 3, 4.0),
            (4, 1, True, 401, 4, 7.0),
            (4, 2, True, 301, 3, 4.0),
            # 5 has no class: a class of its own
            (5, 1, True, 501, 5, 0.5),
            # 6: men's tees are not women's tees
            (6, 1, True, 601, 6, 99.0),
        ]
    )


def test_the_factor_models_similar_groups_follow_the_session_neighbours(spark):
    neighbors = spark.createDataFrame(NEIGHBORS, "subclass_brand_id long, neighbor_id long, score double")
    factor_similar = spark.createDataFrame(
        [(1, 2, 0.9), (1, 4, 0.8), (1, 5, 0.4), (1, 6, 0.1), (4, 1, 0.8), (4, 3, 0.2)],
        "subclass_brand_id long, neighbor_id long, cosine double",
    )
    got = rows(blended_neighbors(neighbors, factor_similar, 5), "subclass_brand_id", "group_id", "score")
    assert got == sorted(
        [
            # 1: its three neighbours (weakest 0.5), then 4 and 5 (2 is a neighbour already) up to five
            (1, 9, 0.9),
            (1, 2, 0.6),
            (1, 3, 0.5),
            (1, 4, pytest.approx(0.8 * 0.5)),
            (1, 5, pytest.approx(0.4 * 0.5)),
            (2, 1, 0.6),
            (2, 3, 0.3),
            (3, 9, 0.8),
            # 4 has no neighbour of its own: the cosines as they are
            (4, 1, 0.8),
            (4, 3, 0.2),
        ]
    )


def test_bought_together_spreads_one_group_rules_and_falls_back_to_the_baskets_favourites(spark, listings, rules):
    popular_groups = spark.createDataFrame([(2, 10.0), (4, 6.0)], "group_id long, score double")
    popular = popular_styles(popular_groups, listings, LENGTH)
    # 201 (10 / 1), 401 (6 / 1), 202 (10 / 2); 203 (10 / 3) is past the length
    assert rows(popular, "position", "style_id", "score") == [(1, 201, 10.0), (2, 401, 6.0), (3, 202, 5.0)]
    got = _lists(bought_lists(listings, rules, popular, LENGTH))
    fallback = [(1, True, 201, 2, 10.0), (2, True, 401, 4, 6.0), (3, True, 202, 2, 5.0)]
    assert got == sorted(
        [
            # 1: 301 (2.0 x 0.5), 201 (4.0 x 0.1), 202 (0.4 / 2)
            (1, 1, False, 301, 3, pytest.approx(1.0)),
            (1, 2, False, 201, 2, pytest.approx(0.4)),
            (1, 3, False, 202, 2, pytest.approx(0.2)),
        ]
        + [(group, *entry) for group in (2, 3, 4, 5, 6) for entry in fallback]
    )


def test_basket_popularity_counts_the_baskets_holding_each_group(spark):
    baskets = spark.createDataFrame([([1, 2],), ([2],), ([2, 3],), ([1],), ([4],)], "items array<long>")
    # 2 in three baskets, 1 in two, 3 and 4 in one each: the tie keeps the smaller id
    assert rows(basket_popularity(baskets, 3), "group_id", "score") == [(1, 2.0), (2, 3.0), (3, 1.0)]


def _stored(frame) -> dict:
    return {bytes(r["key"]).decode(): orjson.loads(bytes(r["value"])) for r in frame.collect()}


def test_stored_keys_hold_the_lists_as_json_with_ids_as_text(spark, listings):
    big = 2**62 + 3  # 63-bit ids must survive: a double would round this one
    lists = spark.createDataFrame(
        [(1, False, 2, 201, 0.5, 2), (1, False, 1, big, 0.75, 2)],
        "subclass_brand_id long, fallback boolean, position int, style_id long, score double, group_id long",
    )
    groups = spark.createDataFrame([(1,), (2,)], "subclass_brand_id long")
    assert _stored(list_rows(b"gs:", groups, lists)) == {
        "gs:1": {
            "fallback": False,
            "styles": [
                {"style_id": str(big), "score": 0.75, "group_key": "2"},
                {"style_id": "201", "score": 0.5, "group_key": "2"},
            ],
        },
        "gs:2": {"fallback": True, "styles": []},  # a listed group without a list
    }
    sources = spark.createDataFrame([(big, "SKU-9")], "style_id long, style_source_id string")
    assert _stored(list_rows(b"gb:", groups.where("subclass_brand_id = 1"), lists, sources))["gb:1"]["styles"] == [
        {"style_id": str(big), "score": 0.75, "group_key": "2", "style_source_id": "SKU-9"},
        {"style_id": "201", "score": 0.5, "group_key": "2"},
    ]


def test_listing_and_rule_keys(spark, listings):
    stored = _stored(listing_rows(listings.where("subclass_brand_id IN (1, 2, 5)")))
    assert stored == {
        "y:101": 1,
        "y:102": 1,
        "y:201": 2,
        "y:202": 2,
        "y:203": 2,
        "y:501": 5,
        "gl:1": ["101", "102"],
        "gl:2": ["201", "202", "203"],
        "gl:5": ["501"],
        # each group's subclass by its full path; group 5 has none
        "gc:1": ["w", "tops", "tees", "crew"],
        "gc:2": ["w", "tops", "tees", "v-neck"],
    }
    big = 2**62 + 3
    rules = spark.createDataFrame(
        [([1], big, 2, 4.0, 0.1), ([1], 3, 1, 2.0, 0.5), ([2, 10], 3, 1, 3.0, 0.5)],
        "antecedent array<long>, consequent long, rank int, lift double, confidence double",
    )
    raw = {bytes(r["key"]).decode(): bytes(r["value"]) for r in rule_rows(rules).collect()}
    assert raw.keys() == {"ra:1", "ra:2,10"}  # the key as baskets.antecedent_key writes it
    assert orjson.loads(raw["ra:1"]) == [[3, 1.0], [big, pytest.approx(0.4)]]
    assert orjson.loads(raw["ra:2,10"]) == [[3, 1.5]]
