"""Materialize a whole day in one process: the ingestion window, the day's shared tables, every cohort, then
the served version and the export.

All runs share the process's Spark session, so a full day starts one JVM; they are recorded in the Dagster
instance under the home, so the UI started on the same home shows them.
"""

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from dagster import DagsterInstance, MultiPartitionKey

from reco_assets.constants import COHORTS
from reco_assets.definitions import build_definitions
from reco_assets.partitions import cohort_range_tags
from reco_assets.resources import local_resources
from reco_assets.settings import RecoSettings, load_settings

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class DayReport:
    day: date
    stage_seconds: dict[str, float] = field(default_factory=dict)
    failed_checks: list[str] = field(default_factory=list)
    failed_steps: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.failed_checks or self.failed_steps)


def dagster_instance(home: Path) -> DagsterInstance:
    """The persistent Dagster instance of the home (runs, events, check results)."""
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    config = dagster_home / "dagster.yaml"
    if not config.exists():
        config.write_text("telemetry:\n  enabled: false\n")
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    return DagsterInstance.get()


def ingestion_window(available: list[date], day: date, settings: RecoSettings) -> list[date]:
    """Landed days before `day` that its look-back windows read, those of the backtest's oldest origin included."""
    first = day - timedelta(days=settings.events_reach() - 1)
    return [d for d in available if first <= d < day]


def _populated(home: Path, day: date, settings: RecoSettings) -> int:
    """How many cohorts have members on the day (imported logs without gender or category fill only some)."""
    lakehouse = local_resources(home, settings)["lakehouse"]
    stored = lakehouse.read_arrow("member_cohorts", columns=["cohort"], partition={"as_of_date": day})
    return len(set(stored.column("cohort").to_pylist()))


def _executor(home: Path, settings: RecoSettings, report: DayReport, log: Callable[[str], None]):
    """Runs jobs in this process on the home's instance, recording failed steps, failed checks and times."""
    instance = dagster_instance(home)
    defs = build_definitions(local_resources(home, settings))

    def execute(stage: str, job: str, **kwargs) -> bool:
        started = time.perf_counter()
        result = defs.resolve_job_def(job).execute_in_process(
            instance=instance, run_config=QUIET, raise_on_error=False, **kwargs
        )
        for event in result.all_events:
            if event.event_type_value == "STEP_FAILURE":
                message = event.event_specific_data.error.message.strip().splitlines()[0]
                report.failed_steps.append(f"{event.step_key} ({stage}): {message}")
        for evaluation in result.get_asset_check_evaluations():
            if not evaluation.passed:
                report.failed_checks.append(
                    f"{evaluation.asset_key.to_user_string()}.{evaluation.check_name} ({stage})"
                )
        seconds = time.perf_counter() - started
        report.stage_seconds[stage] = seconds
        log(f"  {stage:<28} {seconds:7.1f} s" + ("" if result.success else "  FAILED"))
        return result.success

    return execute


def run_releases(
    home: Path, day: date, releases: list[str], log: Callable[[str], None] = print, settings: RecoSettings | None = None
) -> DayReport:
    """Release refreshes of the cards of `day`, in release order: listings and cards from each snapshot."""
    report = DayReport(day)
    execute = _executor(home, settings or load_settings(home), report, log)
    for release in sorted(releases):
        key = MultiPartitionKey({"date": day.isoformat(), "release": release})
        if not execute(f"release {release}", "release_job", partition_key=key):
            break
        execute(f"serving {release}", "serving_job", partition_key=day.isoformat())
    return report


def run_day(
    home: Path,
    day: date,
    available: list[date],
    log: Callable[[str], None] = print,
    settings: RecoSettings | None = None,
) -> DayReport:
    settings = settings or load_settings(home)
    report = DayReport(day)
    execute = _executor(home, settings, report, log)

    earlier = ingestion_window(available, day, settings)
    if earlier:
        log(f"ingesting {len(earlier)} earlier days ({earlier[0]} .. {earlier[-1]}) for the look-back windows")
        if not execute("ingest history", "ingest_job", tags=day_range_tags(earlier[0], earlier[-1])):
            return report
    log(f"materializing {day}: ingestion, ratings, cohorts, style listings, item to item")
    if not execute("daily tables", "daily_job", partition_key=day.isoformat()):
        return report  # the cohorts would read a day that is not there
    step = settings.evaluation.origin_days
    log(
        f"evaluating: the pipeline replayed at {settings.evaluation.origins} origins {step} days apart, the last "
        f"trained through {day - timedelta(days=settings.evaluation.holdout_days)} and tested to {day}; the champions"
    )
    execute("offline evaluation", "evaluation_job", partition_key=day.isoformat())
    populated = _populated(home, day, settings)
    # Every cohort runs, those without members too: their partitions are written empty, so that the day's
    # cards are complete for the releases, the sensors and the freshness check.
    log(
        f"materializing {day}: factors, affinities and cards of the {len(COHORTS)} cohorts in one run "
        f"({populated} with members)"
    )
    if execute("cohorts", "cohort_job", tags=cohort_range_tags(day, list(COHORTS))):
        log(f"serving {day}: payloads into a new version of the serving store, then the export files")
        execute("serving", "serving_job", partition_key=day.isoformat())
    return report


def ingest_days(home: Path, days: list[date], settings: RecoSettings | None = None) -> bool:
    """Catalog and raw events of the landed `days` (first to last), in one single-run backfill."""
    defs = build_definitions(local_resources(home, settings))
    result = defs.resolve_job_def("ingest_job").execute_in_process(
        instance=dagster_instance(home), run_config=QUIET, raise_on_error=False, tags=day_range_tags(days[0], days[-1])
    )
    return result.success


def day_range_tags(first: date, last: date) -> dict[str, str]:
    """Tags of one run over the days from `first` to `last` (a single-run backfill)."""
    return {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
    }
