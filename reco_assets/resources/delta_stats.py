"""Delta file statistics as Spark's Delta writer collects them, with bounds no reader can lose a row by.

A file's statistics (`file_stats`, merged batch by batch in a task with `merge_stats`) become the JSON of its
add action once (`delta_json`): the row count, nulls per column and the bounds of every primitive column, so
that delta-rs' datasets, DuckDB, Polars and Spark skip files by a filter on any column and keep every row
that matches it.
"""

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

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


def file_stats(data: pa.Table) -> dict:
    """Statistics of rows, raw: their count and a `_Column` per (dotted) column; `delta_json` writes them."""
    columns = {}
    for name in data.column_names:
        for path, values in _leaves(name, data.column(name)):
            columns[path] = _measure(values)
    return {"rows": data.num_rows, "columns": columns}


def _pick(choose, a, b):
    """`choose` of two values either of which may be missing (None)."""
    return a if b is None else b if a is None else choose(a, b)


def merge_stats(a: dict, b: dict) -> dict:
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


def delta_json(stats: dict) -> str:
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


def footer_statistics(schema: pa.Schema) -> list[str]:
    """Columns whose Parquet row-group statistics are written: not floats, whose footers leave NaN out, so
    pyarrow reads a row group of 2.0 and NaN as `x == 2` and drops its NaN rows (the Delta statistics bound
    floats instead), nor nested ones (their statistics are per leaf, and no table filters by a leaf)."""
    return [f.name for f in schema if not pa.types.is_nested(f.type) and not pa.types.is_floating(f.type)]
