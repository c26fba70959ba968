"""Jobs and schedules: the daily run before the 11:00 release, and refreshes at every release."""

from datetime import timedelta

from dagster import (
    AssetSelection,
    MultiPartitionKey,
    RunRequest,
    ScheduleEvaluationContext,
    define_asset_job,
    schedule,
)

from reco_assets.constants import COHORTS
from reco_assets.partitions import daily_cohort_partitions, daily_partitions

EASTERN = "America/New_York"

ingest_job = define_asset_job(
    "ingest_job",
    selection=AssetSelection.assets("catalog", "raw_events", "raw_events_rejected"),
    partitions_def=daily_partitions,
    description="Land one day or a range of days (single run): catalog snapshots and validated events.",
)
daily_job = define_asset_job(
    "daily_job",
    selection=AssetSelection.assets(
        "catalog", "raw_events", "raw_events_rejected", "implicit_ratings", "member_cohorts", "style_listings"
    ),
    partitions_def=daily_partitions,
    description="The day's shared tables: ingestion, ratings, cohorts and style listings.",
)
evaluation_job = define_asset_job(
    "evaluation_job",
    selection=AssetSelection.assets("offline_evaluation"),
    partitions_def=daily_partitions,
    description="Backtest of the pipeline on the last days (temporal holdout) and the day's quality gate.",
)
cohort_job = define_asset_job(
    "cohort_job",
    selection=AssetSelection.assets(
        "als_factors", "member_affinities", "boosted_affinities", "diversified_affinities", "member_cards"
    ),
    partitions_def=daily_cohort_partitions,
    description="The cohorts' models and recommendations for a day (one run over the day's cohorts, or one "
    "cohort alone): factors, affinities, cards.",
)
listings_refresh_job = define_asset_job(
    "listings_refresh_job", selection=AssetSelection.assets("style_listings"), partitions_def=daily_partitions
)
cards_refresh_job = define_asset_job(
    "cards_refresh_job", selection=AssetSelection.assets("member_cards"), partitions_def=daily_cohort_partitions
)


def _as_of(context: ScheduleEvaluationContext) -> str:
    """The latest complete day: runs before noon serve the recommendations computed on yesterday's data."""
    return (context.scheduled_execution_time - timedelta(days=1)).strftime("%Y-%m-%d")


def cohort_runs(day: str, job_tag: str) -> RunRequest:
    """One run over every cohort of the day: each model stage is one Spark job for all cohorts."""
    first, last = (str(MultiPartitionKey({"date": day, "cohort": c})) for c in (COHORTS[0], COHORTS[-1]))
    return RunRequest(
        run_key=f"{job_tag}:{day}",
        tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
    )


@schedule(job=daily_job, cron_schedule="0 6 * * *", execution_timezone=EASTERN)
def daily_schedule(context: ScheduleEvaluationContext):
    """The shared tables at 06:00, well before the 11:00 release."""
    day = _as_of(context)
    return RunRequest(run_key=f"daily:{day}", partition_key=day)


@schedule(job=evaluation_job, cron_schedule="0 6 * * *", execution_timezone=EASTERN)
def evaluation_schedule(context: ScheduleEvaluationContext):
    """The backtest and quality gate at 06:00, beside the shared tables (it reads only landed days)."""
    day = _as_of(context)
    return RunRequest(run_key=f"evaluation:{day}", partition_key=day)


@schedule(job=cohort_job, cron_schedule="0 7 * * *", execution_timezone=EASTERN)
def cohort_schedule(context: ScheduleEvaluationContext):
    """The day's cohorts in one run at 07:00, after the shared tables."""
    return cohort_runs(_as_of(context), "cohorts")


@schedule(job=listings_refresh_job, cron_schedule="5 11,15,20 * * *", execution_timezone=EASTERN)
def release_listings_schedule(context: ScheduleEvaluationContext):
    """Style listings again right after each release (11:00, 15:00, 20:00)."""
    day = _as_of(context)
    stamp = context.scheduled_execution_time.strftime("%H%M")
    return RunRequest(run_key=f"listings:{day}:{stamp}", partition_key=day)


@schedule(job=cards_refresh_job, cron_schedule="20 11,15,20 * * *", execution_timezone=EASTERN)
def release_cards_schedule(context: ScheduleEvaluationContext):
    """Member cards of every cohort again, after the release's style listings."""
    return cohort_runs(_as_of(context), f"cards-{context.scheduled_execution_time:%H%M}")


SCHEDULES = [daily_schedule, evaluation_schedule, cohort_schedule, release_listings_schedule, release_cards_schedule]
JOBS = [ingest_job, daily_job, evaluation_job, cohort_job, listings_refresh_job, cards_refresh_job]
