from datetime import date

import pyarrow as pa

from reco_assets.resources.lakehouse import Lakehouse, range_predicate


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
