"""Parquet files of a Delta table, written by Spark's tasks and committed by the driver.

A write has two halves. In the tasks (`write_task`), every Arrow batch a task sees is split by the
table's partition columns and streamed into one Parquet file per partition value per task, under the
hive-style folders Delta uses; the task returns one small row per file (path, size, rows, stats). On the
driver (`commit`), those rows become Delta add actions, committed in one transaction that replaces
exactly the targeted partitions. Nothing that grows with the table reaches the driver: only the file list.
Each add action carries Delta statistics of every column (`_delta_stats`), so a reader of the table prunes
files by a filter on any column.
A task that fails or is killed leaves at most files that no version references (`vacuum` removes them).

delta-rs commits (`create_write_transaction`); Spark cannot, as no Delta jars can be fetched here, and it
would need them per object store. The files go through pyarrow's filesystems (local, S3, GCS, Azure) or,
for any other URI, the object store delta-rs itself uses (`deltalake.fs.DeltaStorageHandler`).
"""

import json
import math
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from urllib.parse import quote, urlparse

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

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


STRING_PREFIX = 32
"""Characters of a string its bounds keep, as Spark's Delta writer (`dataSkippingStringPrefixLength`)."""
TIE_BREAKER = "\U0010ffff"
"""Appended to a cut maximum: the largest code point, so the bound stays above every string it stands for in
the code-point order readers compare by (UTF-8 bytes). Delta appends U+FFFD, which an emoji exceeds."""
EPOCH = datetime(1970, 1, 1)
PER_SECOND = {"s": 1, "ms": 1000, "us": 1_000_000, "ns": 1_000_000_000}
"""Ticks per second of each Arrow timestamp unit."""


@dataclass
class _Column:
    """One column's values in a file so far: extremes (None where Delta keeps none), nulls, whether NaN appeared."""

    kind: pa.DataType
    low: object = None
    high: object = None
    nulls: int = 0
    nan: bool = False


def _has_bounds(kind: pa.DataType) -> bool:
    """Types whose files carry a minimum and a maximum (nested ones and binary do not)."""
    checks = (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean, pa.types.is_date)
    checks += (pa.types.is_timestamp, pa.types.is_decimal, pa.types.is_string, pa.types.is_large_string)
    return any(check(kind) for check in checks)


def _leaves(name: str, values: pa.ChunkedArray) -> Iterator[tuple[str, pa.ChunkedArray]]:
    """A column as the columns statistics describe: a struct's fields (dotted), a null struct nulls them all."""
    if not pa.types.is_struct(values.type):
        yield name, values
        return
    for field, child in zip(values.type, values.flatten()):
        yield from _leaves(f"{name}.{field.name}", child)


def _measure(values: pa.ChunkedArray) -> _Column:
    """One column's nulls, and its extremes and NaN where its type has bounds."""
    column = _Column(values.type, nulls=values.null_count)
    if not _has_bounds(values.type):
        return column
    if pa.types.is_floating(values.type):
        column.nan = bool(pc.any(pc.is_nan(values)).as_py())
        if column.nan:  # bounds of its own (`_bounds`)
            return column
    if pa.types.is_timestamp(values.type):
        values = values.cast(pa.int64())  # exact at any unit; `_instant` formats it
    extremes = pc.min_max(values).as_py()
    column.low, column.high = extremes["min"], extremes["max"]
    return column


def _stats(data: pa.Table) -> dict:
    """Statistics of rows, raw: their count and a `_Column` per (dotted) column; `_delta_stats` writes them."""
    columns = {}
    for name in data.column_names:
        for path, values in _leaves(name, data.column(name)):
            columns[path] = _measure(values)
    return {"rows": data.num_rows, "columns": columns}


def _pick(choose, a, b):
    """`choose` of two values either of which may be missing (None)."""
    return a if b is None else b if a is None else choose(a, b)


def _merge_stats(a: dict, b: dict) -> dict:
    """The statistics of two sets of rows of one schema together: raw values, so bounds are cut once."""
    columns = {}
    for path, x in a["columns"].items():
        y = b["columns"][path]
        low, high = _pick(min, x.low, y.low), _pick(max, x.high, y.high)
        columns[path] = _Column(x.kind, low, high, x.nulls + y.nulls, x.nan or y.nan)
    return {"rows": a["rows"] + b["rows"], "columns": columns}


def _round_up(text: str) -> str:
    """A string's maximum cut to `STRING_PREFIX` characters, then raised above every string it stands for."""
    if len(text) <= STRING_PREFIX:
        return text
    end = STRING_PREFIX
    while end < len(text) and text[end] == TIE_BREAKER:
        end += 1
    return text[:end] + TIE_BREAKER


def _number(value: float):
    """A float as Spark's JSON writes it: infinities as strings (JSON has no number for them)."""
    return ("Infinity" if value > 0 else "-Infinity") if math.isinf(value) else value


def _instant(value: int, kind: pa.DataType, up: bool) -> str:
    """A timestamp bound as Delta writes it: ISO at the millisecond, `Z` when zoned (the value is UTC). Rounded
    outwards: Delta cuts the maximum and its readers add the millisecond back, a reader that does not still
    finds the maximum's row."""
    thousandths, per_second = value * 1000, PER_SECOND[kind.unit]
    millis = -(-thousandths // per_second) if up else thousandths // per_second
    text = (EPOCH + timedelta(milliseconds=millis)).isoformat(timespec="milliseconds")
    return text + "Z" if kind.tz else text


def _bounds(column: _Column) -> tuple | None:
    """A column's minimum and maximum in Delta's JSON, or None when it has none. A float column holding NaN
    gets the infinities: NaN compares false with any bound, and pyarrow, given `min <= x <= max` as true of
    every row, drops NaN rows from `x != v` and `is_nan(x)` when min == max; Spark's writer records NaN as the
    maximum, which delta-rs turns into `x <= NaN`, and pyarrow then drops rows of `x > v`."""
    kind = column.kind
    if column.nan:
        return "-Infinity", "Infinity"
    if column.low is None:
        return None
    if pa.types.is_floating(kind):
        return _number(column.low), _number(column.high)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return column.low[:STRING_PREFIX], _round_up(column.high)
    if pa.types.is_timestamp(kind):
        return _instant(column.low, kind, up=False), _instant(column.high, kind, up=True)
    if pa.types.is_date(kind):
        return column.low.isoformat(), column.high.isoformat()
    if pa.types.is_decimal(kind):
        return str(column.low), str(column.high)  # exact: delta-rs and Spark parse decimals from strings
    return column.low, column.high


def _nest(flat: dict[str, object]) -> dict:
    """Dotted column paths as the nested objects Delta's statistics mirror structs with."""
    nested: dict = {}
    for path, value in flat.items():
        *parents, leaf = path.split(".")
        node = nested
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return nested


def _delta_stats(stats: dict) -> str:
    """A file's statistics as its add action holds them (JSON), collected as Spark's Delta writer does: the rows,
    every column's nulls (lists and maps as one column, a struct's fields each), and bounds of every column of a
    primitive type, booleans too (Spark keeps none; delta-rs reads a column without bounds as `b >= null`, true
    of no row). Where Spark's bounds would let a reader lose rows, `_bounds` widens them."""
    bounds = {path: _bounds(column) for path, column in stats["columns"].items()}
    document = {
        "numRecords": stats["rows"],
        "minValues": _nest({path: pair[0] for path, pair in bounds.items() if pair}),
        "maxValues": _nest({path: pair[1] for path, pair in bounds.items() if pair}),
        "nullCount": _nest({path: column.nulls for path, column in stats["columns"].items()}),
    }
    # UTF-8 as Spark writes it: delta-rs decodes the escaped surrogate pair of U+10FFFF (the tie-breaker) wrongly
    return json.dumps(document, ensure_ascii=False)


def _footer_statistics(schema: pa.Schema) -> list[str]:
    """Columns whose Parquet row-group statistics are written: not floats, whose footers leave NaN out, so
    pyarrow reads a row group of 2.0 and NaN as `x == 2` and drops its NaN rows (the Delta statistics bound
    floats instead), nor nested ones (their statistics are per leaf, and no table filters by a leaf)."""
    return [f.name for f in schema if not pa.types.is_nested(f.type) and not pa.types.is_floating(f.type)]


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
                    full, file_schema, filesystem=fs, write_statistics=_footer_statistics(file_schema)
                )
                open_files[key] = _OpenFile(relative, writer, _stats(file_schema.empty_table()))
            chunk = part.select(file_schema.names).cast(file_schema)
            open_files[key].writer.write_table(chunk)
            open_files[key].stats = _merge_stats(open_files[key].stats, _stats(chunk))
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
                "stats": _delta_stats(handle.stats),
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
        "stats": _delta_stats(_stats(file_schema.empty_table())),
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
