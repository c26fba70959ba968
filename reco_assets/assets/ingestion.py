"""Ingestion: the day's catalog snapshot, and the day's clickstream split into accepted and rejected records.

Both run over one day or a range of days in a single run (single-run backfills), replacing exactly the
days they cover.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import pyarrow as pa
import pyarrow.compute as pc
from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetSpec,
    BackfillPolicy,
    Failure,
    MaterializeResult,
    multi_asset,
)
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import to_arrow_schema

from reco_assets import invariants
from reco_assets.assets.common import partition_days, publish, staged_metadata
from reco_assets.checks import check, not_empty, not_empty_spec, spec
from reco_assets.constants import INGESTION
from reco_assets.partitions import daily_partitions
from reco_assets.pipeline.ingestion import (
    InputLimits,
    accepted_events,
    classify_events,
    rejected_records,
    split_on_reason,
)
from reco_assets.pipeline.snapshots import (
    SnapshotHeaderError,
    accepted_styles,
    classify_snapshots,
    duplicates_marked,
    rejected_lines,
)
from reco_assets.resources.lakehouse import Lakehouse, Staged, range_predicate
from reco_assets.resources.landing import LandingResource
from reco_assets.resources.spark import SparkResource
from reco_assets.settings import RecoSettings


def _landed_files(paths: dict[date, object]) -> list[str]:
    """Paths as strings; a missing or unreadable file fails the partition and names the file."""
    for day, path in paths.items():
        try:
            with open(path, "rb") as handle:
                handle.read(1)
        except OSError as error:
            raise Failure(f"landing file for {day} cannot be read: {path} ({error.strerror or error})") from error
    return [str(p) for p in paths.values()]


def _landing_date(name: str = "_metadata.file_name") -> F.Column:
    """The day a landed file is for, from its name (YYYY-MM-DD.<ext>) in the column `name`."""
    return F.to_date(F.regexp_extract(F.col(name), r"(\d{4}-\d{2}-\d{2})", 1))


def _read_lines(spark: SparkSession, files: list[str]) -> DataFrame:
    """Every physical line, blank ones included, with its file, landing day (from the file name) and position.

    Lines end at LF only: a CR inside a line is data, and the CR of a CRLF line end stays on its line (JSON
    white space to the parser). A file's final LF ends its last line and starts no empty one; a last line
    without LF counts.
    """
    return spark.read.text(files, lineSep="\n").select(
        "value",
        F.col("_metadata.file_path").alias("source"),
        _landing_date().alias("landing_date"),
        F.monotonically_increasing_id().alias("line_no"),
    )


def snapshot_specs(table: str, group: str, what: str, snapshot: str) -> dict:
    """The outputs of a snapshot step: `table` (described by `what`), the rejected lines of the `snapshot`,
    and the checks that publish them."""
    kinds = {"spark", "delta"}
    return {
        "specs": [
            AssetSpec(table, group_name=group, kinds=kinds, description=what),
            AssetSpec(
                f"{table}_rejected",
                group_name=group,
                kinds=kinds,
                description=f"Lines of {snapshot} that broke a rule, with the rule (`reason`).",
            ),
        ],
        "check_specs": [
            spec(table, "records_reconcile", "accepted + rejected = lines of the snapshot after its header"),
            not_empty_spec(table),
        ],
    }


@multi_asset(
    **snapshot_specs(
        "catalog",
        INGESTION,
        "Styles known on the day (on sale, or launching in the next 24 hours), with hierarchy, price and stock.",
        "the day's catalog snapshot",
    ),
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
)
def catalog(
    context: AssetExecutionContext,
    spark: SparkResource,
    lakehouse: Lakehouse,
    landing: LandingResource,
    settings: RecoSettings,
):
    days = partition_days(context)
    files = _landed_files({day: landing.catalog_file(day) for day in days})
    snapshot = stage_snapshots(
        spark.session(), lakehouse, files, "catalog", {"as_of_date": days}, settings.input_limits()
    )
    yield from publish(snapshot.writes, [snapshot.reconciled(), not_empty([snapshot.accepted])])
    yield from snapshot.results(days=len(days))


@dataclass
class StagedSnapshot:
    """A snapshot's accepted styles and rejected lines, staged, with the lines read per day."""

    accepted: Staged
    rejected: Staged
    read: pa.Table
    """`as_of_date`, `records`: the lines after the header, per day."""

    @property
    def writes(self) -> list[Staged]:
        return [self.accepted, self.rejected]

    def reconciled(self) -> AssetCheckResult:
        mismatched = invariants.days_not_reconciled(
            self.read, self.accepted.dataset(), self.rejected.dataset(), day="as_of_date"
        )
        return check("records_reconcile", mismatched, "days where accepted + rejected differs from the lines read")

    def results(self, **extra) -> Iterator[MaterializeResult]:
        reasons = (
            self.rejected.dataset().to_table(columns=["reason"]).group_by("reason").aggregate([("reason", "count")])
        )
        read = pc.sum(self.read.column("records")).as_py() or 0
        yield MaterializeResult(
            asset_key=self.accepted.table, metadata=staged_metadata([self.accepted], records_read=read, **extra)
        )
        yield MaterializeResult(
            asset_key=self.rejected.table,
            metadata=staged_metadata(
                [self.rejected], **{f"reason:{r['reason']}": r["reason_count"] for r in reasons.to_pylist()}
            ),
        )


def stage_snapshots(
    session: SparkSession,
    lakehouse: Lakehouse,
    files: list[str],
    table: str,
    partitions: dict,
    limits: InputLimits,
    constants: dict | None = None,
) -> StagedSnapshot:
    """Catalog and inventory snapshots (CSV) staged into `table` and `<table>_rejected`, line by line. With
    `constants` (a release's day and time) every file is of that partition, else each file's `as_of_date`
    comes from its name. A header without a catalog column fails the step, naming the file and column."""
    try:
        classified, lines = classify_snapshots(session, files, limits)
    except SnapshotHeaderError as error:
        raise Failure(str(error)) from error
    day = F.lit(constants["as_of_date"]) if constants else _landing_date("file_name")
    classified = classified.withColumn("as_of_date", day)
    read = lines.groupBy(day.alias("as_of_date")).agg(F.count("*").alias("records")).toArrow()
    values = {k: v for k, v in (constants or {}).items() if k != "as_of_date"}
    accepted, rejected = stage_classified(
        lakehouse,
        classified,
        (table, accepted_styles(classified, ["as_of_date"])),
        (f"{table}_rejected", rejected_lines(classified, ["as_of_date"])),
        partitions,
        values,
        mark=duplicates_marked,
    )
    return StagedSnapshot(accepted, rejected, read)


def stage_classified(
    lakehouse: Lakehouse,
    classified: DataFrame,
    accepted: tuple[str, DataFrame],
    rejected: tuple[str, DataFrame],
    partitions: dict,
    constants: dict | None = None,
    mark=None,
) -> tuple[Staged, Staged]:
    """The accepted and rejected rows of one classification, each (table, its rows: a selection of
    `classified`), staged in one pass over it (`split_on_reason`, after `mark`): classified once, nothing
    cached. `constants`: columns of one value added to both."""
    values = dict(constants or {})
    extra = [pa.field(column, pa.scalar(value).type) for column, value in values.items()]
    schemas = {
        name: pa.schema([*to_arrow_schema(rows.schema, timezone="UTC"), *extra]) for name, rows in (accepted, rejected)
    }
    columns = list(dict.fromkeys([*accepted[1].columns, *rejected[1].columns, "reason"]))
    split = split_on_reason((accepted[0], accepted[1].columns), (rejected[0], rejected[1].columns), mark)
    staged = lakehouse.stage(classified.select(*columns), schemas, partitions, transform=split, constants=values)
    return staged[accepted[0]], staged[rejected[0]]


@multi_asset(
    specs=[
        AssetSpec(
            "raw_events",
            deps=["catalog"],
            group_name=INGESTION,
            kinds={"spark", "delta"},
            description="Accepted clickstream events of the day, with the style's group and hierarchy.",
        ),
        AssetSpec(
            "raw_events_rejected",
            deps=["catalog"],
            group_name=INGESTION,
            kinds={"spark", "delta"},
            description="Landed lines that broke a rule (blank ones too), with the rule (`reason`) and the line.",
        ),
    ],
    check_specs=[
        spec("raw_events", "records_reconcile", "accepted + rejected = lines of the landing files, for every day"),
        spec("raw_events", "unique_event_ids", "no event_id is accepted twice"),
        spec("raw_events", "not_empty", "every day whose landing file has lines has accepted events"),
    ],
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
)
def raw_events(
    context: AssetExecutionContext,
    spark: SparkResource,
    lakehouse: Lakehouse,
    landing: LandingResource,
    settings: RecoSettings,
):
    days = partition_days(context)
    first, last = days[0], days[-1]
    session = spark.session()
    site = _landed_files({day: landing.events_file(day) for day in days})
    api = [str(path) for day in days for path in landing.api_events_files(day)]  # the events posted to the API
    lines = _read_lines(session, site + api).cache()
    catalog_days = lakehouse.read_spark(session, "catalog", partition={"as_of_date": days})
    around = timedelta(days=settings.ingestion.dedupe_window_days)
    before = (
        lakehouse.read_spark(session, "raw_events", range_predicate("event_date", first - around, last + around))
        .where(~F.col("event_date").between(first, last))
        .select("event_id")
        if lakehouse.table("raw_events") is not None
        else session.createDataFrame([], "event_id string")
    )
    read = lines.groupBy(F.col("landing_date").alias("event_date")).agg(F.count("*").alias("records")).toArrow()
    classified = classify_events(lines, catalog_days, before, settings.input_limits())
    accepted, rejected = stage_classified(
        lakehouse,
        classified,
        ("raw_events", accepted_events(classified)),
        ("raw_events_rejected", rejected_records(classified)),
        {"event_date": days},
    )
    lines.unpersist()

    stored, quarantined = accepted.dataset(), rejected.dataset()
    mismatched = invariants.days_not_reconciled(read, stored, quarantined)
    yield from publish(
        [accepted, rejected],
        [
            check("records_reconcile", mismatched, "days where accepted + rejected differs from the lines read"),
            check("unique_event_ids", invariants.duplicate_event_ids(stored), "event_ids accepted more than once"),
            # a file with lines of which none is accepted; an empty file is a day without events (a store closed)
            not_empty([accepted], "event_date", days={str(d) for d in read.column("event_date").to_pylist()}),
        ],
    )
    reasons = quarantined.to_table(columns=["reason"]).group_by("reason").aggregate([("reason", "count")])
    yield MaterializeResult(
        asset_key="raw_events",
        metadata=staged_metadata([accepted], records_read=pc.sum(read.column("records")).as_py() or 0),
    )
    yield MaterializeResult(
        asset_key="raw_events_rejected",
        metadata=staged_metadata(
            [rejected], **{f"reason:{r['reason']}": r["reason_count"] for r in reasons.to_pylist()}
        ),
    )
