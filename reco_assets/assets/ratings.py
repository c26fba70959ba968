"""Implicit ratings: the model's input, summed over a look-back window of events."""

from collections.abc import Iterator

from dagster import AssetExecutionContext, MaterializeResult, asset

from reco_assets.assets.common import partition_date, publish, stage_day, staged_metadata
from reco_assets.checks import not_empty, not_empty_spec
from reco_assets.constants import MODELLING
from reco_assets.partitions import daily_partitions
from reco_assets.pipeline import stages
from reco_assets.resources.lakehouse import Lakehouse
from reco_assets.resources.spark import SparkResource
from reco_assets.settings import RecoSettings


@asset(
    partitions_def=daily_partitions,
    deps=["raw_events"],  # its window: `lineage.py`
    group_name=MODELLING,
    kinds={"spark", "delta"},
    check_specs=[not_empty_spec("implicit_ratings")],
)
def implicit_ratings(
    context: AssetExecutionContext, spark: SparkResource, lakehouse: Lakehouse, settings: RecoSettings
) -> Iterator:
    """Event points per member x subclass-brand over the look-back window ending with the day."""
    day = partition_date(context)
    lakehouse.require("raw_events", {"event_date": day})  # earlier days of the window may predate the log
    rated = stages.ratings(stages.Reader(spark.session(), lakehouse), day, settings)
    staged = stage_day(lakehouse, "implicit_ratings", rated, day)
    yield from publish([staged], [not_empty([staged])])
    yield MaterializeResult(metadata=staged_metadata([staged]))
