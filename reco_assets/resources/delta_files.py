"""Parquet files of a Delta table, written by Spark's tasks and committed by the driver.

A write has two halves. In the tasks (`write_task`), every Arrow batch a task sees is split by the
table's partition columns and streamed into one Parquet file per partition value per task, under the
hive-style folders Delta uses; the task returns one small row per file (path, size, rows, stats). On the
driver (`commit`), those rows become Delta add actions, committed in one transaction that replaces
exactly the targeted partitions. Nothing that grows with the table reaches the driver: only the file list.
Each add action carries Delta statistics of every column (`delta_stats`), so a reader of the table prunes
files by a filter on any column.
A task that fails or is killed leaves at most files that no version references (`vacuum` removes them).

delta-rs commits (`create_write_transaction`); Spark cannot, as no Delta jars can be fetched here, and it
would need them per object store. The files go through pyarrow's filesystems (local, S3, GCS, Azure) or,
for any other URI, the object store delta-rs itself uses (`deltalake.fs.DeltaStorageHandler`).
"""

import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from urllib.parse import quote, urlparse

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from reco_assets.resources.delta_stats import delta_json, file_stats, footer_statistics, merge_stats

FILES_SCHEMA = pa.schema(
    [
        ("table", pa.string()),
        ("path", pa.string()),
        ("size", pa.int64()),
        ("rows", pa.int64()),
        ("partition_values", pa.string()),
        ("stats", pa.string()),
    ]
)
"""One row per file a task wrote: what the driver needs to commit it."""

Transform = Callable[[Iterator[pa.RecordBatch]], Iterable[tuple[str, pa.Table | pa.RecordBatch]]]
"""Runs in the task before the files are written: input batches -> (table, rows) pieces."""


def is_local(root: str) -> bool:
    scheme = urlparse(root).scheme
    return scheme in ("", "file") or len(scheme) == 1  # a Windows drive letter parses as a scheme


def filesystem(root: str, storage_options: Mapping[str, str] | None = None) -> tuple[pafs.FileSystem, str]:
    """The filesystem that holds `root`, and `root` as a path on it."""
    if is_local(root):
        return pafs.LocalFileSystem(), pafs.LocalFileSystem().normalize_path(root.removeprefix("file://"))
    if not storage_options:
        try:
            return pafs.FileSystem.from_uri(root)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    from deltalake.fs import DeltaStorageHandler

    return pafs.PyFileSystem(DeltaStorageHandler(root, dict(storage_options or {}))), ""


def table_dir(base: str, table: str) -> str:
    """A table's folder on the filesystem `filesystem` returned (whose root path is `base`)."""
    return f"{base.rstrip('/')}/{table}" if base else table


def partition_string(value) -> str:
    """A partition value as Delta stores it in the log and in folder names."""
    return value.isoformat() if isinstance(value, date) else str(value)


def values_of(value) -> list:
    """A partition column's values: one, or several given as a list or tuple."""
    return list(value) if isinstance(value, (list, tuple)) else [value]


def in_partitions(actions: pa.Table, partitions: Mapping[str, object]) -> pa.Table:
    """The add actions (`get_add_actions(flatten=True)`) of the files within `partitions` (column -> values)."""
    mask = None
    for column, values in partitions.items():
        match = pc.is_in(
            actions.column(f"partition.{column}").cast(pa.string()),
            pa.array([partition_string(v) for v in values_of(values)]),
        )
        mask = match if mask is None else pc.and_(mask, match)
    return actions if mask is None else actions.filter(mask)


def _split(data: pa.Table, partition_by: list[str]) -> Iterator[tuple[tuple[str, ...], pa.Table]]:
    """`data` per distinct combination of its partition columns (usually one per task)."""
    if data.num_rows == 0:
        return
    if all(pc.count_distinct(data.column(c)).as_py() == 1 for c in partition_by):
        yield tuple(partition_string(data.column(c)[0].as_py()) for c in partition_by), data
        return
    for combo in data.select(partition_by).group_by(partition_by).aggregate([]).to_pylist():
        mask = None
        for column in partition_by:
            equal = pc.equal(data.column(column), pa.scalar(combo[column], data.schema.field(column).type))
            mask = equal if mask is None else pc.and_(mask, equal)
        yield tuple(partition_string(combo[c]) for c in partition_by), data.filter(mask)


@dataclass
class _OpenFile:
    path: str  # relative to the table's root
    writer: pq.ParquetWriter
    stats: dict


def write_task(
    batches: Iterator[pa.RecordBatch],
    *,
    root: str,
    storage_options: Mapping[str, str] | None,
    schemas: Mapping[str, pa.Schema],
    partition_by: list[str],
    transform: Transform | None,
    constants: Mapping[str, object],
) -> Iterator[pa.RecordBatch]:
    """The task half of a write (`mapInArrow`): stream rows into Parquet files, return the file list.
    `constants` are columns with one value for every row (e.g. the day), added before the split."""
    fs, base = filesystem(root, storage_options)
    token = uuid.uuid4().hex
    open_files: dict[tuple[str, tuple[str, ...]], _OpenFile] = {}
    if transform is None:  # a plain write of one table
        (only,) = schemas
        pieces = ((only, batch) for batch in batches)
    else:
        pieces = transform(batches)
    for table, rows in pieces:
        schema = schemas[table]
        data = pa.Table.from_batches([rows]) if isinstance(rows, pa.RecordBatch) else rows
        for column, value in constants.items():
            data = data.append_column(column, pa.array([value] * data.num_rows, schema.field(column).type))
        file_schema = pa.schema([f for f in schema if f.name not in partition_by])
        for values, part in _split(data, partition_by):
            key = (table, values)
            if key not in open_files:
                folders = "/".join(f"{c}={quote(v, safe='')}" for c, v in zip(partition_by, values))
                relative = f"{folders}/part-{token}-{len(open_files):05d}.parquet"
                full = f"{table_dir(base, table)}/{relative}"
                fs.create_dir(full.rsplit("/", 1)[0], recursive=True)
                writer = pq.ParquetWriter(
                    full, file_schema, filesystem=fs, write_statistics=footer_statistics(file_schema)
                )
                open_files[key] = _OpenFile(relative, writer, file_stats(file_schema.empty_table()))
            chunk = part.select(file_schema.names).cast(file_schema)
            open_files[key].writer.write_table(chunk)
            open_files[key].stats = merge_stats(open_files[key].stats, file_stats(chunk))
    rows = []
    for (table, values), handle in open_files.items():
        handle.writer.close()
        full = f"{table_dir(base, table)}/{handle.path}"
        rows.append(
            {
                "table": table,
                "path": handle.path,
                "size": fs.get_file_info(full).size,
                "rows": handle.stats["rows"],
                "partition_values": json.dumps(dict(zip(partition_by, values))),
                "stats": delta_json(handle.stats),
            }
        )
    yield pa.RecordBatch.from_pylist(rows, schema=FILES_SCHEMA)


def empty_partition_file(
    root: str, storage_options, table: str, schema: pa.Schema, partition: Mapping[str, str]
) -> dict:
    """A Parquet file with no row for one partition (written on the driver; it is tiny).

    A partition a write covered but found no row for still gets a file, so the log tells a partition that
    was written empty (a cohort without members) from one never written (`Lakehouse.require`)."""
    fs, base = filesystem(root, storage_options)
    folders = "/".join(f"{c}={quote(v, safe='')}" for c, v in partition.items())
    relative = f"{folders}/part-{uuid.uuid4().hex}-empty.parquet"
    full = f"{table_dir(base, table)}/{relative}"
    fs.create_dir(full.rsplit("/", 1)[0], recursive=True)
    file_schema = pa.schema([f for f in schema if f.name not in partition])
    pq.write_table(file_schema.empty_table(), full, filesystem=fs)
    return {
        "table": table,
        "path": relative,
        "size": fs.get_file_info(full).size,
        "rows": 0,
        "partition_values": json.dumps(dict(partition)),
        "stats": delta_json(file_stats(file_schema.empty_table())),
    }


def add_actions(files: list[dict]):
    """Delta add actions for the files a write's tasks returned."""
    from deltalake.transaction import AddAction

    now = int(time.time() * 1000)
    return [AddAction(f["path"], f["size"], json.loads(f["partition_values"]), now, True, f["stats"]) for f in files]


def staged_dataset(root: str, storage_options, table: str, schema: pa.Schema, files: list[dict]) -> ds.Dataset:
    """The files of a write before any commit, partition columns included, for checks (DuckDB) and metadata."""
    return files_dataset(
        root, storage_options, table, schema, [(f["path"], json.loads(f["partition_values"])) for f in files]
    )


def files_dataset(
    root: str, storage_options, table: str, schema: pa.Schema, files: list[tuple[str, Mapping]]
) -> ds.Dataset:
    """An Arrow dataset over a table's files (paths relative to its folder, with their partition values).

    Built by hand rather than with delta-rs `to_pyarrow_dataset`: staged files are in no snapshot yet, and files
    committed before every column had statistics carry bounds of integer columns only, which delta-rs turns
    into `column >= null` guarantees that make every filter on the other columns match nothing. Fragments know
    their partition values, so partition filters still prune.
    """
    fs, base = filesystem(root, storage_options)
    prefix = table_dir(base, table)
    fragments = []
    file_format = ds.ParquetFileFormat()
    for path, values in files:
        expression = None
        for column, value in values.items():
            typed = pa.scalar(value).cast(schema.field(column).type)
            term = ds.field(column) == typed
            expression = term if expression is None else expression & term
        fragments.append(file_format.make_fragment(f"{prefix}/{path}", filesystem=fs, partition_expression=expression))
    return ds.FileSystemDataset(fragments, schema, file_format, fs)
