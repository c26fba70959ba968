"""Loading a version into a store from the Spark tasks: each task writes its rows, the driver gets counts."""

from functools import partial

import pyarrow as pa
from pyspark.sql import DataFrame

from reco_assets.serving.store import ServingStore

WRITTEN = pa.schema([("written", pa.int64())])


def _load_task(batches, store: ServingStore, version: str):
    for batch in batches:
        pairs = zip(batch.column("key").to_pylist(), batch.column("value").to_pylist())
        yield pa.RecordBatch.from_pydict({"written": [store.write(version, pairs)]}, schema=WRITTEN)


def load(rows: DataFrame, store: ServingStore, version: str) -> int:
    """Write `rows` (`key`, `value`: binary) into `version` of `store` from the tasks; returns the pairs
    written. Only one count per Arrow batch reaches the driver."""
    counts = rows.mapInArrow(partial(_load_task, store=store, version=version), "written long").toArrow()
    return sum(counts.column("written").to_pylist())
