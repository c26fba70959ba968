"""Style listings: the live styles of each subclass-brand, ranked by the hybrid style score."""

import pyarrow as pa
from dagster import AssetExecutionContext, MaterializeResult, asset
from pyspark.sql import DataFrame

from reco_assets import invariants
from reco_assets.assets.common import partition_date, publish, stage_day, staged_metadata
from reco_assets.checks import check, not_empty, not_empty_spec, spec
from reco_assets.constants import PUBLISHING
from reco_assets.partitions import daily_partitions
from reco_assets.pipeline import stages
from reco_assets.pipeline.catalog import sale_window
from reco_assets.resources.lakehouse import Lakehouse, Staged
from reco_assets.resources.spark import SparkResource
from reco_assets.settings import RecoSettings


@asset(
    partitions_def=daily_partitions,
    deps=["catalog", "raw_events"],  # the window of raw_events: `lineage.py`
    group_name=PUBLISHING,
    kinds={"spark", "delta"},
    check_specs=[
        spec(
            "style_listings", "styles_saleable", "no listed style is sold out, nearly sold out or off sale on the day"
        ),
        not_empty_spec("style_listings"),
    ],
)
def style_listings(context: AssetExecutionContext, spark: SparkResource, lakehouse: Lakehouse, settings: RecoSettings):
    """The best live styles of each subclass-brand, in hybrid-score order."""
    day = partition_date(context)
    session = spark.session()
    catalog = lakehouse.read_spark(session, "catalog", partition={"as_of_date": day})
    staged = stage_day(lakehouse, "style_listings", rank_live_styles(session, lakehouse, settings, day, catalog), day)
    unsaleable = listed_not_saleable(
        staged, lakehouse.read_arrow("catalog", partition={"as_of_date": day}), sale_window(day), settings
    )
    yield from publish(
        [staged], [check("styles_saleable", unsaleable, "listed styles not saleable on the day"), not_empty([staged])]
    )
    yield MaterializeResult(metadata=staged_metadata([staged]))


def listed_not_saleable(staged: Staged, catalog: pa.Table, window, settings: RecoSettings) -> int:
    """Listed styles of a staged write not on sale in the sale `window` or short of stock per `catalog`."""
    styles = staged.dataset().to_table(columns=["style_id"])
    return invariants.styles_not_saleable(styles, catalog, *window, settings.listings.min_qty_on_hand)


def rank_live_styles(
    session, lakehouse: Lakehouse, settings: RecoSettings, day, catalog, release: str | None = None
) -> DataFrame:
    """The listings stage of a catalog snapshot of `day` (or of a release's), once the day's events are in."""
    lakehouse.require("raw_events", {"event_date": day})
    return stages.listings(stages.Reader(session, lakehouse), day, catalog, settings, release)
