import shutil
import time
from datetime import date, datetime, timezone

import pyarrow as pa
from dagster import (
    AssetKey,
    AssetMaterialization,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    MultiPartitionKey,
    PartitionKeyRange,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
)
from dagster._core.utils import make_new_run_id

from reco_assets.constants import COHORTS
from reco_assets.definitions import defs
from reco_assets.partitions import daily_cohort_partitions
from reco_assets.resources.lakehouse import Lakehouse
from reco_assets.resources.landing import LandingResource, catalog_file, events_file, release_file
from reco_assets.resources.serving import ServingResource
from reco_assets.schedules import freshness_schedule
from reco_assets.sensors import (
    cohort_sensor,
    evaluation_sensor,
    landing_sensor,
    release_sensor,
    serving_sensor,
)
from reco_assets.serving import published
from reco_assets.serving.store import Manifest

CONTRACT = {
    "raw_events",
    "raw_events_rejected",
    "catalog",
    "catalog_rejected",
    "implicit_ratings",
    "member_cohorts",
    "als_factors",
    "member_affinities",
    "boosted_affinities",
    "diversified_affinities",
    "style_listings",
    "group_neighbors",
    "co_purchase_rules",
    "offline_evaluation",
    "ranking_champions",
    "member_cards",
    "release_catalog",
    "release_catalog_rejected",
    "release_listings",
    "release_cards",
}
SERVING = {"served_feeds", "served_withdrawals", "feed_exports"}
"""Assets outside the lakehouse: the serving store's versions and the export folders."""


def test_every_contract_table_is_an_asset_with_its_lineage():
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys == CONTRACT | SERVING
    parents = {
        key.to_user_string(): {p.to_user_string() for p in graph.get(key).parent_keys}
        for key in graph.get_all_asset_keys()
    }
    assert parents["member_cards"] == {
        "diversified_affinities",
        "style_listings",
        "catalog",
        "offline_evaluation",
        "ranking_champions",
    }
    # both replay the pipeline from the inputs
    assert parents["offline_evaluation"] == parents["ranking_champions"] == {"raw_events", "catalog"}
    assert "ranking_champions" in parents["member_affinities"]  # the champion decides the ranking
    assert {"als_factors", "implicit_ratings", "catalog"} <= parents["member_affinities"]
    assert parents["raw_events"] == {"catalog"}
    assert parents["release_cards"] == {"release_listings", "diversified_affinities", "member_cards"}
    assert parents["served_feeds"] == {
        "member_cards",
        "release_cards",
        "style_listings",
        "release_listings",
        "group_neighbors",
        "co_purchase_rules",
    }
    assert parents["feed_exports"] == {"served_feeds"} and parents["served_withdrawals"] == {"release_catalog"}
    assert parents["release_listings"] == {"release_catalog", "raw_events"}
    assert parents["group_neighbors"] == parents["co_purchase_rules"] == {"raw_events"}


def test_blocking_checks_guard_what_gets_published():
    graph = defs.resolve_asset_graph()
    blocking = {
        (key.asset_key.to_user_string(), key.name)
        for key in graph.asset_check_keys
        if graph.get_check_spec(key).blocking
    }
    assert blocking == {
        ("raw_events", "records_reconcile"),
        ("raw_events", "unique_event_ids"),
        ("raw_events", "not_empty"),
        ("catalog", "not_empty"),
        ("catalog", "records_reconcile"),
        ("release_catalog", "records_reconcile"),
        ("member_cohorts", "one_cohort_per_rated_member"),
        ("member_cohorts", "cohorts_are_partitions"),
        ("als_factors", "finite_factors"),
        ("member_affinities", "ranks_ordered"),
        ("boosted_affinities", "boosts_within_intent"),
        ("diversified_affinities", "class_limit"),
        ("style_listings", "styles_saleable"),
        ("group_neighbors", "neighbors_well_formed"),
        ("co_purchase_rules", "rules_well_formed"),
        ("co_purchase_rules", "rules_recomputed"),
        ("member_cards", "cards_saleable"),
        ("member_cards", "lists_well_formed"),
        ("ranking_champions", "champion_chosen"),
        ("release_listings", "styles_saleable"),
        ("release_cards", "cards_saleable"),
        ("release_cards", "lists_well_formed"),
        ("served_feeds", "every_member_served"),
        ("served_feeds", "payloads_match_cards"),
        ("served_feeds", "style_lists_well_formed"),
        *(
            (table, "not_empty")
            for table in (
                "implicit_ratings",
                "member_cohorts",
                "style_listings",
                "group_neighbors",
                "member_cards",
                "release_catalog",
                "release_listings",
                "release_cards",
            )
        ),
    }


def test_jobs_run_in_one_process_so_one_spark_session_per_run():
    for name in ("ingest_job", "daily_job", "evaluation_job", "cohort_job", "release_job", "serving_job"):
        assert defs.resolve_job_def(name).executor_def.name == "in_process"


DAY = "2026-10-31"


def _land(root, day: date, releases=()) -> None:
    for path in (events_file(root, day), catalog_file(root, day), *(release_file(root, day, r) for r in releases)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")


def _materialize(instance: DagsterInstance, asset: str, *partitions: str) -> None:
    """Record materializations as another run would (the sensors read only the instance and the landing)."""
    for partition in partitions:
        instance.report_runless_asset_event(AssetMaterialization(AssetKey(asset), partition=partition))


def _run(sensor, instance, landing, **resources):
    result = sensor(build_sensor_context(instance=instance, resources={"landing": landing, **resources}))
    return result if isinstance(result, SkipReason) else [result]


def test_runs_start_when_their_inputs_are_published_not_at_a_time(tmp_path):
    """Each sensor skips until its inputs are there, then asks for one run of the day (or one per release)."""
    landing = LandingResource(root=str(tmp_path / "landing"))
    day = date.fromisoformat(DAY)
    with DagsterInstance.ephemeral() as instance:
        for sensor in (landing_sensor, evaluation_sensor, cohort_sensor, release_sensor):
            assert isinstance(_run(sensor, instance, landing), SkipReason), sensor.name
        _land(tmp_path / "landing", day, releases=["1100"])
        (daily,) = _run(landing_sensor, instance, landing)
        assert daily.partition_key == DAY
        running = instance.add_run(
            DagsterRun(job_name="daily_job", run_id=make_new_run_id(), status=DagsterRunStatus.STARTED)
        )
        assert isinstance(_run(landing_sensor, instance, landing), SkipReason)  # one daily run at a time
        instance.report_run_failed(running)
        (daily,) = _run(landing_sensor, instance, landing)
        assert isinstance(_run(evaluation_sensor, instance, landing), SkipReason)  # events not accepted yet

        _materialize(instance, "raw_events", DAY)
        (evaluation,) = _run(evaluation_sensor, instance, landing)
        assert evaluation.partition_key == DAY
        _materialize(instance, "implicit_ratings", DAY)
        _materialize(instance, "member_cohorts", DAY)
        _materialize(instance, "style_listings", DAY)
        assert isinstance(_run(cohort_sensor, instance, landing), SkipReason)  # no evaluation of the day yet
        _materialize(instance, "offline_evaluation", DAY)
        (cohorts,) = _run(cohort_sensor, instance, landing)
        range_keys = daily_cohort_partitions.get_partition_keys_in_range(
            PartitionKeyRange(
                cohorts.tags["dagster/asset_partition_range_start"], cohorts.tags["dagster/asset_partition_range_end"]
            )
        )
        assert sorted(range_keys) == sorted(MultiPartitionKey({"date": DAY, "cohort": c}) for c in COHORTS)

        cards = [str(MultiPartitionKey({"date": DAY, "cohort": c})) for c in COHORTS]
        _materialize(instance, "member_cards", *cards[:-1])
        assert isinstance(_run(release_sensor, instance, landing), SkipReason)  # one cohort's cards missing
        _materialize(instance, "member_cards", cards[-1])
        (release,) = _run(release_sensor, instance, landing)  # only the 11:00 snapshot has landed
        assert release.partition_key == str(MultiPartitionKey({"date": DAY, "release": "1100"}))

        # a day done (by these runs or by the command line) is not asked for again
        _materialize(instance, "offline_evaluation", DAY)
        _materialize(instance, "release_cards", release.partition_key)
        for sensor in (landing_sensor, evaluation_sensor, cohort_sensor, release_sensor):
            assert isinstance(_run(sensor, instance, landing), SkipReason), sensor.name


def _publish_cards(lakehouse: Lakehouse, day: date) -> None:
    """Every cohort's `member_cards` partition of the day, as the cohort run commits them (one row each)."""
    rows = pa.table(
        {
            "member_id": pa.array(range(len(COHORTS)), pa.int64()),
            "as_of_date": pa.array([day] * len(COHORTS), pa.date32()),
            "cohort": list(COHORTS),
        }
    )
    lakehouse.replace("member_cards", rows, f"as_of_date = '{day}'", ["as_of_date", "cohort"])


def test_the_serving_sensor_loads_each_publication_of_the_cards_once_never_an_older_day(tmp_path):
    landing = LandingResource(root=str(tmp_path / "landing"))
    lakehouse = Lakehouse(root=str(tmp_path / "lakehouse"))
    serving = ServingResource(lmdb_root=str(tmp_path / "serving"), exports_root=str(tmp_path / "exports"))
    resources = {"lakehouse": lakehouse, "serving": serving}
    day, before = date.fromisoformat(DAY), date.fromisoformat("2026-10-30")
    cards = lambda on: [str(MultiPartitionKey({"date": str(on), "cohort": c})) for c in COHORTS]  # noqa: E731
    with DagsterInstance.ephemeral() as instance:
        _land(tmp_path / "landing", before)
        _land(tmp_path / "landing", day)
        assert isinstance(_run(serving_sensor, instance, landing, **resources), SkipReason)  # no cards yet
        _materialize(instance, "member_cards", *cards(day))
        # materialized in the instance but not in this lakehouse: nothing to load
        assert isinstance(_run(serving_sensor, instance, landing, **resources), SkipReason)
        _publish_cards(lakehouse, before)
        _materialize(instance, "member_cards", *cards(before)[:-1])
        assert isinstance(_run(serving_sensor, instance, landing, **resources), SkipReason)  # one cohort missing
        _materialize(instance, "member_cards", cards(before)[-1])
        _publish_cards(lakehouse, day)
        (load,) = _run(serving_sensor, instance, landing, **resources)  # the latest day first
        written_at = published.cards(lakehouse, day).written_at()
        assert (load.partition_key, load.run_key) == (DAY, f"serve:{DAY}:batch:{written_at * 1000:.0f}")

        # its load ran and failed: the next pending day is asked for instead of the same run again
        failed = instance.add_run(
            DagsterRun(job_name="serving_job", run_id=make_new_run_id(), tags={"dagster/run_key": load.run_key})
        )
        instance.report_run_failed(failed)
        (other,) = _run(serving_sensor, instance, landing, **resources)
        assert other.partition_key == str(before)

        store = serving.open(1)  # the day's cards are served: nothing to do (the day before is older)
        store.write("v1", iter([(b"m:1", b"{}")]))
        store.switch(Manifest("v1", DAY, "member_cards", 1, "2026-11-01T00:00:00+00:00", cards_written_at=written_at))
        assert isinstance(_run(serving_sensor, instance, landing, **resources), SkipReason)
        time.sleep(0.05)
        _publish_cards(lakehouse, day)  # published again (a re-run): served again
        (again,) = _run(serving_sensor, instance, landing, **resources)
        assert again.partition_key == DAY and again.run_key != load.run_key

        # the served version's data removed by hand: one load of the latest cards repairs the pointer
        shutil.rmtree(tmp_path / "serving" / "versions")
        (repair,) = _run(serving_sensor, instance, landing, **resources)
        assert repair.partition_key == DAY and ":repair:" in repair.run_key


def test_the_freshness_check_runs_before_the_first_release_on_yesterdays_cards():
    at = datetime(2026, 11, 1, 15, 45, tzinfo=timezone.utc)  # 10:45 in New York
    run = freshness_schedule(build_schedule_context(scheduled_execution_time=at))
    assert run.tags["reco/as_of"] == DAY
    assert freshness_schedule.cron_schedule == "45 10 * * *"
    assert freshness_schedule.execution_timezone == "America/New_York"
