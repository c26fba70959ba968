"""The stages' reader: windows of events as the stages read them, kept once for a backtest's training day."""

from datetime import date, timedelta

import pyarrow as pa
import pytest

from reco_assets.pipeline.stages import Reader
from reco_assets.resources.lakehouse import Lakehouse, MissingPartition, range_predicate
from reco_assets.resources.steps import seal

DAY = date(2026, 10, 31)


def _lake(tmp_path) -> Lakehouse:
    """One event a day from Oct 22 to Oct 31, member n on the n-th day before the 31st."""
    lake = Lakehouse(root=str(tmp_path))
    days = [DAY - timedelta(days=n) for n in range(10)]
    events = pa.table(
        {
            "event_id": [f"e{n}" for n in range(10)],
            "event_date": pa.array(days, pa.date32()),
            "member_id": list(range(10)),
            "event_type": ["purchase"] * 10,
        }
    )
    lake.replace("raw_events", events, range_predicate("event_date", days[-1], DAY), ["event_date"])
    return lake


def _members(frame) -> list[int]:
    return sorted(r["member_id"] for r in frame.select("member_id").collect())


def test_a_window_holds_the_days_ending_with_its_day(spark, tmp_path):
    reader = Reader(spark, _lake(tmp_path))
    assert _members(reader.events(DAY, 3)) == [0, 1, 2]
    assert _members(reader.events(DAY - timedelta(days=5), 2)) == [5, 6]
    assert not reader.kept


def test_a_kept_window_serves_every_window_within_it(spark, tmp_path):
    reader = Reader(spark, _lake(tmp_path), keep=True)
    assert _members(reader.events(DAY, 6)) == [0, 1, 2, 3, 4, 5]
    assert _members(reader.events(DAY, 2)) == [0, 1]  # cut from the kept six days
    assert _members(reader.events(DAY - timedelta(days=1), 2)) == [1, 2]  # an earlier end within them too
    assert list(reader.kept) == [(DAY, 6)]
    assert _members(reader.events(DAY, 8)) == list(range(8))  # longer: read, and kept too
    assert _members(reader.events(DAY - timedelta(days=8), 3)) == [8, 9]  # reaches before both: its own read
    assert len(reader.kept) == 3
    reader.release()
    assert not reader.kept


def test_a_missing_partition_fails_with_its_name_unless_the_reader_is_lenient(spark, tmp_path):
    lake = _lake(tmp_path)
    lake.write_partition(
        "catalog", pa.table({"as_of_date": pa.array([DAY], pa.date32()), "style_id": [1]}), {"as_of_date": DAY}
    )
    seal(lake, [("catalog", {"as_of_date": DAY})])  # published by its step
    with pytest.raises(MissingPartition, match="as_of_date=2026-10-30"):
        Reader(spark, lake).day("catalog", DAY - timedelta(days=1))
    assert Reader(spark, lake, strict=False).day("catalog", DAY - timedelta(days=1)).count() == 0
    assert Reader(spark, lake).day("catalog", DAY).count() == 1
