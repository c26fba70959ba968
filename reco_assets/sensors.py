"""The sensors: runs started by data, not by the clock.

The day's shared tables start when its landing files are there; the evaluation when the day's events are
accepted; the cohorts' models and cards when the shared tables and the evaluation of the day are published;
each release refresh when its snapshot has landed and the day's cards are published; a new served version
whenever the day's published cards change. A materialized partition is a checked one: a failing blocking
check publishes nothing and records no materialization.
"""

import hashlib
from datetime import date

from dagster import (
    AssetKey,
    DagsterRunStatus,
    MultiPartitionKey,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from reco_assets.constants import COHORTS, RELEASES
from reco_assets.jobs import cohort_job, daily_job, evaluation_job, release_job, serving_job
from reco_assets.partitions import cohort_range_tags, daily_partitions
from reco_assets.resources.lakehouse import Lakehouse, MissingPartition
from reco_assets.resources.landing import LandingResource
from reco_assets.resources.serving import ServingResource
from reco_assets.serving import published
from reco_assets.serving.store import MissingVersion

SENSOR_DAYS = 3
"""The latest landed days the sensors look at (older days are backfills: `python -m reco_assets run`)."""
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


SENSORS = [landing_sensor, evaluation_sensor, cohort_sensor, release_sensor, serving_sensor]
