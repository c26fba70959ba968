"""Small helpers shared by the assets: partition keys, staged writes published only after their checks."""

from collections.abc import Iterable, Iterator
from datetime import date, timedelta

import duckdb
from dagster import AssetCheckResult, AssetExecutionContext, Failure, MetadataValue
from pyspark.sql import DataFrame

from reco_assets.partitions import daily_cohort_partitions
from reco_assets.resources.lakehouse import Lakehouse, Staged
from reco_assets.resources.steps import SEALED, seal


def partition_date(context: AssetExecutionContext) -> date:
    key = context.partition_key
    day = key.keys_by_dimension["date"] if hasattr(key, "keys_by_dimension") else key
    return date.fromisoformat(day)


def partition_days(context: AssetExecutionContext) -> list[date]:
    """Days of a daily run, one or a range (single-run backfills)."""
    window = context.partition_time_window
    first, end = window.start.date(), window.end.date()
    return [first + timedelta(days=n) for n in range((end - first).days)]


def cohort_days(context: AssetExecutionContext) -> dict[date, list[str]]:
    """The cohorts of each day a date x cohort run covers: one partition, or a day's cohorts in one run
    (a single-run backfill over the cohort dimension)."""
    days: dict[date, list[str]] = {}
    for key in context.partition_keys:
        dimensions = daily_cohort_partitions.get_partition_key_from_str(key).keys_by_dimension
        days.setdefault(date.fromisoformat(dimensions["date"]), []).append(dimensions["cohort"])
    return {day: sorted(cohorts) for day, cohorts in sorted(days.items())}


def stage_day(
    lakehouse: Lakehouse, table: str, frame: DataFrame, day: date, cohorts: list[str] | None = None
) -> Staged:
    """Write a Spark result as the day's partition of `table` (its cohorts' partitions when given; the
    frame then carries `cohort`), staged: invisible until published."""
    partitions = {"as_of_date": day} | ({"cohort": cohorts} if cohorts else {})
    return lakehouse.stage(frame, table, partitions, constants={"as_of_date": day})


def publish(staged: Iterable[Staged], results: list[AssetCheckResult]) -> Iterator[AssetCheckResult]:
    """Report the checks of staged writes, then make the writes visible only if every check passed.

    A failed blocking check discards the staged files and fails the step: readers keep the previously
    published partitions, and the run says which check held the data back. The tables of a step that
    publishes several are sealed together last (`steps`).
    """
    staged = list(staged)
    yield from results
    failed = [r.check_name for r in results if not r.passed]
    if failed:
        for write in staged:
            write.discard()
        tables = ", ".join(w.table for w in staged)
        raise Failure(f"{tables} not published: blocking check(s) failed: {', '.join(failed)}")
    for write in staged:
        write.commit()
    if any(write.table in SEALED for write in staged):
        seal(staged[0].lakehouse, [(write.table, write.partitions) for write in staged])


def staged_metadata(writes: list[Staged], **extra) -> dict:
    """Rows (per cohort where the table has cohorts), location and a preview of a run's writes of one
    table: from the file lists and a five-row DuckDB scan of the files, never from the whole table."""
    first = writes[0]
    with duckdb.connect() as con:
        con.register("t", first.dataset())
        preview = con.sql("SELECT * FROM t LIMIT 5").df()
    by_cohort = {}
    if "cohort" in first.partitions:
        for write in writes:
            day = write.partitions["as_of_date"]
            by_cohort |= {f"{day}/{c}" if len(writes) > 1 else c: n for c, n in write.rows_by("cohort").items()}
    return {
        "rows": MetadataValue.int(sum(w.rows for w in writes)),
        "files": MetadataValue.int(sum(len(w.files) for w in writes)),
        "table_uri": MetadataValue.path(first.lakehouse.uri(first.table)),
        "preview": MetadataValue.md(preview.to_markdown(index=False) if len(preview) else "(empty)"),
        **({"rows_by_cohort": MetadataValue.json(by_cohort)} if by_cohort else {}),
        **extra,
    }


def table_metadata(lakehouse: Lakehouse, table: str, data, **extra) -> dict:
    """Metadata of a small table written from the driver (Arrow)."""
    return {
        "rows": MetadataValue.int(data.num_rows),
        "table_uri": MetadataValue.path(lakehouse.uri(table)),
        "preview": MetadataValue.md(
            data.slice(0, 5).to_pandas().to_markdown(index=False) if data.num_rows else "(empty)"
        ),
        **extra,
    }
