"""Jobs, and the sensors that start them when their inputs are there and checked.

Order by data, not by the clock: the day's shared tables start when its landing files are there; the
evaluation when the day's events are accepted; the cohorts' models and cards when the shared tables and the
evaluation of the day are published; each release refresh when its snapshot has landed and the day's cards
are published; a new served version whenever the day's published cards change. A materialized partition is
a checked one: a failing blocking check publishes nothing and records no materialization. A freshness check
at 10:45 says when the day's cards are not ready before the 11:00 release. A weekly vacuum deletes the files
no version of the retention reads.
"""

import hashlib
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetKey,
    AssetSelection,
    DagsterRunStatus,
    MultiPartitionKey,
    OpExecutionContext,
    RunRequest,
    RunsFilter,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SkipReason,
    asset_check,
    define_asset_job,
    job,
    op,
    schedule,
    sensor,
)

from reco_assets.constants import COHORTS, RELEASES, RETAIL_TIMEZONE
from reco_assets.partitions import (
    cohort_range_tags,
    daily_cohort_partitions,
    daily_partitions,
    daily_release_partitions,
)
from reco_assets.resources.lakehouse import Lakehouse, MissingPartition
from reco_assets.resources.landing import LandingResource
from reco_assets.resources.serving import ServingResource
from reco_assets.serving import published
from reco_assets.serving.store import MissingVersion
from reco_assets.settings import RecoSettings

ingest_job = define_asset_job(
    "ingest_job",
    selection=AssetSelection.assets("catalog", "catalog_rejected", "raw_events", "raw_events_rejected"),
    partitions_def=daily_partitions,
    description="Land one day or a range of days (single run): catalog snapshots and validated events.",
)
daily_job = define_asset_job(
    "daily_job",
    selection=AssetSelection.assets(
        "catalog",
        "catalog_rejected",
        "raw_events",
        "raw_events_rejected",
        "implicit_ratings",
        "member_cohorts",
        "style_listings",
    ),
    partitions_def=daily_partitions,
    description="The day's shared tables: ingestion, ratings, cohorts and style listings.",
)
evaluation_job = define_asset_job(
    "evaluation_job",
    selection=AssetSelection.assets("offline_evaluation", "ranking_champions"),
    partitions_def=daily_partitions,
    description="Backtest of the pipeline on the last days (temporal holdout) and the day's quality gate.",
)
cohort_job = define_asset_job(
    "cohort_job",
    # the freshness check of the cards runs on its own schedule, not with every materialization of them
    selection=AssetSelection.assets(
        "als_factors", "member_affinities", "boosted_affinities", "diversified_affinities", "member_cards"
    )
    - AssetSelection.checks(AssetCheckKey(AssetKey("member_cards"), "ready_before_release")),
    partitions_def=daily_cohort_partitions,
    description="The cohorts' models and recommendations for a day (one run over the day's cohorts, or one "
    "cohort alone): factors, affinities, cards.",
)
release_job = define_asset_job(
    "release_job",
    selection=AssetSelection.assets(
        "release_catalog", "release_catalog_rejected", "served_withdrawals", "release_listings", "release_cards"
    ),
    partitions_def=daily_release_partitions,
    description="A release refresh of a day's cards: the release's catalog snapshot (whose sold-out and ended "
    "styles leave the served answers at once), style listings and cards.",
)
serving_job = define_asset_job(
    "serving_job",
    selection=AssetSelection.assets("served_feeds", "feed_exports"),
    partitions_def=daily_partitions,
    description="The day's published cards into the serving store as a new version (served once checked), and "
    "the day's export files.",
)

SENSOR_DAYS = 3
"""The latest landed days the sensors look at (older days are backfills: `python -m reco_assets run`)."""
AS_OF_TAG = "reco/as_of"
RUN_KEY_TAG = "dagster/run_key"
"""The tag Dagster puts on a run a sensor started with a run key."""
SHARED = ("implicit_ratings", "member_cohorts", "style_listings")
"""The daily tables the cohort runs read (besides ingestion's)."""


def cohort_runs(day: str, job_tag: str) -> RunRequest:
    """One run over every cohort of the day: each model stage is one Spark job for all cohorts."""
    return RunRequest(run_key=f"{job_tag}:{day}", tags=cohort_range_tags(day, list(COHORTS)))


def _recent_days(landing: LandingResource) -> list[str]:
    first = daily_partitions.get_first_partition_key()
    return [str(day) for day in landing.days()[-SENSOR_DAYS:] if str(day) >= first]


def _published(context: SensorEvaluationContext, asset: str) -> set[str]:
    """Partition keys of `asset` materialized (so checked and published)."""
    return set(context.instance.get_materialized_partitions(AssetKey(asset)))


def _running(context: SensorEvaluationContext, job: str) -> bool:
    """A run of `job` is queued or running: the sensors start one run of a job at a time, the earliest day
    first, so two runs never write the same table at once (ingestion of a day reads its neighbours)."""
    statuses = [
        DagsterRunStatus.QUEUED,
        DagsterRunStatus.NOT_STARTED,
        DagsterRunStatus.STARTING,
        DagsterRunStatus.STARTED,
    ]
    return bool(context.instance.get_run_records(RunsFilter(job_name=job, statuses=statuses), limit=1))


def _cards_published(cards: set[str], day: str) -> bool:
    """Every cohort's `member_cards` of the day are among the published partitions `cards`."""
    return all(str(MultiPartitionKey({"date": day, "cohort": c})) in cards for c in COHORTS)


def _first(context: SensorEvaluationContext, job, pending: list, request, waiting: str):
    """The run of the earliest pending item, unless a run of `job` is in progress (one at a time)."""
    if _running(context, job.name):
        return SkipReason(f"a run of {job.name} is in progress")
    return request(pending[0]) if pending else SkipReason(waiting)


@sensor(job=daily_job, minimum_interval_seconds=60)
def landing_sensor(context: SensorEvaluationContext, landing: LandingResource):
    """The day's shared tables, once its events and catalog snapshot have landed (files are dropped whole:
    written elsewhere, then renamed into the landing folder)."""
    done = _published(context, "raw_events")
    days = [
        day
        for day in _recent_days(landing)
        if day not in done and landing.catalog_file(date.fromisoformat(day)).is_file()
    ]
    request = lambda day: RunRequest(run_key=f"daily:{day}", partition_key=day)  # noqa: E731
    return _first(context, daily_job, days, request, "no landed day with both its events and its catalog snapshot")


@sensor(job=evaluation_job, minimum_interval_seconds=60)
def evaluation_sensor(context: SensorEvaluationContext, landing: LandingResource):
    """The backtest and quality gate of a day, once its events are accepted and published."""
    accepted, done = _published(context, "raw_events"), _published(context, "offline_evaluation")
    days = [day for day in _recent_days(landing) if day in accepted and day not in done]
    request = lambda day: RunRequest(run_key=f"evaluation:{day}", partition_key=day)  # noqa: E731
    return _first(context, evaluation_job, days, request, "no recent day with published raw_events yet")


@sensor(job=cohort_job, minimum_interval_seconds=60)
def cohort_sensor(context: SensorEvaluationContext, landing: LandingResource):
    """The day's cohorts in one run, once the shared tables and the evaluation of the day are published."""
    ready = set.intersection(*(_published(context, asset) for asset in (*SHARED, "offline_evaluation")))
    cards = _published(context, "member_cards")
    days = [day for day in _recent_days(landing) if day in ready and not _cards_published(cards, day)]
    waiting = f"waiting for {', '.join(SHARED)} and offline_evaluation of the recent days"
    return _first(context, cohort_job, days, lambda day: cohort_runs(day, "cohorts"), waiting)


@sensor(job=release_job, minimum_interval_seconds=60)
def release_sensor(context: SensorEvaluationContext, landing: LandingResource):
    """A release refresh once its snapshot has landed and the day's cards are published."""
    done, cards = _published(context, "release_cards"), _published(context, "member_cards")
    keys = [
        key
        for day in _recent_days(landing)
        if _cards_published(cards, day)
        for release in RELEASES
        if landing.release_file(date.fromisoformat(day), release).is_file()
        and (key := str(MultiPartitionKey({"date": day, "release": release}))) not in done
    ]
    request = lambda key: RunRequest(run_key=f"release:{key}", partition_key=key)  # noqa: E731
    return _first(context, release_job, keys, request, "no landed release snapshot of a day whose cards are published")


@sensor(job=serving_job, minimum_interval_seconds=60)
def serving_sensor(
    context: SensorEvaluationContext, landing: LandingResource, lakehouse: Lakehouse, serving: ServingResource
):
    """A new served version when a day's published cards change: its cohorts' cards, each release's, and
    each publication again of either. Days older than the served one are not loaded (a backfill never
    replaces a later day). A pointer to a version whose data is gone asks for one load of the latest cards,
    which repairs it."""
    cards = _published(context, "member_cards")
    try:
        current, repair = serving.open(0).current(), ""
    except MissingVersion as gone:  # the served version's data is gone: the latest cards are loaded again, once
        current, repair = None, f":repair:{hashlib.sha256(str(gone).encode()).hexdigest()[:12]}"
    pending = []
    for day in _recent_days(landing):
        if not _cards_published(cards, day) or (current and day < current.as_of_date):
            continue
        try:
            day_cards = published.cards(lakehouse, date.fromisoformat(day))
            if not day_cards.is_served_by(current):
                pending.append((day, f"{day_cards.label}:{day_cards.written_at() * 1000:.0f}"))
        except MissingPartition:  # materialized in the instance, not in this lakehouse: nothing to load
            continue
    key = lambda item: f"serve:{item[0]}:{item[1]}{repair}"  # noqa: E731
    # the latest day first; a publication whose load already ran (and failed) is not asked again, so it
    # does not hold back the others
    pending = [item for item in pending[::-1] if not _attempted(context, key(item))]
    request = lambda item: RunRequest(run_key=key(item), partition_key=item[0])  # noqa: E731
    return _first(context, serving_job, pending, request, "the served version is the latest published cards")


def _attempted(context: SensorEvaluationContext, run_key: str) -> bool:
    return bool(context.instance.get_run_records(RunsFilter(tags={RUN_KEY_TAG: run_key}), limit=1))


@asset_check(asset="member_cards", name="ready_before_release", blocking=False)
def cards_ready(context: AssetCheckExecutionContext, lakehouse: Lakehouse) -> AssetCheckResult:
    """The cards of every cohort of the latest complete day are published (run at 10:45, before the 11:00
    release; the day is the run's `reco/as_of` tag, by default yesterday on the retailer's clock)."""
    day = context.run.tags.get(AS_OF_TAG) or str(datetime.now(ZoneInfo(RETAIL_TIMEZONE)).date() - timedelta(days=1))
    try:
        lakehouse.require("member_cards", {"as_of_date": date.fromisoformat(day), "cohort": list(COHORTS)})
    except MissingPartition as missing:
        return AssetCheckResult(passed=False, metadata={"as_of_date": day, "missing": str(missing)})
    return AssetCheckResult(passed=True, metadata={"as_of_date": day})


freshness_job = define_asset_job("cards_freshness_job", selection=AssetSelection.checks(cards_ready))


@schedule(job=freshness_job, cron_schedule="45 10 * * *", execution_timezone=RETAIL_TIMEZONE)
def freshness_schedule(context: ScheduleEvaluationContext):
    """Says, 15 minutes before the 11:00 release, when the day's cards are not published yet."""
    day = (context.scheduled_execution_time - timedelta(days=1)).strftime("%Y-%m-%d")
    return RunRequest(run_key=f"freshness:{day}", tags={AS_OF_TAG: day})


@op
def vacuum_lakehouse(context: OpExecutionContext, lakehouse: Lakehouse, settings: RecoSettings) -> None:
    """Delete, in every table, the files no version of the last `vacuum_retention_hours` reads."""
    for table, files in lakehouse.vacuum(settings.vacuum_retention_hours).items():
        context.log.info(f"{table}: {len(files)} files deleted" + "".join(f"\n  {path}" for path in files))


@job(description="Delete the lakehouse's files no version of the retention reads: replaced partitions, killed writes.")
def vacuum_job():
    vacuum_lakehouse()


vacuum_schedule = ScheduleDefinition(
    job=vacuum_job,
    cron_schedule="0 4 * * 0",
    execution_timezone=RETAIL_TIMEZONE,
    # it deletes only files older than the retention, so a run writing meanwhile loses nothing
    description="Vacuum every Sunday at 04:00 on the retailer's clock, away from the releases.",
)

SENSORS = [landing_sensor, evaluation_sensor, cohort_sensor, release_sensor, serving_sensor]
SCHEDULES = [freshness_schedule, vacuum_schedule]
JOBS = [ingest_job, daily_job, evaluation_job, cohort_job, release_job, serving_job, freshness_job, vacuum_job]
CHECKS = [cards_ready]
