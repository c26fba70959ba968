"""Implicit ratings: the model's input, summed over a look-back window of events."""

from collections.abc import Iterator

from dagster import AssetDep, AssetExecutionContext, MaterializeResult, TimeWindowPartitionMapping, asset

from reco_assets.assets.common import partition_date, publish, stage_day, staged_metadata, window_where
from reco_assets.checks import not_empty, not_empty_spec
from reco_assets.constants import MODELLING
from reco_assets.partitions import daily_partitions
from reco_assets.pipeline.ratings import implicit_ratings as sum_ratings
from reco_assets.resources.lakehouse import Lakehouse
from reco_assets.resources.spark import SparkResource
from reco_assets.settings import RecoSettings

RATINGS_WINDOW = RecoSettings.model_fields["ratings_lookback_days"].default


def events_window(days: int) -> AssetDep:
    """Lineage of a look-back window over raw_events (the asset reads the days present in it)."""
    return AssetDep(
        "raw_events",
        partition_mapping=TimeWindowPartitionMapping(
            start_offset=-(days - 1), allow_nonexistent_upstream_partitions=True
        ),
    )


@asset(
    partitions_def=daily_partitions,
    deps=[events_window(RATINGS_WINDOW)],
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
    events = lakehouse.read_spark(
        spark.session(), "raw_events", window_where("event_date", day, settings.ratings_lookback_days)
    )
    staged = stage_day(lakehouse, "implicit_ratings", sum_ratings(events, settings.event_weights()), day)
    yield from publish([staged], [not_empty([staged])])
    yield MaterializeResult(metadata=staged_metadata([staged]))
