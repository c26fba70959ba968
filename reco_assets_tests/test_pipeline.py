"""The whole day on the `tiny` profile, through the CLI, with real Spark, Delta, DuckDB, MLflow and Dagster."""

from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
from dagster import DagsterInstance, MultiPartitionKey
from deltalake import DeltaTable

from reco_assets.cli import main
from reco_assets.definitions import build_definitions
from reco_assets.resources import local_resources
from reco_assets.resources.lakehouse import Lakehouse
from reco_assets.runner import QUIET, dagster_instance
from reco_assets.settings import RecoSettings
from reco_assets.simulator import PROFILES

pytestmark = pytest.mark.slow
DAY = PROFILES["tiny"].last_day

CONTRACT_COLUMNS = {
    "raw_events": [
        "event_id",
        "event_time",
        "event_date",
        "member_id",
        "event_type",
        "style_id",
        "session_id",
        "price",
        "quantity",
    ],
    "raw_events_rejected": ["event_date", "source", "record", "reason"],
    "catalog": [
        "style_id",
        "subclass_brand_id",
        "brand",
        "division",
        "department",
        "class",
        "subclass",
        "price",
        "first_live_at",
        "live_from",
        "live_until",
        "qty_on_hand",
        "as_of_date",
    ],
    "implicit_ratings": ["member_id", "subclass_brand_id", "rating", "last_event_time", "as_of_date"],
    "member_cohorts": ["member_id", "cohort", "division_affinity", "spend_bucket", "p90_purchase_price", "as_of_date"],
    "als_factors": ["side", "id", "factors", "as_of_date", "cohort"],
    "member_affinities": ["member_id", "subclass_brand_id", "rating", "prediction", "rank", "as_of_date", "cohort"],
    "boosted_affinities": [
        "member_id",
        "subclass_brand_id",
        "rating",
        "prediction",
        "rank",
        "boost",
        "score",
        "as_of_date",
        "cohort",
    ],
    "diversified_affinities": ["member_id", "subclass_brand_id", "score", "rank", "as_of_date", "cohort"],
    "style_listings": [
        "subclass_brand_id",
        "style_id",
        "popularity_score",
        "launch_score",
        "score",
        "rank",
        "qty_on_hand",
        "as_of_date",
    ],
    "member_cards": [
        "member_id",
        "feed",
        "variant",
        "position",
        "group_key",
        "group_name",
        "affinity",
        "style_ids",
        "as_of_date",
        "cohort",
    ],
}


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    with pytest.raises(SystemExit) as exit_code:
        main(["demo", "--profile", "tiny", "--home", str(home)])
    assert exit_code.value.code == 0  # 0 = every asset check passed
    return home


def table(home: Path, name: str, where: str | None = None) -> pd.DataFrame:
    lake = Lakehouse(root=str(home / "lakehouse"))
    column = "event_date" if name.startswith("raw_events") else "as_of_date"
    return lake.read_arrow(name, where or f"{column} = '{DAY}'").to_pandas()


def test_every_contract_table_with_its_columns(home):
    for name, columns in CONTRACT_COLUMNS.items():
        frame = table(home, name)
        assert set(columns) <= set(frame.columns), name
        assert len(frame) > 0, name
    assert set(table(home, "member_cohorts").cohort) == set(table(home, "member_cards").cohort)


def test_records_reconcile_with_the_landing_files(home):
    events = table(home, "raw_events", "true")
    rejected = table(home, "raw_events_rejected", "true")
    for path in sorted((home / "landing" / "events").iterdir()):
        day = date.fromisoformat(path.stem)
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        accepted_ids = set(events[events.event_date == day].event_id)
        bad = rejected[rejected.event_date == day]
        assert len(accepted_ids) + len(bad) == len(lines), day
        assert len(accepted_ids) == (events.event_date == day).sum()  # no duplicates
        assert set(bad.record) <= set(lines)
    assert set(rejected.reason) >= {
        "malformed_json",
        "missing_field:member_id",
        "bad_type:member_id",
        "negative_price",
        "unknown_event_type",
        "outside_day",
        "duplicate_event_id",
        "unknown_style",
    }


def test_cohorts_affinities_and_diversification_invariants(home):
    ratings, cohorts = table(home, "implicit_ratings"), table(home, "member_cohorts")
    assert set(ratings.member_id) == set(cohorts.member_id) and cohorts.member_id.is_unique

    affinities = table(home, "member_affinities").sort_values(["member_id", "rank"])
    for _, member in affinities.groupby("member_id"):
        assert member["rank"].tolist() == list(range(1, len(member) + 1))
        assert member.prediction.is_monotonic_decreasing
    # A member's affinities come from their own cohort's model only.
    joined = affinities.merge(cohorts[["member_id", "cohort"]], on="member_id", suffixes=("", "_of_member"))
    assert (joined.cohort == joined.cohort_of_member).all()

    catalog = table(home, "catalog")
    classes = catalog.drop_duplicates("subclass_brand_id").set_index("subclass_brand_id")["class"]
    diversified = table(home, "diversified_affinities")
    per_class = (
        diversified.assign(klass=diversified.subclass_brand_id.map(classes)).groupby(["member_id", "klass"]).size()
    )
    assert per_class.max() <= 3


def test_boosts_only_the_top_three_browsed_not_bought_subclasses(home):
    """Recomputed here from raw events with pandas, independently of the Spark code."""
    window = f"event_date >= '{DAY - timedelta(days=9)}' AND event_date <= '{DAY}'"
    events = table(home, "raw_events", window)
    browsed = events[events.event_type.isin(["product_view", "add_to_cart"])]
    bought = set(map(tuple, events[events.event_type == "purchase"][["member_id", "subclass"]].values))
    counts = (
        browsed.groupby(["member_id", "subclass"]).agg(n=("event_id", "size"), last=("event_time", "max")).reset_index()
    )
    counts = counts[[(m, s) not in bought for m, s in zip(counts.member_id, counts.subclass)]]
    counts = counts.sort_values(["member_id", "n", "last", "subclass"], ascending=[True, False, False, True])
    allowed = {m: set(g.subclass.head(3)) for m, g in counts.groupby("member_id")}

    boosted = table(home, "boosted_affinities")
    subclass = table(home, "catalog").drop_duplicates("subclass_brand_id").set_index("subclass_brand_id")["subclass"]
    lifted = boosted[boosted.boost > 0].assign(subclass=lambda f: f.subclass_brand_id.map(subclass))
    assert len(lifted) > 0
    for member, rows in lifted.groupby("member_id"):
        assert set(rows.subclass) <= allowed.get(member, set())
    assert (boosted.score == boosted.prediction + boosted.boost).all()


def test_published_styles_are_saleable_and_lists_are_clean(home):
    catalog = table(home, "catalog").set_index("style_id")
    start, end = pd.Timestamp(DAY, tz="UTC"), pd.Timestamp(DAY + timedelta(days=1), tz="UTC")
    listings = table(home, "style_listings")
    cards = table(home, "member_cards")
    for styles in [listings.style_id.tolist(), [s for ids in cards.style_ids for s in ids]]:
        rows = catalog.loc[sorted(set(styles))]
        assert ((rows.live_from < end) & (rows.live_until > start) & (rows.qty_on_hand >= 3)).all()
    assert all(len(ids) == len(set(ids)) for ids in cards.style_ids)
    products = cards[(cards.feed == "products") & (cards.variant == "full")]
    assert products.style_ids.map(len).max() <= 300
    assert set(cards.feed) == {"products", "brands", "categories"}
    assert listings.groupby("subclass_brand_id").size().max() <= 15


def test_checks_mlflow_and_runs_are_recorded(home):
    instance = DagsterInstance.from_config(str(home / "dagster"))
    runs = instance.get_runs()
    cohorts = set(table(home, "member_cohorts").cohort)
    # history, the day's shared tables, the evaluation, and every cohort's models and cards in one run
    assert len(runs) == 4 and all(run.is_success for run in runs)
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{home / 'mlflow.db'}")
    tracked = mlflow.search_runs(experiment_names=["reco_assets"])
    (factors,) = tracked[tracked["tags.mlflow.runName"] == "als_factors"].to_dict("records")
    assert factors["params.rank"] == "50" and factors["params.engine"] == "implicit"
    members = table(home, "member_cohorts").cohort.value_counts()
    assert {c: factors[f"metrics.{c}.members"] for c in cohorts} == members.to_dict()  # every member has a model

    # one evaluation run with a nested run per backtested model (the scored cohorts and the global one)
    (parent,) = tracked[tracked["tags.mlflow.runName"] == f"offline_evaluation {DAY}"]["run_id"]
    nested = tracked[tracked["tags.mlflow.parentRunId"] == parent]
    evaluation = table(home, "offline_evaluation")
    scored_cohorts = set(evaluation.segment) - {"all", "new_styles", "returning_styles"}
    assert scored_cohorts | {"global"} <= set(nested["tags.cohort"]) <= cohorts | {"global"}  # fitted in one job
    assert (nested["metrics.train.fit_seconds"] > 0).all()
    parent_run = tracked.set_index("run_id").loc[parent]
    model_ndcg = evaluation.query("level == 'subclass_brand' and segment == 'all' and method == 'model'")
    assert parent_run["metrics.subclass_brand.model.ndcg_at_10"] == pytest.approx(
        model_ndcg.query("metric == 'ndcg' and k == 10")["value"].item()
    )
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(parent)}
    assert {"model_vs_baselines.png", f"offline_evaluation_{DAY}.csv"} <= artifacts

    # every cohort model of the day is a registered version tagged with the day, and it loads and predicts
    client = mlflow.MlflowClient()
    versions = [client.search_model_versions(f"name = 'reco_als_{cohort}'") for cohort in cohorts]
    assert all(len(v) == 1 and v[0].tags["as_of_date"] == str(DAY) for v in versions)
    cohort = table(home, "member_cohorts").cohort.value_counts().idxmax()
    model = mlflow.pyfunc.load_model(f"models:/reco_als_{cohort}/1")
    member = table(home, "member_affinities", f"as_of_date = '{DAY}' AND cohort = '{cohort}'").member_id.iloc[0]
    predicted = model.predict(pd.DataFrame({"member_id": [member]}), params={"k": 100_000})
    stored = table(home, "member_affinities", f"as_of_date = '{DAY}' AND member_id = {member}")
    both = predicted.merge(stored, on="subclass_brand_id", suffixes=("_model", "_stored"))
    assert len(both) == len(stored) > 0  # every group the pipeline ranked is scored by the registered model
    assert both.prediction_model.to_numpy() == pytest.approx(both.prediction_stored.to_numpy(), rel=1e-4, abs=1e-5)


def test_rerunning_a_day_replaces_it(home):
    """Materializing the same partitions again leaves identical tables (re-run, not append)."""
    cohort = table(home, "member_cohorts").cohort.value_counts().idxmax()
    key = MultiPartitionKey({"date": DAY.isoformat(), "cohort": cohort})
    where = f"as_of_date = '{DAY}' AND cohort = '{cohort}'"
    names = ["als_factors", "member_affinities", "boosted_affinities", "diversified_affinities", "member_cards"]

    def snapshot():
        frames = {n: table(home, n, where) for n in names}
        frames |= {
            n: table(home, n)
            for n in ["raw_events", "raw_events_rejected", "implicit_ratings", "member_cohorts", "style_listings"]
        }
        frames["als_factors"] = frames["als_factors"].drop(columns="fit_seconds")  # a wall time, not data
        return {n: f.astype(str).sort_values(list(f.columns)).reset_index(drop=True) for n, f in frames.items()}

    def files(name: str) -> tuple[set[str], set[str]]:
        """Data files of the re-run cohort's partition and of every other partition of the table."""
        paths = set(DeltaTable(str(home / "lakehouse" / name)).file_uris())
        mine = {p for p in paths if f"as_of_date={DAY}" in p and f"cohort={cohort}/" in p}
        return mine, paths - mine

    before, files_before = snapshot(), {n: files(n) for n in names}
    defs = build_definitions(local_resources(home))
    instance = dagster_instance(home)
    assert (
        defs.resolve_job_def("daily_job")
        .execute_in_process(instance=instance, run_config=QUIET, partition_key=DAY.isoformat())
        .success
    )
    assert (
        defs.resolve_job_def("cohort_job")
        .execute_in_process(instance=instance, run_config=QUIET, partition_key=key)
        .success
    )
    after = snapshot()
    for name in before:
        pd.testing.assert_frame_equal(before[name], after[name], obj=name)
    for name in names:  # a single cohort re-run alone rewrites its partition and leaves the others' files
        (mine_before, others_before), (mine_after, others_after) = files_before[name], files(name)
        assert others_after == others_before, name
        assert mine_after and not (mine_after & mine_before), name


def test_offline_evaluation_measures_every_method_metric_and_segment(home):
    evaluation = table(home, "offline_evaluation")
    assert (evaluation.train_end_date == DAY - timedelta(days=7)).all() and (evaluation.test_end_date == DAY).all()
    assert set(evaluation.level) == {"subclass_brand", "style"}
    assert set(evaluation.method) == {
        "model",
        "no_boost",
        "no_diversification",
        "global_als",
        "popularity",
        "cohort_popularity",
        "repeat",
        "random",
    }
    assert set(evaluation.metric) == {
        "precision",
        "recall",
        "ndcg",
        "map",
        "mrr",
        "hit_rate",
        "coverage",
        "novelty",
        "diversity",
    }
    assert set(evaluation.k) == {10, 50}
    assert {"all", "new_styles", "returning_styles"} <= set(evaluation.segment)
    assert set(evaluation.segment) - {"all", "new_styles", "returning_styles"} <= set(
        table(home, "member_cohorts").cohort
    )
    assert not evaluation.duplicated(["level", "segment", "method", "metric", "k"]).any()
    bounded = evaluation[~evaluation.metric.isin(["novelty", "diversity"])]
    assert bounded.value.between(0, 1).all()
    # scored members of the overall segment = members with a relevant interaction in the test window
    overall = evaluation.query("level == 'style' and segment == 'all'").members.unique()
    events = table(home, "raw_events", f"event_date > '{DAY - timedelta(days=7)}' AND event_date <= '{DAY}'")
    acted = set(events[events.event_type.isin(["purchase", "add_to_cart"])].member_id)
    assert len(overall) == 1 and 0 < overall[0] <= len(acted)


def test_a_backtest_scores_at_most_the_configured_members(home, spark):
    from reco_assets.evaluation.backtest import run_backtest

    lake = Lakehouse(root=str(home / "lakehouse"))
    everyone = table(home, "offline_evaluation").query("level == 'style' and segment == 'all'").members
    capped = RecoSettings(evaluation_max_members=25, evaluation_ablations=False, evaluation_styles=False)
    backtest = run_backtest(spark, lake, DAY, capped, ablations=False, styles=False)
    assert backtest.sizes["members_in_test_window"] == everyone.iloc[0] > 25
    assert backtest.sizes["scored_members"] == len(backtest.members) == 25
    level = backtest.levels["subclass_brand"]
    assert set(level.relevant.member_id) <= set(backtest.members.member_id)  # relevance of the sample only
    assert all(set(r.member_id) <= set(backtest.members.member_id) for r in level.rankings.values())


def test_the_quality_gate_holds_back_the_cards_of_a_broken_model(home):
    """An untrained model (zero ALS iterations: random factors) must fail the gate, and no cards get written."""
    cohort = table(home, "member_cohorts").cohort.value_counts().idxmax()
    where = f"as_of_date = '{DAY}' AND cohort = '{cohort}'"
    cards_before = table(home, "member_cards", where)
    untrained = RecoSettings(als_max_iter=0, evaluation_ablations=False, evaluation_styles=False)
    broken = build_definitions(local_resources(home, untrained))
    instance = dagster_instance(home)
    evaluated = broken.resolve_job_def("evaluation_job").execute_in_process(
        instance=instance, run_config=QUIET, partition_key=DAY.isoformat(), raise_on_error=False
    )
    (gate,) = evaluated.get_asset_check_evaluations()
    assert not gate.passed and not evaluated.success
    published = broken.resolve_job_def("cohort_job").execute_in_process(
        instance=instance,
        run_config=QUIET,
        partition_key=MultiPartitionKey({"date": DAY.isoformat(), "cohort": cohort}),
        raise_on_error=False,
    )
    failures = [e for e in published.all_events if e.event_type_value == "STEP_FAILURE"]
    assert [e.step_key for e in failures] == ["member_cards"]
    assert "held back by the quality gate" in failures[0].event_specific_data.error.message
    pd.testing.assert_frame_equal(table(home, "member_cards", where), cards_before)  # the last good cards stay
