import math

import pytest
from pyspark.sql import functions as F

from reco_assets.pipeline.factorization import fit_cohorts, user_blocks
from reco_assets.settings import ENGINES, ImplicitAls, MllibAls, RecoSettings, SoftmaxModel
from reco_assets_tests.conftest import DAY

PARAMS = ImplicitAls(rank=4, max_iter=5, scope="cohort")
SMALL = {
    "implicit": PARAMS,
    "mllib": MllibAls(rank=4, max_iter=5, scope="cohort"),
    "softmax": SoftmaxModel(rank=3, scope="cohort"),
}
"""Each engine's small model of these tests."""


def test_user_blocks_follow_the_reference_rule():
    # Below the threshold of 100,000 members: ceil(members / 5,000); above: ceil(members / 50,000).
    assert user_blocks(1, SMALL["mllib"]) == 1
    assert user_blocks(5_000, SMALL["mllib"]) == 1
    assert user_blocks(5_001, SMALL["mllib"]) == 2
    assert user_blocks(99_999, SMALL["mllib"]) == 20
    assert user_blocks(100_000, SMALL["mllib"]) == 2
    assert user_blocks(2_000_000, SMALL["mllib"]) == 40


@pytest.mark.parametrize("engine", ["implicit", "mllib", "softmax"])
def test_factors_keep_the_64_bit_ids_and_skip_non_positive_ratings(spark, engine):
    big = 2**40  # beyond 32 bits: mapped inside the step, never in the output
    ratings = spark.createDataFrame(
        [(big + m, 7_000_000_000 + g, float(3 + m * g % 40)) for m in range(6) for g in range(5) if (m + g) % 3]
        + [(big + 99, 7_000_000_001, -5.0)],  # only disengagement: not trained
        "member_id long, subclass_brand_id long, rating double",
    ).withColumn("cohort", F.lit("men_1"))
    rows = fit_cohorts(ratings, SMALL[engine]).collect()
    members = {r["id"] for r in rows if r["side"] == "member"}
    items = {r["id"] for r in rows if r["side"] == "item"}
    assert members == {big + m for m in range(6)}
    assert items == {7_000_000_000 + g for g in range(5)}
    width = SMALL[engine].rank + 1 if engine == "softmax" else 4  # the softmax model's bias comes last
    assert all(len(r["factors"]) == width and all(math.isfinite(x) for x in r["factors"]) for r in rows)
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


def _two_cohorts(spark):
    """Two cohorts rating partly different groups: men_1 members 0..5 on groups 0..3, kids_3 members
    100..105 on groups 2..6."""
    cells = [("men_1", m, g, float(1 + (m + 2 * g) % 5)) for m in range(6) for g in range(4) if (m + g) % 3]
    cells += [("kids_3", 100 + m, g, float(1 + (m * g) % 7)) for m in range(6) for g in range(2, 7) if (m + g) % 2]
    return cells, spark.createDataFrame(cells, "cohort string, member_id long, subclass_brand_id long, rating double")


def _by_cohort(rows, side):
    """(cohort, id) -> factors of one side; every key once."""
    keyed = [((r["cohort"], r["id"]), tuple(r["factors"])) for r in rows if r["side"] == side]
    assert len(keyed) == len(dict(keyed)), f"a {side} row repeated within a cohort"
    return dict(keyed)


def test_a_global_model_is_one_fit_on_every_member_shared_out_to_the_cohorts(spark):
    import numpy as np
    import scipy.sparse as sp
    from implicit.cpu.als import AlternatingLeastSquares

    cells, ratings = _two_cohorts(spark)
    params = PARAMS.model_copy(update={"scope": "global"})
    rows = fit_cohorts(ratings, params).collect()
    items, members = _by_cohort(rows, "item"), _by_cohort(rows, "member")

    # every cohort gets every group anyone rated, and each member appears under their own cohort only
    assert set(items) == {(c, g) for c in ("men_1", "kids_3") for g in range(7)}
    assert set(members) == {("men_1", m) for m in range(6)} | {("kids_3", 100 + m) for m in range(6)}
    assert all(items[("men_1", g)] == items[("kids_3", g)] for g in range(7))

    # the factors are those of one `implicit` fit on all the cells, set up here as the module documents it:
    # confidence 1 + alpha * rating, lambda times the mean count of ratings per member, ids in sorted order
    member_ids = sorted({m for _, m, _, _ in cells})
    row = {m: i for i, m in enumerate(member_ids)}
    matrix = sp.csr_matrix(
        ([1.0 + params.alpha * r for *_, r in cells], ([row[m] for _, m, _, _ in cells], [g for *_, g, _ in cells])),
        shape=(len(member_ids), 7),
        dtype=np.float32,
    )
    model = AlternatingLeastSquares(
        factors=params.rank,
        regularization=params.reg_param * len(cells) / len(member_ids),
        alpha=1.0,
        iterations=params.max_iter,
        num_threads=1,  # the row solves are independent: the pipeline's threads give the same factors
        use_cg=params.conjugate_gradient,
        random_state=params.seed,
    )
    model.fit(matrix, show_progress=False)
    for g in range(7):
        assert np.allclose(items[("men_1", g)], model.item_factors[g], atol=1e-5)
    cohort_of = {m: c for c, m, _, _ in cells}
    for m in member_ids:
        assert np.allclose(members[(cohort_of[m], m)], model.user_factors[row[m]], atol=1e-5)


def test_an_unknown_scope_or_another_engines_setting_is_refused():
    with pytest.raises(ValueError, match="cohort.*global"):
        ImplicitAls(scope="everyone")
    with pytest.raises(ValueError, match="iterations"):
        ImplicitAls(iterations=3)  # the softmax engine's
    with pytest.raises(ValueError, match="no setting 'factor_model.alpha'"):
        RecoSettings().changed({"factor_model.alpha": 0.2})  # the default engine (softmax) has no alpha


def test_a_backfill_of_one_cohort_gets_the_global_models_factors_of_the_whole_day(spark, tmp_path):
    from reco_assets.assets.common import stage_day
    from reco_assets.pipeline import stages
    from reco_assets.resources.lakehouse import Lakehouse

    lake, day = Lakehouse(root=str(tmp_path / "lakehouse")), DAY
    _, cells = _two_cohorts(spark)
    stage_day(lake, "implicit_ratings", cells.drop("cohort"), day).commit()
    stage_day(lake, "member_cohorts", cells.select("member_id", "cohort").distinct(), day).commit()
    params = PARAMS.model_copy(update={"scope": "global"})
    reader = stages.Reader(spark, lake)

    def fit_day(reader, day, cohorts, params):  # what the `als_factors` asset fits for `cohorts`
        rated, members = reader.day("implicit_ratings", day), reader.day("member_cohorts", day)
        return stages.factor_models(rated, members, params, cohorts)

    alone = fit_day(reader, day, ["men_1"], params).collect()
    whole = [r for r in fit_day(reader, day, ["men_1", "kids_3"], params).collect() if r["cohort"] == "men_1"]
    assert {r["cohort"] for r in alone} == {"men_1"}
    assert _by_cohort(alone, "item") == _by_cohort(whole, "item")
    assert _by_cohort(alone, "member") == _by_cohort(whole, "member")
    # kids_3's groups 4..6, which no men_1 member rated, are in men_1's model: it was fitted on both cohorts
    assert {g for _, g in _by_cohort(alone, "item")} == set(range(7))
    # the reference scope fits men_1 on its own members: its groups only
    own = fit_day(reader, day, ["men_1"], PARAMS).collect()
    assert {g for _, g in _by_cohort(own, "item")} == set(range(4))


@pytest.mark.parametrize(
    "engine, own",
    [("softmax", {"reg_param": 5.0, "iterations": 10}), ("implicit", {"alpha": 2.0}), ("mllib", {"reg_param": 9.0})],
)
def test_a_stored_models_key_follows_its_engines_settings_and_the_ratings(engine, own):
    # a stored model is reused while its key holds: its engine's settings, its seed and scope, the settings of
    # the ratings and cohorts retire it; serving or evaluation settings do not
    base = RecoSettings().changed({"factor_model.engine": engine})
    key = base.model_key()
    for name, value in own.items():
        assert base.changed({f"factor_model.{name}": value}).model_key() != key
    assert base.changed({"factor_model.seed": 12345}).model_key() != key
    assert base.changed({"factor_model.scope": "cohort"}).model_key() != key
    assert base.changed({"ratings.lookback_days": 30}).model_key() != key
    assert base.changed({"ratings.weights.purchase": 60.0}).model_key() != key
    assert base.changed({"cohorts.spend_percentile": 0.8}).model_key() != key
    assert base.changed({"evaluation.holdout_days": 3, "evaluation.origin_days": 3}).model_key() == key
    assert base.changed({"ranking.boost_strength": 0.5}).model_key() == key
    assert set(ENGINES) == {"softmax", "implicit", "mllib"}
