from datetime import date, datetime, timezone

import pytest

from reco_assets.resources.spark import SparkResource

DAY = date(2026, 10, 31)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """One local Spark session for the whole test run (the same resource the assets use)."""
    return SparkResource(
        checkpoint_dir=str(tmp_path_factory.mktemp("checkpoints")), spark_config={"spark.sql.shuffle.partitions": "2"}
    ).session()


def rows(frame, *columns, order=None):
    """A Spark DataFrame's rows as tuples of `columns`, sorted."""
    return (
        sorted(tuple(r[c] for c in columns) for r in frame.select(*columns).collect())
        if order is None
        else [tuple(r[c] for c in columns) for r in frame.orderBy(*order).select(*columns).collect()]
    )
