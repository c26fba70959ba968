"""Small helpers shared by the assets: partition keys, Spark -> Delta writes, check results."""

from datetime import date, timedelta

import pyarrow as pa
from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetExecutionContext, MetadataValue
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from reco_assets.resources.lakehouse import Lakehouse, partition_predicate, range_predicate


def partition_date(context: AssetExecutionContext) -> date:
    key = context.partition_key
    day = key.keys_by_dimension["date"] if hasattr(key, "keys_by_dimension") else key
    return date.fromisoformat(day)


def partition_cohort(context: AssetExecutionContext) -> str:
    return context.partition_key.keys_by_dimension["cohort"]


def partition_days(context: AssetExecutionContext) -> list[date]:
    """Days of a daily run, one or a range (single-run backfills)."""
    window = context.partition_time_window
    first, end = window.start.date(), window.end.date()
    return [first + timedelta(days=n) for n in range((end - first).days)]


def window_where(column: str, day: date, days: int) -> str:
    """Predicate for the `days` days ending with `day`."""
    return range_predicate(column, day - timedelta(days=days - 1), day)


def write_day(lakehouse: Lakehouse, table: str, frame: DataFrame, day: date, cohort: str | None = None) -> pa.Table:
    """Write a Spark result as the (day[, cohort]) partition of `table`; returns what was written."""
    partition = {"as_of_date": day} | ({"cohort": cohort} if cohort else {})
    for column, value in partition.items():
        frame = frame.withColumn(column, F.lit(value))
    data = frame.toArrow()
    lakehouse.write_partition(table, data, partition)
    return data


def cohort_members(lakehouse: Lakehouse, session: SparkSession, day: date, cohort: str) -> DataFrame:
    """The `member_id`s of one cohort on the day (small: broadcast it when joining)."""
    where = partition_predicate({"as_of_date": day, "cohort": cohort})
    return F.broadcast(lakehouse.read_spark(session, "member_cohorts", where).select("member_id"))


def check(name: str, violations: int, what: str) -> AssetCheckResult:
    return AssetCheckResult(
        check_name=name,
        passed=violations == 0,
        severity=AssetCheckSeverity.ERROR,
        metadata={"violations": violations, "rule": what},
    )


def spec(asset: str, name: str, description: str) -> AssetCheckSpec:
    """Every check guards what gets published: a failure stops the run's downstream assets."""
    return AssetCheckSpec(name=name, asset=asset, description=description, blocking=True)


def table_metadata(lakehouse: Lakehouse, table: str, data: pa.Table, **extra) -> dict:
    return {
        "rows": MetadataValue.int(data.num_rows),
        "table_uri": MetadataValue.path(lakehouse.uri(table)),
        "preview": MetadataValue.md(
            data.slice(0, 5).to_pandas().to_markdown(index=False) if data.num_rows else "(empty)"
        ),
        **extra,
    }
