from datetime import datetime, timezone

from dagster import MultiPartitionKey, PartitionKeyRange, build_schedule_context

from reco_assets.constants import COHORTS
from reco_assets.definitions import defs
from reco_assets.jobs import cohort_schedule, daily_schedule, release_cards_schedule
from reco_assets.partitions import daily_cohort_partitions

CONTRACT = {
    "raw_events",
    "raw_events_rejected",
    "catalog",
    "implicit_ratings",
    "member_cohorts",
    "als_factors",
    "member_affinities",
    "boosted_affinities",
    "diversified_affinities",
    "style_listings",
    "offline_evaluation",
    "member_cards",
}


def test_every_contract_table_is_an_asset_with_its_lineage():
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys == CONTRACT
    parents = {
        key.to_user_string(): {p.to_user_string() for p in graph.get(key).parent_keys}
        for key in graph.get_all_asset_keys()
    }
    assert parents["member_cards"] == {"diversified_affinities", "style_listings", "catalog", "offline_evaluation"}
    assert parents["offline_evaluation"] == {"raw_events", "catalog"}  # it replays the pipeline from the inputs
    assert {"als_factors", "implicit_ratings", "catalog"} <= parents["member_affinities"]
    assert parents["raw_events"] == {"catalog"}


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
        ("member_cohorts", "one_cohort_per_rated_member"),
        ("als_factors", "finite_factors"),
        ("member_affinities", "ranks_ordered"),
        ("boosted_affinities", "boosts_within_intent"),
        ("diversified_affinities", "class_limit"),
        ("style_listings", "styles_saleable"),
        ("member_cards", "cards_saleable"),
        ("member_cards", "lists_well_formed"),
        ("offline_evaluation", "model_beats_baselines"),
    }


def test_jobs_run_in_one_process_so_one_spark_session_per_run():
    for name in ("ingest_job", "daily_job", "evaluation_job", "cohort_job"):
        assert defs.resolve_job_def(name).executor_def.name == "in_process"


def test_schedules_target_yesterday_with_one_run_over_the_days_cohorts():
    at = datetime(2026, 11, 1, 11, 0, tzinfo=timezone.utc)
    daily = daily_schedule(build_schedule_context(scheduled_execution_time=at))
    assert daily.partition_key == "2026-10-31"
    run = cohort_schedule(build_schedule_context(scheduled_execution_time=at))
    assert run.tags["dagster/asset_partition_range_start"] == "women_1|2026-10-31"
    assert run.tags["dagster/asset_partition_range_end"] == "unisex_5|2026-10-31"
    keys = daily_cohort_partitions.get_partition_keys_in_range(
        PartitionKeyRange(
            run.tags["dagster/asset_partition_range_start"], run.tags["dagster/asset_partition_range_end"]
        )
    )
    assert sorted(keys) == sorted(MultiPartitionKey({"date": "2026-10-31", "cohort": c}) for c in COHORTS)
    cards = release_cards_schedule(build_schedule_context(scheduled_execution_time=at))
    assert cards.run_key != run.run_key
