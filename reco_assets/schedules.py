"""The schedules: the two things done by the clock rather than by data."""

from datetime import timedelta

from dagster import RunRequest, ScheduleDefinition, ScheduleEvaluationContext, schedule

from reco_assets.constants import AS_OF_TAG, RETAIL_TIMEZONE
from reco_assets.jobs import freshness_job, vacuum_job


@schedule(job=freshness_job, cron_schedule="45 10 * * *", execution_timezone=RETAIL_TIMEZONE)
def freshness_schedule(context: ScheduleEvaluationContext):
    """Says, 15 minutes before the 11:00 release, when the day's cards are not published yet."""
    day = (context.scheduled_execution_time - timedelta(days=1)).strftime("%Y-%m-%d")
    return RunRequest(run_key=f"freshness:{day}", tags={AS_OF_TAG: day})


vacuum_schedule = ScheduleDefinition(
    job=vacuum_job,
    cron_schedule="0 4 * * 0",
    execution_timezone=RETAIL_TIMEZONE,
    # it deletes only files older than the retention, so a run writing meanwhile loses nothing
    description="Vacuum every Sunday at 04:00 on the retailer's clock, away from the releases.",
)

SCHEDULES = [freshness_schedule, vacuum_schedule]
