"""Asset checks: the results the assets report before they publish, and the standalone freshness check.

The rules themselves (violations counted over a staged write) are SQL in `invariants.py`.
"""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    asset_check,
)

from reco_assets.constants import AS_OF_TAG, COHORTS, RETAIL_TIMEZONE
from reco_assets.resources.lakehouse import Lakehouse, MissingPartition, Staged


def check(name: str, violations: int, what: str, asset: str | None = None, **metadata) -> AssetCheckResult:
    return AssetCheckResult(
        asset_key=asset,
        check_name=name,
        passed=violations == 0,
        severity=AssetCheckSeverity.ERROR,
        metadata={"violations": violations, "rule": what, **metadata},
    )


def not_empty(
    writes: list[Staged], column: str = "as_of_date", asset: str | None = None, days: set[str] | None = None
) -> AssetCheckResult:
    """The `not_empty` check of a table that must have rows every day it covers (per day, over its cohorts);
    `days`: only those of the days covered must."""
    counts: dict[str, int] = {}
    for write in writes:
        for day, rows in write.rows_by(column).items():
            counts[day] = counts.get(day, 0) + rows
    empty = sorted(day for day, rows in counts.items() if rows == 0 and (days is None or day in days))
    return check("not_empty", len(empty), "days without any row", asset=asset, empty_days=", ".join(empty))


def not_empty_spec(asset: str) -> AssetCheckSpec:
    return spec(asset, "not_empty", "every day covered has rows: an empty day means missing or rejected input")


def spec(asset: str, name: str, description: str) -> AssetCheckSpec:
    """A check of what an asset is about to publish. What keeps failing data from readers is `publish` (the
    staged write is discarded); `blocking` adds that Dagster skips the run's downstream steps."""
    return AssetCheckSpec(name=name, asset=asset, description=description, blocking=True)


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


CHECKS = [cards_ready]
