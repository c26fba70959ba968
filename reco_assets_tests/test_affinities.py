import numpy as np
import pytest

from reco_assets.pipeline.affinities import (
    boost_affinities,
    diversify,
    intent_subclasses,
    top_k_affinities,
    top_k_block,
)
from reco_assets_tests.conftest import rows, utc


@pytest.mark.parametrize("k", [1, 5, 40, 100])
def test_top_k_block_matches_a_full_sort(k):
    rng = np.random.default_rng(3)
    members, items = rng.normal(size=(30, 8)), rng.normal(size=(40, 8))
    item_ids = np.arange(1000, 1040)
    got = top_k_block(np.arange(30), members, item_ids, items, k)
    scores = members @ items.T
    for m in range(30):
        expected = [int(item_ids[i]) for i in sorted(range(40), key=lambda i: -scores[m, i])][: min(k, 40)]
        mine = got[got.member_id == m]
        assert mine.subclass_brand_id.tolist() == expected
        assert mine["rank"].tolist() == list(range(1, len(expected) + 1))


def test_top_k_block_breaks_ties_by_group_id():
    member = np.array([[1.0, 0.0]])
    items = np.array([[1.0, 0.0], [1.0, 5.0], [1.0, -5.0], [2.0, 0.0]])  # ids 7, 5, 9, 3: three tie at 1.0
    got = top_k_block(np.array([1]), member, np.array([3, 5, 7, 9]), items[[3, 1, 0, 2]], 3)
    assert got.subclass_brand_id.tolist() == [3, 5, 7]


def test_top_k_affinities_scores_only_candidates_and_carries_the_rating(spark):
    factors = spark.createDataFrame(
        [
            ("member", 1, [1.0, 0.0]),
            ("member", 2, [0.0, 1.0]),
            ("item", 10, [3.0, 1.0]),
            ("item", 20, [2.0, 2.0]),
            ("item", 30, [1.0, 3.0]),
            ("item", 40, [9.0, 9.0]),  # not on sale: never recommended
        ],
        "side string, id long, factors array<float>",
    )
    ratings = spark.createDataFrame([(1, 20, 13.0)], "member_id long, subclass_brand_id long, rating double")
    result = top_k_affinities(factors, [10, 20, 30], ratings, k=2)
    assert rows(result, "member_id", "rank", "subclass_brand_id", "prediction", "rating") == [
        (1, 1, 10, 3.0, 0.0),
        (1, 2, 20, 2.0, 13.0),
        (2, 1, 30, 3.0, 0.0),
        (2, 2, 20, 2.0, 0.0),
    ]


EVENTS = "member_id long, subclass string, event_type string, event_time timestamp"


def test_intent_is_the_top_browsed_subclasses_not_bought(spark):
    events = spark.createDataFrame(
        [
            *[(1, "duvets", "product_view", utc(2026, 10, 30, h)) for h in range(5)],  # 5 browses
            *[(1, "towels", "product_view", utc(2026, 10, 30, h)) for h in range(4)],
            (1, "towels", "purchase", utc(2026, 10, 30, 6)),  # bought: no intent
            *[(1, "pans", "add_to_cart", utc(2026, 10, 29, h)) for h in range(3)],
            *[(1, "knives", "product_view", utc(2026, 10, 29, h)) for h in range(2)],
            (1, "sheets", "product_view", utc(2026, 10, 29, 1)),
            (1, "plates", "product_view", utc(2026, 10, 29, 2)),  # ties with sheets, browsed later
            (2, "jeans", "still_want_it", utc(2026, 10, 29, 2)),  # not a browse
        ],
        EVENTS,
    )
    result = intent_subclasses(events, 3)
    assert rows(result, "member_id", "intent_rank", "subclass") == [(1, 1, "duvets"), (1, 2, "pans"), (1, 3, "knives")]
    four = intent_subclasses(events, 4)
    assert rows(four, "intent_rank", "subclass")[-1] == (4, "plates")


def test_boost_lifts_only_intent_subclasses_by_a_share_of_the_spread(spark):
    affinities = spark.createDataFrame(
        [(1, 11, 0.0, 1.0, 1), (1, 12, 0.0, 0.6, 2), (1, 21, 0.0, 0.2, 3), (2, 11, 0.0, 0.5, 1)],
        "member_id long, subclass_brand_id long, rating double, prediction double, rank int",
    )
    groups = spark.createDataFrame(
        [(11, "dresses"), (12, "tops"), (21, "duvets")], "subclass_brand_id long, subclass string"
    )
    intents = spark.createDataFrame([(1, "duvets", 1)], "member_id long, subclass string, intent_rank int")
    result = boost_affinities(affinities, intents, groups, strength=1.0)
    # member 1: spread 1.0 - 0.2 = 0.8, so duvets scores 0.2 + 0.8 = 1.0 and ties dresses (id 11 first)
    assert rows(result, "member_id", "rank", "subclass_brand_id", "boost", "score") == [
        (1, 1, 11, 0.0, 1.0),
        (1, 2, 21, pytest.approx(0.8), pytest.approx(1.0)),
        (1, 3, 12, 0.0, 0.6),
        (2, 1, 11, 0.0, 0.5),
    ]


def test_diversify_keeps_at_most_n_per_class_in_score_order(spark):
    boosted = spark.createDataFrame(
        [(1, g, s) for g, s in [(1, 0.99), (2, 0.98), (3, 0.97), (4, 0.96), (5, 0.95), (6, 0.9), (7, 0.8)]],
        "member_id long, subclass_brand_id long, score double",
    )
    groups = spark.createDataFrame(
        [(1, "dresses"), (2, "dresses"), (3, "dresses"), (4, "dresses"), (5, "tops"), (6, "dresses"), (7, "heels")],
        "subclass_brand_id long, class string",
    )
    result = diversify(boosted, groups, per_class=3)
    assert rows(result, "rank", "subclass_brand_id", order=["rank"]) == [(1, 1), (2, 2), (3, 3), (4, 5), (5, 7)]
