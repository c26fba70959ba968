"""Outside readers filter our Delta tables through the file statistics of the log: `DeltaTable(...)
.to_pyarrow_dataset()` turns them into guarantees that prune files, with pyarrow filters and DuckDB alike.
Every filtered read is compared with the unfiltered read filtered in Python."""

import glob
import json
import math
import operator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest
from deltalake import DeltaTable

from reco_assets.constants import TABLES
from reco_assets.resources.lakehouse import Lakehouse, range_predicate

DAY = date(2026, 10, 31)
PREFIX = "ü" * 32
"""A prefix as long as the part of a string the statistics keep (not ASCII: they count characters)."""
TOP = "\U0010ffff"

SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("i", pa.int32()),
        ("f", pa.float64()),
        ("g", pa.float64()),
        ("s", pa.string()),
        ("d", pa.date32()),
        ("t", pa.timestamp("us", tz="UTC")),
        ("b", pa.bool_()),
        ("l", pa.list_(pa.float64())),
        ("as_of_date", pa.date32()),
        ("cohort", pa.string()),
    ]
)
SPARK_SCHEMA = (
    "id long, i int, f double, g double, s string, d date, t timestamp, b boolean, l array<double>, "
    "as_of_date date, cohort string"
)
NAN, INF = float("nan"), float("inf")


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


ROWS = [
    # cohort a: the edges of every type; f holds NaN, so no bound of it may exclude a row
    (1, -5, -1.5, -2.5, PREFIX + "a" * 8, date(2026, 10, 1), utc(1969, 12, 31, 23, 59, 59, 999500), True, [1.0], "a"),
    (2, 0, NAN, 0.0, PREFIX + "\U0001f600tail", date(2026, 10, 15), utc(2026, 10, 31, 12, 0, 0, 999), False, None, "a"),
    (3, 7, None, 3.25, "", None, None, None, [], "a"),
    (4, 2**31 - 1, 1e300, None, "é", date(2026, 10, 31), utc(2026, 10, 31, 23, 59, 59, 999999), True, [NAN], "a"),
    (5, None, 0.5, 7.0, PREFIX + TOP + "z", date(2026, 10, 2), utc(2026, 10, 1), False, [2.0, 3.0], "a"),
    (6, 1, 2.5, 1.5, PREFIX, date(2026, 10, 3), utc(2026, 10, 2), True, [4.0], "a"),
    # cohort b: f's values other than NaN are all equal (a reader must not read its bounds as f == 2);
    # g reaches both infinities
    (7, 3, 2.0, 1.0, PREFIX + "b", date(2026, 10, 20), utc(2026, 10, 20), True, [5.0], "b"),
    (8, 4, NAN, INF, PREFIX + "b", date(2026, 10, 20), utc(2026, 10, 20), True, None, "b"),
    (9, 5, 2.0, -INF, PREFIX + "c", date(2026, 10, 21), utc(2026, 10, 21), False, [6.0], "b"),
]
FILTERED = ("i", "f", "g", "s", "d", "t", "b")
"""Columns filtered on: one of each primitive type (and a second float, without NaN)."""
OPS = {"=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _table(rows, day: date = DAY) -> pa.Table:
    return pa.Table.from_pylist([dict(zip(SCHEMA.names, (*row[:-1], day, row[-1]))) for row in rows], schema=SCHEMA)


def _write_staged(spark, lake: Lakehouse, table: str) -> None:
    """The rows through Spark's tasks (two rows per Arrow batch, so a file's statistics merge several batches)
    into cohorts a, b and c (c without rows: an empty file), committed in one transaction."""
    frame = spark.createDataFrame([(*row[:-1], DAY, row[-1]) for row in ROWS], SPARK_SCHEMA).repartition("cohort")
    batch = "spark.sql.execution.arrow.maxRecordsPerBatch"
    before = spark.conf.get(batch)
    spark.conf.set(batch, "2")
    try:
        lake.stage(frame, table, {"as_of_date": DAY, "cohort": ["a", "b", "c"]}).commit()
    finally:
        spark.conf.set(batch, before)


def _duck_key(value):
    """DuckDB's order of doubles: NaN above every number (and equal to itself)."""
    return (1, 0.0) if isinstance(value, float) and math.isnan(value) else (0, value)


def _cases(rows: list[dict], columns) -> list[tuple[str, str, object]]:
    """(column, operator, value) for every operator and every value a filtered column holds."""
    cases = []
    for column in columns:
        values = {r[column] for r in rows if r[column] is not None}
        for value in sorted(values, key=_duck_key):
            for op in OPS:
                if not (op in ("<", "<=", ">", ">=") and isinstance(value, bool)):
                    cases.append((column, op, value))
    return cases


def _pyarrow_misses(dataset: ds.Dataset, rows: list[dict], cases) -> list:
    """The cases whose filtered read differs from the rows filtered in Python (NaN compares false)."""
    wrong = []
    for column, op, value in cases:
        if _duck_key(value)[0]:  # pyarrow orders a NaN literal above any bound a file has: `is_nan` below
            continue
        got = _ids(dataset, OPS[op](ds.field(column), pa.scalar(value, dataset.schema.field(column).type)))
        want = sorted(r["id"] for r in rows if r[column] is not None and OPS[op](r[column], value))
        if got != want:
            wrong.append((column, op, value, got, want))
    for column in ("f", "g"):
        want = sorted(r["id"] for r in rows if r[column] is not None and math.isnan(r[column]))
        if _ids(dataset, pc.is_nan(ds.field(column))) != want:
            wrong.append((column, "is_nan"))
    for column in FILTERED + ("l",):
        if _ids(dataset, ds.field(column).is_null()) != sorted(r["id"] for r in rows if r[column] is None):
            wrong.append((column, "is_null"))
    return wrong


def _ids(dataset: ds.Dataset, expression: ds.Expression) -> list[int]:
    return sorted(dataset.to_table(filter=expression, columns=["id"]).column("id").to_pylist())


def _duckdb_misses(dataset: ds.Dataset, rows: list[dict], cases) -> list:
    """The cases whose DuckDB query over the dataset differs from the rows filtered in Python (DuckDB's order)."""
    wrong = []
    with duckdb.connect() as con:
        con.register("dataset", dataset)
        for column, op, value in cases:
            found = con.execute(f'SELECT id FROM dataset WHERE "{column}" {op} $1', [value]).fetchall()
            got = sorted(i for (i,) in found)
            want = sorted(
                r["id"] for r in rows if r[column] is not None and OPS[op](_duck_key(r[column]), _duck_key(value))
            )
            if got != want:
                wrong.append((column, op, value, got, want))
    return wrong


def _assert_every_filter_finds_its_rows(uri: str, expected: pa.Table) -> None:
    dataset = DeltaTable(uri).to_pyarrow_dataset()
    full = dataset.to_table()
    assert sorted(full.column("id").to_pylist()) == sorted(expected.column("id").to_pylist())
    rows = full.to_pylist()
    cases = _cases(rows, FILTERED)
    assert _pyarrow_misses(dataset, rows, cases) == []
    assert _duckdb_misses(dataset, rows, cases) == []


def _logged_stats(uri: str) -> dict[str, dict]:
    """The statistics of every add action of the log, by the file's cohort."""
    stats = {}
    for commit in sorted(glob.glob(f"{uri}/_delta_log/*.json")):
        for line in Path(commit).read_text().splitlines():
            add = json.loads(line).get("add")
            if add:
                stats[add["partitionValues"]["cohort"]] = json.loads(add["stats"])
    return stats


def test_every_filter_of_an_outside_reader_finds_its_rows_in_executor_written_files(spark, tmp_path):
    lake = Lakehouse(root=str(tmp_path))
    _write_staged(spark, lake, "t")
    _assert_every_filter_finds_its_rows(lake.uri("t"), _table(ROWS))


def test_executor_written_files_carry_statistics_of_every_column_with_bounds_no_row_exceeds(spark, tmp_path):
    lake = Lakehouse(root=str(tmp_path))
    _write_staged(spark, lake, "t")
    stats = _logged_stats(lake.uri("t"))
    assert stats["a"] == {
        "numRecords": 6,
        "nullCount": {"id": 0, "i": 1, "f": 1, "g": 1, "s": 0, "d": 1, "t": 1, "b": 1, "l": 1},
        # f holds NaN: only the widest bounds keep its NaN row from every reader's pruning
        "minValues": {
            "id": 1,
            "i": -5,
            "f": "-Infinity",
            "g": -2.5,
            "s": "",
            "d": "2026-10-01",
            "t": "1969-12-31T23:59:59.999Z",
            "b": False,
        },
        # the longest string cut to 32 characters then the largest code point (after the prefix's own one);
        # the latest instant rounded up to the millisecond
        "maxValues": {
            "id": 6,
            "i": 2**31 - 1,
            "f": "Infinity",
            "g": 7.0,
            "s": PREFIX + TOP + TOP,
            "d": "2026-10-31",
            "t": "2026-11-01T00:00:00.000Z",
            "b": True,
        },
    }
    assert stats["b"]["minValues"]["f"] == stats["b"]["minValues"]["g"] == "-Infinity"
    assert stats["b"]["maxValues"]["f"] == stats["b"]["maxValues"]["g"] == "Infinity"
    assert (stats["b"]["minValues"]["s"], stats["b"]["maxValues"]["s"]) == (PREFIX, PREFIX + TOP)
    assert stats["c"] == {
        "numRecords": 0,
        "nullCount": dict.fromkeys(["id", "i", "f", "g", "s", "d", "t", "b", "l"], 0),
        "minValues": {},
        "maxValues": {},
    }


def test_partition_writes_and_replaced_ranges_are_filtered_alike(tmp_path):
    # rows written from the driver (write_partition: our writer, NaN included) and by delta-rs (replace) next
    # to an empty partition. delta-rs bounds a float by its values other than NaN, and pyarrow then takes
    # `f >= min` as true of every row, NaN included: the rows written through it hold no NaN
    lake = Lakehouse(root=str(tmp_path))
    first = [row for row in ROWS if row[-1] == "a"]
    assert any(isinstance(v, float) and math.isnan(v) for row in first for v in row)
    lake.write_partition("t", _table(first), {"as_of_date": DAY, "cohort": "a"})
    assert lake.write_partition("t", _table([]), {"as_of_date": DAY, "cohort": "c"}) == 0
    later = DAY + timedelta(days=1)
    replaced = [_without_nan((row[0] + 100, *row[1:])) for row in first]
    lake.replace("t", _table(replaced, later), range_predicate("as_of_date", later, later), ["as_of_date", "cohort"])
    _assert_every_filter_finds_its_rows(lake.uri("t"), pa.concat_tables([_table(first), _table(replaced, later)]))
    empty = _logged_stats(lake.uri("t"))["c"]
    assert empty["numRecords"] == 0
    assert empty["nullCount"] == dict.fromkeys(["id", "i", "f", "g", "s", "d", "t", "b", "l"], 0)


def _without_nan(row: tuple) -> tuple:
    return tuple(9.5 if isinstance(v, float) and math.isnan(v) else v for v in row)


KINDS = {
    "integer": pa.types.is_integer,
    "float": pa.types.is_floating,
    "string": lambda kind: pa.types.is_string(kind) or pa.types.is_large_string(kind),
    "date": pa.types.is_date,
    "timestamp": pa.types.is_timestamp,
    "boolean": pa.types.is_boolean,
    "decimal": pa.types.is_decimal,
}


DAY_TABLES = [name for name in TABLES if not name.startswith("release_")]
"""The contract tables a day's run writes (the release tables come with a release's snapshot)."""


def _filters_of_each_kind(full: pa.Table) -> list[tuple[str, str, object]]:
    """For the first column of each primitive kind: its smallest, a middle and its largest value (NaN aside),
    equal to each and the ranges up to and from the edges."""
    cases = []
    for test in KINDS.values():
        column = next((f.name for f in full.schema if test(f.type)), None)
        if column is None:
            continue
        values = sorted({v for v in full.column(column).to_pylist() if v is not None and v == v})
        if not values:
            continue
        low, middle, high = values[0], values[len(values) // 2], values[-1]
        cases += [(column, "=", v) for v in (low, middle, high)]
        if not isinstance(low, bool):
            cases += [(column, "<=", low), (column, ">=", high), (column, ">", low), (column, "<", high)]
    return cases


@pytest.mark.slow
def test_every_contract_table_of_a_run_is_filtered_by_outside_readers_without_losing_rows(home):
    root = home / "lakehouse"
    tables = sorted(p.parent.name for p in root.glob("*/_delta_log"))
    assert set(DAY_TABLES) <= set(tables)
    wrong = []
    for name in tables:
        dataset = DeltaTable(str(root / name)).to_pyarrow_dataset()
        full = dataset.to_table()
        with duckdb.connect() as con:
            con.register("dataset", dataset)
            for column, op, value in _filters_of_each_kind(full):
                values = [v for v in full.column(column).to_pylist() if v is not None]
                want = sum(1 for v in values if OPS[op](v, value))
                want_duck = sum(1 for v in values if OPS[op](_duck_key(v), _duck_key(value)))
                scalar = pa.scalar(value, full.schema.field(column).type)
                got = dataset.count_rows(filter=OPS[op](ds.field(column), scalar))
                (counted,) = con.execute(f'SELECT count(*) FROM dataset WHERE "{column}" {op} $1', [value]).fetchone()
                if (got, counted) != (want, want_duck):
                    wrong.append((name, column, op, value, got, want, counted, want_duck))
    assert wrong == []
