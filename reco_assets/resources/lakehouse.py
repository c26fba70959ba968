"""The one IO layer: every table is a Delta table at `<root>/<asset>`, written one partition at a time.

Writes replace exactly their partition (a day, a range of days, or a day x cohort) in one Delta commit,
so a re-run replaces instead of appending and a crash mid-write leaves the previous version. Reads return
Arrow (small tables, checks, DuckDB) or Spark DataFrames over the snapshot's Parquet files, so that Spark
reads in parallel from local disk or object storage alike.
"""

from collections.abc import Mapping
from datetime import date

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
from dagster import ConfigurableResource
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import TableNotFoundError
from pydantic import Field
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import from_arrow_schema

PartitionValue = date | str


def _literal(value: PartitionValue) -> str:
    return f"'{value.isoformat() if isinstance(value, date) else value}'"


def partition_predicate(partition: Mapping[str, PartitionValue]) -> str:
    """SQL predicate that selects exactly one partition, e.g. ``as_of_date = '2026-10-31' AND cohort = 'men_2'``."""
    return " AND ".join(f"{column} = {_literal(value)}" for column, value in partition.items())


def range_predicate(column: str, start: date, end: date) -> str:
    """SQL predicate for the days ``start..end`` (both included)."""
    return f"{column} >= {_literal(start)} AND {column} <= {_literal(end)}"


class Lakehouse(ConfigurableResource):
    """Delta tables under one root: a local folder or an object-store URI (s3://, abfss://, gs://)."""

    root: str = Field(description="Folder or URI that holds one Delta table per asset.")
    storage_options: dict[str, str] = Field(
        default_factory=dict, description="Passed to deltalake for object stores (credentials, endpoint)."
    )

    def uri(self, table: str) -> str:
        return f"{self.root.rstrip('/')}/{table}"

    def table(self, table: str) -> DeltaTable | None:
        try:
            return DeltaTable(self.uri(table), storage_options=self.storage_options or None)
        except TableNotFoundError:
            return None

    def replace(self, table: str, data: pa.Table, predicate: str | None, partition_by: list[str]) -> int:
        """Replace the rows matching `predicate` (all rows: None) by `data` in one commit; returns the rows written."""
        write_deltalake(
            self.uri(table),
            data,
            mode="overwrite",
            predicate=predicate,
            partition_by=partition_by,
            storage_options=self.storage_options or None,
        )
        return data.num_rows

    def write_partition(self, table: str, data: pa.Table, partition: Mapping[str, PartitionValue]) -> int:
        return self.replace(table, data, partition_predicate(partition), list(partition))

    def dataset(self, table: str) -> ds.Dataset | None:
        delta = self.table(table)
        return delta.to_pyarrow_dataset() if delta is not None else None

    def read_arrow(self, table: str, where: str | None = None, columns: list[str] | None = None) -> pa.Table:
        """Rows of a table as Arrow, filtered by a SQL `where` over its columns (DuckDB)."""
        dataset = self.dataset(table)
        if dataset is None:
            raise FileNotFoundError(f"table {table!r} does not exist yet under {self.root}")
        select = ", ".join(f'"{c}"' for c in columns) if columns else "*"
        sql = f"SELECT {select} FROM t" + (f" WHERE {where}" if where else "")
        with duckdb.connect() as con:
            con.register("t", dataset)
            return con.sql(sql).to_arrow_table()

    def read_spark(self, spark: SparkSession, table: str, where: str | None = None) -> DataFrame:
        """A Spark DataFrame over the snapshot's files: files pruned by `where` (SQL), rows filtered by it."""
        delta = self.table(table)
        if delta is None:
            raise FileNotFoundError(f"table {table!r} does not exist yet under {self.root}")
        uris = delta.file_uris(file_pruning_predicate=where) if where else delta.file_uris()
        schema = pa.schema(delta.schema().to_arrow())
        if not uris:
            return spark.createDataFrame(schema.empty_table())
        # The Delta schema spares Spark a job that infers it from the files' footers; partition columns
        # come back from the hive-style paths under basePath.
        frame = spark.read.schema(from_arrow_schema(schema)).option("basePath", self.uri(table)).parquet(*uris)
        frame = frame.select(*schema.names)
        return frame.where(where) if where else frame
