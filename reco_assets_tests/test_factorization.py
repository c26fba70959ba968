import math

from reco_assets.pipeline.factorization import AlsParams, fit_cohort, user_blocks
from reco_assets.settings import RecoSettings

PARAMS = RecoSettings(als_rank=4, als_max_iter=5).pick(AlsParams, prefix="als_")


def test_user_blocks_follow_the_reference_rule():
    # Below the threshold of 100,000 members: ceil(members / 5,000); above: ceil(members / 50,000).
    assert user_blocks(1, PARAMS) == 1
    assert user_blocks(5_000, PARAMS) == 1
    assert user_blocks(5_001, PARAMS) == 2
    assert user_blocks(99_999, PARAMS) == 20
    assert user_blocks(100_000, PARAMS) == 2
    assert user_blocks(2_000_000, PARAMS) == 40


def test_factors_keep_the_64_bit_ids_and_skip_non_positive_ratings(spark):
    big = 2**40  # beyond 32 bits: mapped inside the step, never in the output
    ratings = spark.createDataFrame(
        [(big + m, 7_000_000_000 + g, float(3 + m * g % 40)) for m in range(6) for g in range(5) if (m + g) % 3]
        + [(big + 99, 7_000_000_001, -5.0)],  # only disengagement: not trained
        "member_id long, subclass_brand_id long, rating double",
    )
    factors, stats = fit_cohort(ratings, PARAMS)
    rows = factors.collect()
    members = {r["id"] for r in rows if r["side"] == "member"}
    items = {r["id"] for r in rows if r["side"] == "item"}
    assert members == {big + m for m in range(6)}
    assert items == {7_000_000_000 + g for g in range(5)}
    assert all(len(r["factors"]) == 4 and all(math.isfinite(x) for x in r["factors"]) for r in rows)
    assert stats["members"] == 6 and stats["items"] == 5 and stats["user_blocks"] == 1


def test_a_refit_gives_the_same_factors(spark):
    ratings = spark.createDataFrame(
        [(m, g, float(1 + (m * 7 + g) % 5)) for m in range(20) for g in range(8) if (m + g) % 2],
        "member_id long, subclass_brand_id long, rating double",
    )
    first = sorted((r["side"], r["id"], tuple(r["factors"])) for r in fit_cohort(ratings, PARAMS)[0].collect())
    again = sorted((r["side"], r["id"], tuple(r["factors"])) for r in fit_cohort(ratings, PARAMS)[0].collect())
    assert first == again


def test_a_cohort_without_positive_ratings_gets_no_factors(spark):
    ratings = spark.createDataFrame([(1, 2, -5.0)], "member_id long, subclass_brand_id long, rating double")
    factors, stats = fit_cohort(ratings, PARAMS)
    assert factors.count() == 0 and stats["members"] == 0
