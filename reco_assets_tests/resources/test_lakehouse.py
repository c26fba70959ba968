from datetime import date, datetime, timezone

import pyarrow as pa
import pytest

from reco_assets.resources.lakehouse import Lakehouse, MissingPartition, range_predicate


def _part(day: date, cohort: str, values: list[int]) -> pa.Table:
    return pa.table(
        {"as_of_date": pa.array([day] * len(values), pa.date32()), "cohort": [cohort] * len(values), "x": values}
    )


def test_a_partition_write_replaces_exactly_that_partition(tmp_path):
    lake = Lakehouse(root=str(tmp_path))
    d1, d2 = date(2026, 10, 30), date(2026, 10, 31)
    for day, cohort, values in [(d1, "men_1", [1, 2]), (d2, "men_1", [3]), (d2, "kids_2", [4, 5])]:
        lake.write_partition("t", _part(day, cohort, values), {"as_of_date": day, "cohort": cohort})
    lake.write_partition("t", _part(d2, "men_1", [6, 7]), {"as_of_date": d2, "cohort": "men_1"})
    lake.write_partition("t", _part(d2, "men_1", [6, 7]), {"as_of_date": d2, "cohort": "men_1"})  # again
    assert sorted(lake.read_arrow("t").column("x").to_pylist()) == [1, 2, 4, 5, 6, 7]
    history = lake.table("t").history()
    assert len(history) == 5  # one commit per write: a crash leaves the previous version whole


def test_a_range_write_replaces_the_days_of_the_range(tmp_path):
    lake = Lakehouse(root=str(tmp_path))
    days = [date(2026, 10, d) for d in (29, 30, 31)]
    table = pa.table({"event_date": pa.array(days, pa.date32()), "x": [1, 2, 3]})
    lake.replace("e", table, range_predicate("event_date", days[0], days[-1]), ["event_date"])
    again = pa.table({"event_date": pa.array(days[1:], pa.date32()), "x": [20, 30]})
    lake.replace("e", again, range_predicate("event_date", days[1], days[2]), ["event_date"])
    assert sorted(lake.read_arrow("e").column("x").to_pylist()) == [1, 20, 30]


def test_spark_reads_a_partition_or_an_empty_frame_with_the_schema(spark, tmp_path):
    lake = Lakehouse(root=str(tmp_path))
    day = date(2026, 10, 31)
    lake.write_partition("t", _part(day, "men_1", [1, 2]), {"as_of_date": day, "cohort": "men_1"})
    frame = lake.read_spark(spark, "t", "as_of_date = '2026-10-31' AND cohort = 'men_1'")
    assert sorted((r["as_of_date"], r["cohort"], r["x"]) for r in frame.collect()) == [
        (day, "men_1", 1),
        (day, "men_1", 2),
    ]
    empty = lake.read_spark(spark, "t", "cohort = 'home_5'")
    assert empty.count() == 0 and empty.columns == frame.columns


def _cohort_rows(spark, day: date, rows: list[tuple[str, int]]):
    return spark.createDataFrame(
        [(day, cohort, x) for cohort, x in rows], "as_of_date date, cohort string, x long"
    ).repartition(3)


def test_executor_writes_replace_exactly_the_targeted_partitions_in_one_commit(spark, tmp_path):
    lake = Lakehouse(root=str(tmp_path))
    d1, d2 = date(2026, 10, 30), date(2026, 10, 31)
    first = [("men_1", 1), ("men_1", 2), ("kids_2", 3), ("home_3", 4)]
    lake.stage(
        _cohort_rows(spark, d1, first), "t", {"as_of_date": d1, "cohort": ["men_1", "kids_2", "home_3"]}
    ).commit()
    lake.stage(
        _cohort_rows(spark, d2, first), "t", {"as_of_date": d2, "cohort": ["men_1", "kids_2", "home_3"]}
    ).commit()
    version = lake.table("t").version()

    # d2: men_1 gets new rows, kids_2 is targeted without rows (emptied), home_3 is not targeted (kept)
    staged = lake.stage(
        _cohort_rows(spark, d2, [("men_1", 10), ("men_1", 11)]), "t", {"as_of_date": d2, "cohort": ["men_1", "kids_2"]}
    )
    assert staged.rows == 2 and staged.rows_by("cohort") == {"kids_2": 0, "men_1": 2}  # kids_2: written empty
    assert sorted(lake.read_arrow("t", "as_of_date = '2026-10-31'").column("x").to_pylist()) == [
        1,
        2,
        3,
        4,
    ]  # not visible yet
    staged.commit()

    assert lake.table("t").version() == version + 1  # one transaction
    stored = lake.read_arrow("t", columns=["as_of_date", "cohort", "x"]).to_pylist()
    got = sorted((r["as_of_date"], r["cohort"], r["x"]) for r in stored)
    assert got == sorted([(d1, c, x) for c, x in first] + [(d2, "men_1", 10), (d2, "men_1", 11), (d2, "home_3", 4)])


def test_reading_a_partition_never_written_fails_with_its_name(spark, tmp_path):
    """A partition written without rows exists (it reads as empty); one never written fails the read, named."""
    lake = Lakehouse(root=str(tmp_path))
    day = date(2026, 10, 31)
    lake.stage(
        _cohort_rows(spark, day, [("men_1", 1)]), "t", {"as_of_date": day, "cohort": ["men_1", "kids_2"]}
    ).commit()
    assert lake.read_spark(spark, "t", partition={"as_of_date": day, "cohort": ["kids_2"]}).count() == 0
    assert lake.read_arrow("t", partition={"as_of_date": day}).column("x").to_pylist() == [1]
    with pytest.raises(MissingPartition, match=r"'t' has no partition as_of_date=2026-10-31 cohort=home_3 "):
        lake.read_spark(spark, "t", partition={"as_of_date": day, "cohort": ["men_1", "home_3"]})
    with pytest.raises(MissingPartition, match=r"'t' has no partition as_of_date=2026-11-01"):
        lake.read_arrow("t", partition={"as_of_date": date(2026, 11, 1)})
    with pytest.raises(MissingPartition, match=r"'other' has no partition as_of_date=2026-10-31"):
        lake.require("other", {"as_of_date": day})


def test_rows_outside_the_targeted_partitions_are_refused_and_nothing_is_published(spark, tmp_path):
    lake = Lakehouse(root=str(tmp_path))
    day = date(2026, 10, 31)
    lake.stage(_cohort_rows(spark, day, [("men_1", 1)]), "t", {"as_of_date": day, "cohort": "men_1"}).commit()
    before = lake.table("t").version()
    files_before = sorted(p for p in tmp_path.rglob("*.parquet"))
    try:
        lake.stage(_cohort_rows(spark, day, [("men_1", 2), ("kids_2", 3)]), "t", {"as_of_date": day, "cohort": "men_1"})
        raise AssertionError("a write with rows of another partition was accepted")
    except ValueError as error:
        assert "outside the targeted partitions" in str(error)
    assert lake.table("t").version() == before
    assert sorted(p for p in tmp_path.rglob("*.parquet")) == files_before  # the staged files are gone
    assert lake.read_arrow("t").column("x").to_pylist() == [1]


def test_a_write_whose_task_fails_leaves_the_previous_version(spark, tmp_path):
    from pyspark.sql import functions as F

    lake = Lakehouse(root=str(tmp_path))
    day = date(2026, 10, 31)
    lake.stage(
        _cohort_rows(spark, day, [("men_1", 1), ("men_1", 2)]), "t", {"as_of_date": day, "cohort": "men_1"}
    ).commit()
    before = lake.table("t").version()
    # a task fails after others may have written their files: the driver never commits
    breaking = _cohort_rows(spark, day, [("men_1", x) for x in range(100)]).withColumn(
        "x", F.when(F.col("x") == 77, F.raise_error(F.lit("task dies mid-write"))).otherwise(F.col("x"))
    )
    try:
        lake.stage(breaking, "t", {"as_of_date": day, "cohort": "men_1"})
        raise AssertionError("the failing write returned")
    except Exception as error:  # Spark's job failure
        assert "task dies mid-write" in str(error)
    assert lake.table("t").version() == before
    assert sorted(lake.read_arrow("t").column("x").to_pylist()) == [1, 2]
    lake.table("t").vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
    assert sorted(lake.read_arrow("t").column("x").to_pylist()) == [1, 2]


def test_filters_on_any_column_of_an_executor_written_table_find_their_rows(spark, tmp_path):
    # the project's own reads list the files themselves: filters on any column match, statistics or not
    lake = Lakehouse(root=str(tmp_path))
    day = date(2026, 10, 31)
    frame = spark.createDataFrame(
        [(day, "men_1", 1, "purchase", 2.5), (day, "men_1", 2, "view", 0.5), (day, "kids_2", 3, "purchase", 9.0)],
        "as_of_date date, cohort string, x long, kind string, price double",
    )
    lake.stage(frame, "t", {"as_of_date": day, "cohort": ["men_1", "kids_2"]}).commit()
    assert sorted(lake.read_arrow("t", "kind = 'purchase'").column("x").to_pylist()) == [1, 3]
    assert lake.read_arrow("t", "price > 1 AND cohort = 'men_1'").column("x").to_pylist() == [1]
    assert sorted(r["x"] for r in lake.read_spark(spark, "t", "kind IN ('view', 'purchase')").collect()) == [1, 2, 3]


def test_the_python_reader_reads_what_spark_parquet_reads(spark, tmp_path):
    # the jar-free reader (pyarrow in the workers) against Spark's own Parquet reader, same snapshot
    day = date(2026, 10, 31)
    frame = spark.createDataFrame(
        [(day, "men 1", 1, "a", [0.5, 1.5]), (day, "kids_2", 3, None, [2.0, 3.0]), (day, "kids_2", 4, "b", None)],
        "as_of_date date, cohort string, x long, kind string, factors array<float>",
    )
    Lakehouse(root=str(tmp_path)).stage(frame, "t", {"as_of_date": day, "cohort": ["men 1", "kids_2"]}).commit()
    native = Lakehouse(root=str(tmp_path), spark_reader="native")
    python = Lakehouse(root=str(tmp_path), spark_reader="python")
    for where in (None, "cohort = 'men 1'", "kind IS NULL", "x > 100"):
        a, b = native.read_spark(spark, "t", where), python.read_spark(spark, "t", where)
        assert a.schema == b.schema
        assert sorted(map(tuple, a.collect())) == sorted(map(tuple, b.collect()))
    got = sorted((r["cohort"], r["x"], r["kind"], r["factors"]) for r in python.read_spark(spark, "t").collect())
    assert got == [("kids_2", 3, None, [2.0, 3.0]), ("kids_2", 4, "b", None), ("men 1", 1, "a", [0.5, 1.5])]


def test_rows_of_a_partition_come_from_the_log(tmp_path):
    lake = Lakehouse(root=str(tmp_path))
    d1, d2 = date(2026, 10, 30), date(2026, 10, 31)
    for day, cohort, values in [(d1, "men_1", [1, 2]), (d2, "men_1", [3]), (d2, "kids_2", [4, 5, 6])]:
        lake.write_partition("t", _part(day, cohort, values), {"as_of_date": day, "cohort": cohort})
    assert lake.rows("t", {"as_of_date": d2}) == 4
    assert lake.rows("t", {"as_of_date": d2, "cohort": "kids_2"}) == 3
    assert lake.rows("t", {"as_of_date": date(2026, 10, 1)}) == 0


def test_a_partition_read_back_and_written_again_keeps_its_instants(tmp_path):
    """Rows read through DuckDB carry times zoned `Etc/UTC`; written again, they are the same instants."""
    lake = Lakehouse(root=str(tmp_path))
    day = date(2026, 10, 31)
    at = datetime(2026, 10, 31, 12, 30, tzinfo=timezone.utc)
    first = pa.table({"at": pa.array([at], pa.timestamp("us", "UTC")), "event_date": [day]})
    lake.write_partition("e", first, {"event_date": day})
    read = lake.read_arrow("e", partition={"event_date": day})
    assert lake.write_partition("e", read, {"event_date": day}) == 1
    assert lake.read_arrow("e", partition={"event_date": day}).column("at").to_pylist() == [at]
