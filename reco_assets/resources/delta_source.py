"""A Spark data source over the files of one Delta snapshot, read with pyarrow in the Python workers.

Spark's own Parquet reader needs a Hadoop filesystem for every object store (`hadoop-aws` and its kin),
jars that cannot always be installed. This reader opens the snapshot's files through the same filesystems
the writer uses (`delta_files.filesystem`: pyarrow's, or delta-rs's object store), so any store delta-rs
reaches is readable by Spark with no jar at all. The driver only lists the files (from the Delta log,
pruned by the partition predicate); each file is one input partition, read as Arrow batches by a task.

    spark.dataSource.register(DeltaFiles)
    spark.read.format("reco_delta_files").schema(schema).options(**DeltaFiles.options(...)).load()
"""

import json
from collections.abc import Iterator, Mapping
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql.datasource import DataSource, DataSourceReader, InputPartition
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import StructType

from reco_assets.resources.delta_files import filesystem, table_dir

BATCH_ROWS = 20_000


class DeltaFiles(DataSource):
    """Options: `root`, `table`, `storage_options` (JSON) and `files` (JSON list of paths relative to the
    table's folder, hive-style partition folders included)."""

    @classmethod
    def name(cls) -> str:
        return "reco_delta_files"

    @staticmethod
    def options(root: str, table: str, storage_options: Mapping[str, str], files: list[str]) -> dict[str, str]:
        return {
            "root": root,
            "table": table,
            "storage_options": json.dumps(dict(storage_options)),
            "files": json.dumps(files),
        }

    def schema(self) -> str:
        raise ValueError("reco_delta_files needs the table's schema: spark.read.format(...).schema(schema)")

    def reader(self, schema: StructType) -> "DeltaFilesReader":
        return DeltaFilesReader(self.options, schema)


def partition_values(path: str) -> dict[str, str]:
    """Partition values from the hive-style folders of a file's relative path."""
    folders = path.split("/")[:-1]
    return dict((unquote(k), unquote(v)) for k, v in (folder.split("=", 1) for folder in folders if "=" in folder))


class DeltaFilesReader(DataSourceReader):
    def __init__(self, options: Mapping[str, str], schema: StructType):
        self.root = options["root"]
        self.table = options["table"]
        self.storage_options = json.loads(options.get("storage_options", "{}"))
        self.files = json.loads(options["files"])
        self.schema = schema

    def partitions(self) -> list[InputPartition]:
        return [InputPartition(path) for path in self.files]

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        arrow_schema = to_arrow_schema(self.schema)
        fs, base = filesystem(self.root, self.storage_options)
        values = partition_values(partition.value)
        stored = [f.name for f in arrow_schema if f.name not in values]
        with fs.open_input_file(f"{table_dir(base, self.table)}/{partition.value}") as handle:
            for batch in pq.ParquetFile(handle).iter_batches(batch_size=BATCH_ROWS, columns=stored):
                columns = []
                for field in arrow_schema:
                    if field.name in values:  # a partition column: constant in the file
                        columns.append(pa.repeat(pa.scalar(values[field.name]).cast(field.type), batch.num_rows))
                    else:
                        columns.append(batch.column(field.name).cast(field.type))
                yield pa.RecordBatch.from_arrays(columns, schema=arrow_schema)
