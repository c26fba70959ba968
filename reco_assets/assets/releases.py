"""Release refreshes: at each release (11:00, 15:00, 20:00 US Eastern on the day the cards are served) the
catalog and inventory snapshot of that moment lands, and the style listings and cards are rebuilt from it.

The day's affinities are reused: only what is on sale changes. New styles of the release enter the cards,
sold-out and ended ones leave. Each release is its own partition (date x release), so every release's
cards stay distinguishable; the published cards of a day are those of its latest release
(`published_release`), or the day's `member_cards` before the first release.
"""

from datetime import date

from dagster import (
    AssetDep,
    AssetExecutionContext,
    DimensionPartitionMapping,
    Failure,
    IdentityPartitionMapping,
    MaterializeResult,
    MetadataValue,
    MultiPartitionMapping,
    asset,
    multi_asset,
)
from pyspark.sql import functions as F

from reco_assets.assets.cards import build_cards, card_check_specs, card_checks, card_violations
from reco_assets.assets.common import publish, staged_metadata
from reco_assets.assets.ingestion import snapshot_specs, stage_snapshots
from reco_assets.assets.listings import listed_not_saleable, rank_live_styles
from reco_assets.checks import check, not_empty, not_empty_spec, spec
from reco_assets.constants import COHORTS, PUBLISHING
from reco_assets.evaluation.gate import require_gate
from reco_assets.partitions import daily_release_partitions
from reco_assets.pipeline.catalog import release_instant, sale_window
from reco_assets.resources.lakehouse import Lakehouse
from reco_assets.resources.landing import LandingResource
from reco_assets.resources.spark import SparkResource
from reco_assets.serving.published import published_release
from reco_assets.settings import RecoSettings

SAME_DAY = MultiPartitionMapping({"date": DimensionPartitionMapping("date", IdentityPartitionMapping())})


def release_partition(context: AssetExecutionContext) -> tuple[date, str]:
    keys = context.partition_key.keys_by_dimension
    return date.fromisoformat(keys["date"]), keys["release"]


@multi_asset(
    **snapshot_specs(
        "release_catalog",
        PUBLISHING,
        "The catalog and inventory snapshot taken at the release (same columns as `catalog`).",
        "the release's snapshot",
    ),
    partitions_def=daily_release_partitions,
)
def release_catalog(
    context: AssetExecutionContext,
    spark: SparkResource,
    lakehouse: Lakehouse,
    landing: LandingResource,
    settings: RecoSettings,
):
    day, release = release_partition(context)
    path = landing.release_file(day, release)
    if not path.is_file():
        raise Failure(f"release snapshot of {release} for the cards of {day} has not landed: {path}")
    partition = {"as_of_date": day, "release": release}
    snapshot = stage_snapshots(
        spark.session(), lakehouse, [str(path)], "release_catalog", partition, settings.input_limits(), partition
    )
    yield from publish(snapshot.writes, [snapshot.reconciled(), not_empty([snapshot.accepted])])
    yield from snapshot.results(release_at=str(release_instant(day, release)))


@asset(
    partitions_def=daily_release_partitions,
    deps=["release_catalog", "raw_events"],
    group_name=PUBLISHING,
    kinds={"spark", "delta"},
    check_specs=[
        spec("release_listings", "styles_saleable", "every listed style is on sale with stock at the release"),
        not_empty_spec("release_listings"),
    ],
)
def release_listings(
    context: AssetExecutionContext, spark: SparkResource, lakehouse: Lakehouse, settings: RecoSettings
):
    """The style listings again, from the release's snapshot: the styles on sale at the release."""
    day, release = release_partition(context)
    session = spark.session()
    partition = {"as_of_date": day, "release": release}
    snapshot = lakehouse.read_spark(session, "release_catalog", partition=partition).drop("release")
    listings = rank_live_styles(session, lakehouse, settings, day, snapshot, release)
    staged = lakehouse.stage(listings, "release_listings", partition, constants=partition)
    catalog = lakehouse.read_arrow("release_catalog", partition=partition)
    unsaleable = listed_not_saleable(staged, catalog, sale_window(day, release), settings)
    yield from publish(
        [staged],
        [check("styles_saleable", unsaleable, "listed styles not saleable at the release"), not_empty([staged])],
    )
    yield MaterializeResult(metadata=staged_metadata([staged]))


@asset(
    partitions_def=daily_release_partitions,
    deps=[
        "release_listings",
        # every cohort of the release's day (Dagster's default mapping between two date x ... partitionings
        # would match no partition)
        *(AssetDep(name, partition_mapping=SAME_DAY) for name in ("diversified_affinities", "member_cards")),
    ],
    group_name=PUBLISHING,
    kinds={"spark", "delta"},
    check_specs=card_check_specs("release_cards"),
)
def release_cards(context: AssetExecutionContext, spark: SparkResource, lakehouse: Lakehouse, settings: RecoSettings):
    """Every member's cards rebuilt from the release's listings and the day's affinities.

    Only after the day's cards were published (every cohort's `member_cards`, so its gate passed)."""
    day, release = release_partition(context)
    session = spark.session()
    require_gate(lakehouse, day, settings, "release cards", list(COHORTS))
    lakehouse.require("member_cards", {"as_of_date": day, "cohort": list(COHORTS)})
    partition = {"as_of_date": day, "release": release}
    affinities = lakehouse.read_spark(
        session, "diversified_affinities", partition={"as_of_date": day, "cohort": list(COHORTS)}
    )
    listings = lakehouse.read_spark(session, "release_listings", partition=partition).drop("release")
    cards = build_cards(session, lakehouse, affinities, listings, settings).withColumn("release", F.lit(release))
    staged = lakehouse.stage(
        cards, "release_cards", partition | {"cohort": list(COHORTS)}, constants={"as_of_date": day}
    )
    catalog = lakehouse.read_arrow("release_catalog", partition=partition)
    yield from publish(
        [staged], card_checks([staged], *card_violations(staged, catalog, sale_window(day, release), settings))
    )
    yield MaterializeResult(
        metadata=staged_metadata(
            [staged],
            release_at=MetadataValue.text(str(release_instant(day, release))),
            published_release=MetadataValue.text(published_release(lakehouse, day) or ""),
        )
    )
