import math
from dataclasses import replace

import pytest
from pyspark.sql import functions as F

from reco_assets.pipeline.factorization import AlsParams, fit_cohorts, user_blocks
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


@pytest.mark.parametrize("engine", ["implicit", "mllib"])
def test_factors_keep_the_64_bit_ids_and_skip_non_positive_ratings(spark, engine):
    big = 2**40  # beyond 32 bits: mapped inside the step, never in the output
    ratings = spark.createDataFrame(
        [(big + m, 7_000_000_000 + g, float(3 + m * g % 40)) for m in range(6) for g in range(5) if (m + g) % 3]
        + [(big + 99, 7_000_000_001, -5.0)],  # only disengagement: not trained
        "member_id long, subclass_brand_id long, rating double",
    ).withColumn("cohort", F.lit("men_1"))
    rows = fit_cohorts(ratings, replace(PARAMS, engine=engine)).collect()
    members = {r["id"] for r in rows if r["side"] == "member"}
    items = {r["id"] for r in rows if r["side"] == "item"}
    assert members == {big + m for m in range(6)}
    assert items == {7_000_000_000 + g for g in range(5)}
    assert all(len(r["factors"]) == 4 and all(math.isfinite(x) for x in r["factors"]) for r in rows)
    assert {r["cohort"] for r in rows} == {"men_1"}


def test_a_refit_gives_the_same_factors(spark):
    ratings = spark.createDataFrame(
        [(m, g, float(1 + (m * 7 + g) % 5)) for m in range(20) for g in range(8) if (m + g) % 2],
        "member_id long, subclass_brand_id long, rating double",
    ).withColumn("cohort", F.lit("women_2"))
    first = sorted((r["side"], r["id"], tuple(r["factors"])) for r in fit_cohorts(ratings, PARAMS).collect())
    again = sorted((r["side"], r["id"], tuple(r["factors"])) for r in fit_cohorts(ratings, PARAMS).collect())
    assert first == again


def test_every_cohort_gets_its_own_model_in_one_job(spark):
    ratings = spark.createDataFrame(
        [
            (c, 100 * i + m, 10 * i + g, float(1 + (m + g) % 4))
            for i, c in enumerate(["men_1", "kids_3"])
            for m in range(5)
            for g in range(4)
        ],
        "cohort string, member_id long, subclass_brand_id long, rating double",
    )
    rows = fit_cohorts(ratings, PARAMS).collect()
    members = {(r["cohort"], r["id"]) for r in rows if r["side"] == "member"}
    items = {(r["cohort"], r["id"]) for r in rows if r["side"] == "item"}
    assert members == {("men_1", m) for m in range(5)} | {("kids_3", 100 + m) for m in range(5)}
    assert items == {("men_1", g) for g in range(4)} | {("kids_3", 10 + g) for g in range(4)}


def test_a_cohort_without_positive_ratings_gets_no_factors(spark):
    ratings = spark.createDataFrame(
        [("home_1", 1, 2, -5.0)], "cohort string, member_id long, subclass_brand_id long, rating double"
    )
    assert fit_cohorts(ratings, PARAMS).count() == 0
