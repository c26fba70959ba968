import numpy as np
import pytest

from reco_assets.constants import COHORTS
from reco_assets.pipeline.cohorts import bucket_of, member_cohorts
from reco_assets.settings import RecoSettings
from reco_assets_tests.conftest import rows, utc

EVENTS = "member_id long, event_type string, price double, division string, event_time timestamp, quantity int"


def _events(spark, records):
    return spark.createDataFrame([(*r, utc(2026, 10, 30), None) for r in records], EVENTS)


def test_p90_of_purchase_prices_is_robust_to_one_big_purchase(spark):
    # Nine purchases at 20..100 and one at 5000: P90 by linear interpolation between the 9th (100) and
    # 10th (5000) values is 100 + 0.1 * 4900 = 590; the maximum would be 5000.
    prices = [20, 30, 40, 50, 60, 70, 80, 90, 100, 5000]
    records = [(1, "purchase", float(p), "women") for p in prices]
    events = _events(spark, records)
    ratings = spark.createDataFrame([(1, 1, 1.0)], "member_id long, subclass_brand_id long, rating double")
    result = member_cohorts(events, ratings, RecoSettings().ratings.weights, 5, 0.9, {}).collect()
    assert result[0]["p90_purchase_price"] == pytest.approx(590.0) == np.percentile(prices, 90)


def test_spend_buckets_are_near_equal_quintiles_and_division_is_dominant_by_points(spark):
    # Ten buyers with P90 prices 10, 20, ... 100: quintile cut points fall between every second member.
    records = []
    for m in range(1, 11):
        records.append((m, "purchase", float(10 * m), "men" if m % 2 else "home"))  # 40 points
    # Member 1 also views a lot of women's styles: 15 views x 3 = 45 points > 40 for men.
    records += [(1, "product_view", 10.0, "women")] * 15
    # Member 11 never bought: browse P90 of 55 falls in bucket 3 of the buyers' cut points.
    records += [(11, "product_view", 55.0, "kids"), (11, "add_to_cart", 55.0, "kids")]
    events = _events(spark, records)
    ratings = spark.createDataFrame(
        [(m, 1, 1.0) for m in range(1, 12)], "member_id long, subclass_brand_id long, rating double"
    )
    result = member_cohorts(events, ratings, RecoSettings().ratings.weights, 5, 0.9, {})
    got = {r["member_id"]: (r["division_affinity"], r["spend_bucket"], r["spend_basis"]) for r in result.collect()}
    buckets = [got[m][1] for m in range(1, 11)]
    assert buckets == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert got[1][0] == "women" and got[2][0] == "home" and got[3][0] == "men"
    assert got[11] == ("kids", 3, "browsing")
    assert {r["cohort"] for r in result.collect() if r["member_id"] == 11} == {"kids_3"}


def test_every_rated_member_gets_exactly_one_cohort_even_on_a_division_tie(spark):
    # 40 points in home and 40 in men: the tie goes to the earlier division of the reference order (men).
    events = _events(spark, [(7, "purchase", 50.0, "home"), (7, "purchase", 50.0, "men")])
    ratings = spark.createDataFrame(
        [(7, 1, 1.0), (7, 2, 1.0), (8, 3, 3.0)], "member_id long, subclass_brand_id long, rating double"
    )
    result = member_cohorts(events, ratings, RecoSettings().ratings.weights, 5, 0.9, {})
    assert rows(result, "member_id", "division_affinity") == [(7, "men"), (8, "women")]


def test_division_spellings_are_mapped_and_unknown_divisions_do_not_vote(spark):
    """Every cohort key is one a partition runs, whatever the catalog calls its divisions."""
    events = _events(
        spark,
        [
            (1, "purchase", 50.0, " Womens "),  # an alias, with other case and spaces: women, 40 points
            (1, "product_view", 50.0, "MEN"),  # a known division in capitals: men, 3 points
            (2, "purchase", 50.0, "Outdoor"),  # unknown: no vote (40 points ignored)
            (2, "product_view", 50.0, "Kids"),  # kids, 3 points: the only vote
            (3, "purchase", 50.0, "Garden"),  # unknown only: the default division
        ],
    )
    ratings = spark.createDataFrame(
        [(m, 1, 1.0) for m in (1, 2, 3)], "member_id long, subclass_brand_id long, rating double"
    )
    result = member_cohorts(
        events, ratings, RecoSettings().ratings.weights, 5, 0.9, RecoSettings().cohorts.division_aliases
    )
    assert rows(result, "member_id", "division_affinity") == [(1, "women"), (2, "kids"), (3, "women")]
    assert {r["cohort"] for r in result.collect()} <= set(COHORTS)


def test_settings_refuse_cohorts_no_partition_runs():
    with pytest.raises(ValueError, match="spend_buckets must be 5"):
        RecoSettings().changed({"cohorts.spend_buckets": 4})
    with pytest.raises(ValueError, match="not cohort divisions"):
        RecoSettings().changed({"cohorts.division_aliases": {"garden": "outdoor"}})


def test_bucket_of_counts_cut_points_strictly_below(spark):
    frame = spark.createDataFrame([(v,) for v in (1.0, 2.0, 2.5, 3.0, 9.0)], "v double")
    got = [r["b"] for r in frame.select(bucket_of(frame["v"], [2.0, 3.0]).alias("b")).orderBy("v").collect()]
    assert got == [1, 1, 2, 2, 3]
