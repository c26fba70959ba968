"""The one IO layer: every table is a Delta table at `<root>/<asset>`, written by partitions.

Writes replace exactly their partitions (a day, days, a day's cohorts) in one Delta commit, so a re-run
replaces instead of appending and a crash mid-write leaves the previous version. Spark results are
written by the executors and committed by the driver (`stage`, then `Staged.commit`), so the rows never
pass through the driver, and checks run over the staged files before anything becomes visible. Small
results computed on the driver (the evaluation table) are written from Arrow (`replace`); the id map
gains the rows it lacks by a merge (`insert_new`).
Reads return Arrow (small tables, checks, DuckDB) or Spark DataFrames over the snapshot's Parquet files.
"""

import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import partial

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from dagster import ConfigurableResource, Failure
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError, TableNotFoundError
from pydantic import Field
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

from reco_assets.resources.delta_files import (
    FILES_SCHEMA,
    Transform,
    add_actions,
    empty_partition_file,
    files_dataset,
    filesystem,
    in_partitions,
    is_local,
    partition_string,
    staged_dataset,
    table_dir,
    values_of,
    write_task,
)
from reco_assets.resources.delta_source import DeltaFiles
from reco_assets.resources.steps import unsealed

PartitionValue = date | str
Partitions = Mapping[str, PartitionValue | Sequence[PartitionValue]]
"""Partitions to replace: every combination of the values given per partition column (a rectangle)."""


def _literal(value: PartitionValue) -> str:
    return f"'{value.isoformat() if isinstance(value, date) else value}'"


def partition_predicate(partition: Mapping[str, PartitionValue]) -> str:
    """SQL predicate that selects exactly one partition, e.g. ``as_of_date = '2026-10-31' AND cohort = 'men_2'``."""
    return " AND ".join(f"{column} = {_literal(value)}" for column, value in partition.items())


def partitions_predicate(partitions: Partitions) -> str:
    """SQL predicate for every combination of the values given per partition column."""
    return " AND ".join(
        f"{column} IN ({', '.join(_literal(v) for v in values_of(values))})" for column, values in partitions.items()
    )


def range_predicate(column: str, start: date, end: date) -> str:
    """SQL predicate for the days ``start..end`` (both included)."""
    return f"{column} >= {_literal(start)} AND {column} <= {_literal(end)}"


def _combinations(partitions: Partitions) -> list[dict[str, str]]:
    """Every partition of a rectangle, as Delta's partition strings."""
    columns = list(partitions)
    values = [[partition_string(v) for v in values_of(partitions[c])] for c in columns]
    return [dict(zip(columns, combo)) for combo in itertools.product(*values)]


def _delta_field(field: pa.Field) -> pa.Field:
    """A column as the tables hold it: nullable, and a zoned time in `UTC` (the same instants), since the
    Delta log has one zone name for it (`Etc/UTC`, as DuckDB names it, is refused)."""
    if pa.types.is_timestamp(field.type) and field.type.tz is not None:
        field = field.with_type(pa.timestamp(field.type.unit, "UTC"))
    return field.with_nullable(True)


class MissingPartition(Failure):
    """An upstream partition was never written: reading it would silently give no rows. A Dagster `Failure`,
    so the step fails with this message."""


@dataclass
class Staged:
    """Files of one table written by a Spark job and not yet visible: check them, then commit or discard."""

    lakehouse: "Lakehouse"
    table: str
    schema: pa.Schema
    partitions: Partitions
    files: list[dict] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(f["rows"] for f in self.files)

    def dataset(self) -> ds.Dataset:
        """The staged rows (for DuckDB checks and previews): read from the files, never collected."""
        return staged_dataset(self.lakehouse.root, self.lakehouse.storage_options, self.table, self.schema, self.files)

    def rows_by(self, column: str) -> dict[str, int]:
        """Rows per value of a partition column, from the file list."""
        counts: dict[str, int] = {}
        for f in self.files:
            value = json.loads(f["partition_values"])[column]
            counts[value] = counts.get(value, 0) + f["rows"]
        return dict(sorted(counts.items()))

    def copy_files(self, column: str, value: str, folder: str) -> None:
        """Copy the staged files of one partition value into a local folder (streamed, not loaded):
        e.g. a cohort's factors as a model artifact."""
        import pyarrow.fs as pafs

        fs, base = filesystem(self.lakehouse.root, self.lakehouse.storage_options)
        for f in self.files:
            if json.loads(f["partition_values"])[column] == value:
                target = f"{folder}/{f['path'].rsplit('/', 1)[-1]}"
                pafs.copy_files(f"{table_dir(base, self.table)}/{f['path']}", target, fs, pafs.LocalFileSystem())

    def commit(self) -> int:
        """One Delta transaction: the staged files replace every targeted partition; returns the version."""
        partition_by = list(self.partitions)
        actions = add_actions(self.files)
        existing = self.lakehouse.table(self.table)
        if existing is None:
            from deltalake import Schema
            from deltalake.transaction import create_table_with_add_actions

            create_table_with_add_actions(
                self.lakehouse.uri(self.table),
                Schema.from_arrow(self.schema),
                actions,
                mode="append",
                partition_by=partition_by,
                storage_options=self.lakehouse.storage_options or None,
            )
        else:
            filters = [
                (column, "in", [partition_string(v) for v in values_of(values)])
                for column, values in self.partitions.items()
            ]
            existing.create_write_transaction(
                actions, mode="overwrite", schema=self.schema, partition_by=partition_by, partition_filters=filters
            )
        return self.lakehouse.table(self.table).version()

    def discard(self) -> None:
        """Delete the staged files: nothing references them."""
        fs, base = filesystem(self.lakehouse.root, self.lakehouse.storage_options)
        prefix = table_dir(base, self.table)
        for f in self.files:
            fs.delete_file(f"{prefix}/{f['path']}")


class Lakehouse(ConfigurableResource):
    """Delta tables under one root: a local folder or an object-store URI (s3://, abfss://, gs://)."""

    root: str = Field(description="Folder or URI that holds one Delta table per asset.")
    storage_options: dict[str, str] = Field(
        default_factory=dict, description="Passed to deltalake for object stores (credentials, endpoint)."
    )
    spark_reader: str = Field(
        "auto",
        description="How Spark reads tables: `native` (Spark's Parquet reader; object stores need their Hadoop "
        "jars), `python` (the `reco_delta_files` data source: pyarrow in the Python workers, any store delta-rs "
        "reaches, no jar), `auto` (native for local folders, python for object stores).",
    )

    def uri(self, table: str) -> str:
        return f"{self.root.rstrip('/')}/{table}"

    def table(self, table: str) -> DeltaTable | None:
        try:
            return DeltaTable(self.uri(table), storage_options=self.storage_options or None)
        except TableNotFoundError:
            return None

    def vacuum(self, retention_hours: int) -> dict[str, list[str]]:
        """Delete, in every table, the files no version of the last `retention_hours` reads; the files deleted
        (relative to the table's folder) per table."""
        from reco_assets.resources.vacuum import folders, vacuum_table

        tables = {name: self.table(name) for name in folders(self.root, self.storage_options)}
        return {name: vacuum_table(delta, retention_hours) for name, delta in tables.items() if delta is not None}

    def replace(self, table: str, data: pa.Table, predicate: str | None, partition_by: list[str]) -> int:
        """Replace the rows matching `predicate` (all rows: None) by `data` in one commit; returns the rows written.
        Written by delta-rs, whose float statistics leave NaN out (a filter on a float column holding NaN can
        lose rows in pyarrow): `write_partition` writes as the pipeline's tasks do."""
        write_deltalake(
            self.uri(table),
            data,
            mode="overwrite",
            predicate=predicate,
            partition_by=partition_by,
            storage_options=self.storage_options or None,
        )
        return data.num_rows

    def insert_new(
        self,
        table: str,
        data: pa.Table,
        keys: list[str],
        partition_by: list[str],
        check: Callable[[ds.Dataset], None] | None = None,
        attempts: int = 5,
    ) -> int:
        """Insert the rows of `data` whose `keys` match no stored row, in one commit (a Delta merge; the table
        is created empty first when absent); returns the rows inserted. `check(stored)` sees the stored rows
        (the snapshot the merge reads) and may refuse them by raising. A commit that a concurrent writer made
        stale fails (`CommitFailedError`) and is redone on the new snapshot, at most `attempts` times in all."""
        on = " AND ".join(f"new.{key} = stored.{key}" for key in keys)
        while True:
            attempts -= 1
            if self.table(table) is None:
                # two writers creating the table at once may both commit a version, but neither adds rows
                DeltaTable.create(
                    self.uri(table),
                    data.schema,
                    mode="ignore",
                    partition_by=partition_by,
                    storage_options=self.storage_options or None,
                )
            stored = self.table(table)
            if check is not None:
                check(stored.to_pyarrow_dataset())
            try:
                merge = stored.merge(data, on, source_alias="new", target_alias="stored")
                return merge.when_not_matched_insert_all().execute()["num_target_rows_inserted"]
            except CommitFailedError:
                if not attempts:
                    raise

    def write_partition(self, table: str, data: pa.Table, partition: Mapping[str, PartitionValue]) -> int:
        """Replace one partition by `data` (rows computed on the driver) in one commit. The files are written
        as the tasks of `stage` write theirs, statistics included; without rows the partition is recorded as
        written (an empty file)."""
        schema = pa.schema([_delta_field(f) for f in data.schema])
        values = {column: partition_string(value) for column, value in partition.items()}
        if data.num_rows:
            (listing,) = write_task(
                iter(data.cast(schema).to_batches()),
                root=self.root,
                storage_options=self.storage_options or None,
                schemas={table: schema},
                partition_by=list(partition),
                transform=None,
                constants={},
            )
            files = listing.to_pylist()
        else:
            files = [empty_partition_file(self.root, self.storage_options, table, schema, values)]
        staged = Staged(self, table, schema, dict(partition), files)
        if any(json.loads(f["partition_values"]) != values for f in files):
            staged.discard()
            raise ValueError(f"rows of {table!r} outside the partition {values}")
        staged.commit()
        return data.num_rows

    def stage(
        self,
        frame: DataFrame,
        tables: Mapping[str, pa.Schema] | str,
        partitions: Partitions,
        transform: Transform | None = None,
        constants: Mapping[str, object] | None = None,
    ) -> dict[str, Staged] | Staged:
        """Write `frame` (or what `transform` makes of its batches, in the tasks) as Parquet files of the
        `partitions` of one table (a name: the frame's own schema) or several (name -> full schema).
        `constants` are columns of one value added in the tasks (e.g. the day). Nothing is visible until
        `commit`; rows outside the targeted partitions fail the write."""
        single = isinstance(tables, str)
        constants = dict(constants or {})
        if single:
            own = to_arrow_schema(frame.schema, timezone="UTC")
            for column, value in constants.items():
                own = own.append(pa.field(column, pa.scalar(value).type))
        schemas = {tables: own} if single else dict(tables)
        # Every column nullable, as a table's schema must not depend on what one write's plan could prove.
        schemas = {name: pa.schema([f.with_nullable(True) for f in schema]) for name, schema in schemas.items()}
        task = partial(
            write_task,
            root=self.root,
            storage_options=self.storage_options or None,
            schemas=schemas,
            partition_by=list(partitions),
            transform=transform,
            constants=constants,
        )
        written = frame.mapInArrow(task, from_arrow_schema(FILES_SCHEMA)).toArrow().to_pylist()
        staged = {name: Staged(self, name, schema, partitions) for name, schema in schemas.items()}
        allowed = {c: {partition_string(v) for v in values_of(values)} for c, values in partitions.items()}
        for f in written:
            staged[f["table"]].files.append(f)
        stray = [
            f["path"]
            for f in written
            if any(value not in allowed[c] for c, value in json.loads(f["partition_values"]).items())
        ]
        if stray:
            for each in staged.values():
                each.discard()
            raise ValueError(f"rows outside the targeted partitions {dict(partitions)}: {stray[:3]}")
        for each in staged.values():
            covered = {f["partition_values"] for f in each.files}
            for partition in _combinations(partitions):
                if json.dumps(partition) not in covered:
                    each.files.append(
                        empty_partition_file(self.root, self.storage_options, each.table, each.schema, partition)
                    )
        return staged[tables] if single else staged

    def dataset(self, table: str) -> ds.Dataset | None:
        """The table's current snapshot as an Arrow dataset (files listed by the Delta log), or None."""
        delta = self.table(table)
        if delta is None:
            return None
        actions = pa.table(delta.get_add_actions(flatten=False))
        paths = actions.column("path").to_pylist()
        if "partition" in actions.column_names:
            files = list(zip(paths, actions.column("partition").to_pylist()))
        else:
            files = [(path, {}) for path in paths]
        return files_dataset(self.root, self.storage_options, table, pa.schema(delta.schema().to_arrow()), files)

    def require(self, table: str, partitions: Partitions) -> None:
        """Fail, naming them, when partitions of `table` were never written (every combination of the values
        given must have a file in the log: writes leave an empty file for a partition without rows), or were
        written by a step that did not finish publishing its tables together (`steps`)."""
        delta = self.table(table)
        written: set[tuple] = set()
        if delta is not None:
            actions = pa.table(delta.get_add_actions(flatten=True))
            columns = [f"partition.{c}" for c in partitions]
            if all(c in actions.column_names for c in columns):
                present = actions.select(columns).group_by(columns).aggregate([]).to_pylist()
                written = {tuple(partition_string(row[c]) for c in columns) for row in present}
        missing = [p for p in _combinations(partitions) if tuple(p.values()) not in written]
        if missing:
            names = ", ".join(" ".join(f"{c}={v}" for c, v in p.items()) for p in missing[:5])
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise MissingPartition(f"upstream table {table!r} has no partition {names}{more} under {self.root}")
        torn = unsealed(self, table, partitions)
        if torn:
            more = f" and {len(torn) - 3} more" if len(torn) > 3 else ""
            raise MissingPartition(
                f"upstream table {table!r}: partition {', '.join(torn[:3])}{more} was written by a step that did "
                "not finish publishing its tables together; run that step again"
            )

    def written_at(self, table: str, partitions: Partitions) -> float:
        """When the partitions were last written (epoch seconds: the newest file's time in the log)."""
        self.require(table, partitions)
        actions = in_partitions(pa.table(self.table(table).get_add_actions(flatten=True)), partitions)
        times = actions.column("modification_time").cast(pa.int64())
        return pc.max(times).as_py() / 1000.0

    def last_written(self, table: str, column: str, first: date, last: date) -> float | None:
        """When any partition of the days `first`..`last` (of the date partition `column`) was last written
        (epoch seconds), or None when none was."""
        delta = self.table(table)
        if delta is None:
            return None
        actions = pa.table(delta.get_add_actions(flatten=True))
        days = actions.column(f"partition.{column}")
        mask = pc.and_(pc.greater_equal(days, pa.scalar(first)), pc.less_equal(days, pa.scalar(last)))
        latest = pc.max(actions.filter(mask).column("modification_time").cast(pa.int64())).as_py()
        return None if latest is None else latest / 1000.0

    def rows(self, table: str, partition: Mapping[str, PartitionValue]) -> int:
        """Rows of one partition, from the Delta log's per-file record counts: no data file is read."""
        delta = self.table(table)
        if delta is None:
            raise FileNotFoundError(f"table {table!r} does not exist yet under {self.root}")
        actions = pa.table(delta.get_add_actions(flatten=True))
        mask = None
        for column, value in partition.items():
            match = pc.equal(actions.column(f"partition.{column}"), pa.scalar(value))
            mask = match if mask is None else pc.and_(mask, match)
        chosen = actions if mask is None else actions.filter(mask)
        return pc.sum(chosen.column("num_records")).as_py() or 0

    def _where(self, table: str, where: str | None, partition: Partitions | None) -> str | None:
        """`where` and the predicate of the partitions read, which must exist (`require`)."""
        if partition is None:
            return where
        self.require(table, partition)
        return " AND ".join(p for p in (partitions_predicate(partition), where) if p)

    def read_arrow(
        self,
        table: str,
        where: str | None = None,
        columns: list[str] | None = None,
        partition: Partitions | None = None,
        distinct: bool = False,
    ) -> pa.Table:
        """Rows of a table as Arrow, filtered by a SQL `where` over its columns (DuckDB); `partition`: the
        partitions read, which must have been written; `distinct`: each row once."""
        where = self._where(table, where, partition)
        dataset = self.dataset(table)
        if dataset is None:
            raise FileNotFoundError(f"table {table!r} does not exist yet under {self.root}")
        select = ", ".join(f'"{c}"' for c in columns) if columns else "*"
        sql = f"SELECT {'DISTINCT ' if distinct else ''}{select} FROM t" + (f" WHERE {where}" if where else "")
        with duckdb.connect() as con:
            con.register("t", dataset)
            return con.sql(sql).to_arrow_table()

    def read_spark(
        self, spark: SparkSession, table: str, where: str | None = None, partition: Partitions | None = None
    ) -> DataFrame:
        """A Spark DataFrame over the snapshot's files: files pruned by `where` (SQL), rows filtered by it;
        `partition`: the partitions read, which must have been written (else `MissingPartition`)."""
        where = self._where(table, where, partition)
        delta = self.table(table)
        if delta is None:
            raise FileNotFoundError(f"table {table!r} does not exist yet under {self.root}")
        uris = delta.file_uris(file_pruning_predicate=where) if where else delta.file_uris()
        schema = pa.schema(delta.schema().to_arrow())
        if not uris:
            return spark.createDataFrame(schema.empty_table())
        if self.spark_reader == "python" or (self.spark_reader == "auto" and not is_local(self.root)):
            prefix = self.uri(table).rstrip("/") + "/"
            files = [uri.split(prefix, 1)[-1] for uri in uris]
            spark.dataSource.register(DeltaFiles)
            options = DeltaFiles.options(self.root, table, self.storage_options, files)
            frame = spark.read.format(DeltaFiles.name()).schema(from_arrow_schema(schema)).options(**options).load()
        else:
            # The Delta schema spares Spark a job that infers it from the files' footers; partition columns
            # come back from the hive-style paths under basePath.
            frame = spark.read.schema(from_arrow_schema(schema)).option("basePath", self.uri(table)).parquet(*uris)
        frame = frame.select(*schema.names)
        return frame.where(where) if where else frame
