"""The temporal split: training reads end on the training day; the test window holds only what came after."""

from datetime import date, datetime, timedelta, timezone

import pyarrow as pa

from reco_assets.evaluation.backtest import holdout_interactions, holdout_split
from reco_assets.pipeline.stages import Reader
from reco_assets.resources.lakehouse import Lakehouse, range_predicate

DAY = date(2026, 10, 31)
SPLIT = holdout_split(DAY, 3)  # train through Oct 28, test Oct 29 .. Oct 31


def at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=timezone.utc)


def landed(tmp_path) -> Lakehouse:
    lake = Lakehouse(root=str(tmp_path))
    rows = []
    for offset in range(-4, 1):  # Oct 27 .. Oct 31, one purchase, one cart and one view of member 1 a day
        day = DAY + timedelta(days=offset)
        for kind, style in [("purchase", 100 + offset), ("add_to_cart", 200 + offset), ("product_view", 300)]:
            rows.append((f"{day}-{kind}", at(day, 12), day, 1, kind, style, style // 10))
    columns = ["event_id", "event_time", "event_date", "member_id", "event_type", "style_id", "subclass_brand_id"]
    events = pa.Table.from_pylist([dict(zip(columns, row, strict=True)) for row in rows])
    events = events.set_column(2, "event_date", events.column("event_date").cast(pa.date32()))
    lake.replace("raw_events", events, range_predicate("event_date", DAY - timedelta(days=4), DAY), ["event_date"])
    # style 99 was first live on Oct 30 (after training); 100 (bought on Oct 31) was live since Oct 1
    catalog = pa.table(
        {
            "as_of_date": pa.array([SPLIT.train_end, SPLIT.train_end], pa.date32()),
            "style_id": [99, 100],
            "first_live_at": pa.array(
                [at(date(2026, 10, 30), 11), at(date(2026, 10, 1), 11)], pa.timestamp("us", "UTC")
            ),
        }
    )
    lake.write_partition("catalog", catalog, {"as_of_date": SPLIT.train_end})
    return lake


def test_the_split_days():
    assert (SPLIT.train_end, SPLIT.test_start, SPLIT.test_end) == (date(2026, 10, 28), date(2026, 10, 29), DAY)


def test_training_reads_stop_at_the_training_day(spark, tmp_path):
    lake = landed(tmp_path)
    training = Reader(spark, lake).events(SPLIT.train_end, 60).toPandas()  # the window a training stage reads
    assert training["event_date"].max() == SPLIT.train_end
    assert sorted(training["event_date"].unique()) == [date(2026, 10, 27), date(2026, 10, 28)]


def test_the_test_window_holds_the_relevant_kinds_after_the_training_day(tmp_path):
    test = holdout_interactions(landed(tmp_path), SPLIT, ["purchase", "add_to_cart"]).sort_values("style_id")
    # purchases 98..100 and carts 198..200 of Oct 29..31; no view; nothing of Oct 27-28
    assert test["style_id"].tolist() == [98, 99, 100, 198, 199, 200]
    # only style 100 was known before the test window; the others are in no snapshot or first live later
    assert dict(zip(test["style_id"], test["new"], strict=True)) == {
        98: True,
        99: True,
        100: False,
        198: True,
        199: True,
        200: True,
    }
