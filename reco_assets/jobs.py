"""The jobs: which assets run together, over which partitions.

What starts them is in `sensors.py` (by data: when their inputs are there and checked) and `schedules.py`
(by the clock: the freshness check before the release, the weekly vacuum).
"""

from dagster import (
    AssetCheckKey,
    AssetKey,
    AssetSelection,
    OpExecutionContext,
    define_asset_job,
    job,
    op,
)

from reco_assets.checks import cards_ready
from reco_assets.partitions import daily_cohort_partitions, daily_partitions, daily_release_partitions
from reco_assets.resources.lakehouse import Lakehouse
from reco_assets.settings import RecoSettings

ingest_job = define_asset_job(
    "ingest_job",
    selection=AssetSelection.assets("catalog", "catalog_rejected", "raw_events", "raw_events_rejected"),
    partitions_def=daily_partitions,
    description="Land one day or a range of days (single run): catalog snapshots and validated events.",
)
daily_job = define_asset_job(
    "daily_job",
    selection=AssetSelection.assets(
        "catalog",
        "catalog_rejected",
        "raw_events",
        "raw_events_rejected",
        "implicit_ratings",
        "member_cohorts",
        "style_listings",
        "group_neighbors",
        "co_purchase_rules",
    ),
    partitions_def=daily_partitions,
    description="The day's shared tables: ingestion, ratings, cohorts, style listings, item to item.",
)
evaluation_job = define_asset_job(
    "evaluation_job",
    selection=AssetSelection.assets("offline_evaluation", "ranking_champions"),
    partitions_def=daily_partitions,
    description="Backtest of the pipeline on the last days (temporal holdout) and the day's quality gate.",
)
cohort_job = define_asset_job(
    "cohort_job",
    # the freshness check of the cards runs on its own schedule, not with every materialization of them
    selection=AssetSelection.assets(
        "als_factors", "member_affinities", "boosted_affinities", "diversified_affinities", "member_cards"
    )
    - AssetSelection.checks(AssetCheckKey(AssetKey("member_cards"), "ready_before_release")),
    partitions_def=daily_cohort_partitions,
    description="The cohorts' models and recommendations for a day (one run over the day's cohorts, or one "
    "cohort alone): factors, affinities, cards.",
)
release_job = define_asset_job(
    "release_job",
    selection=AssetSelection.assets(
        "release_catalog", "release_catalog_rejected", "served_withdrawals", "release_listings", "release_cards"
    ),
    partitions_def=daily_release_partitions,
    description="A release refresh of a day's cards: the release's catalog snapshot (whose sold-out and ended "
    "styles leave the served answers at once), style listings and cards.",
)
serving_job = define_asset_job(
    "serving_job",
    selection=AssetSelection.assets("served_feeds", "feed_exports"),
    partitions_def=daily_partitions,
    description="The day's published cards into the serving store as a new version (served once checked), and "
    "the day's export files.",
)

freshness_job = define_asset_job("cards_freshness_job", selection=AssetSelection.checks(cards_ready))


@op
def vacuum_lakehouse(context: OpExecutionContext, lakehouse: Lakehouse, settings: RecoSettings) -> None:
    """Delete, in every table, the files no version of the last `lakehouse.vacuum_retention_hours` reads."""
    for table, files in lakehouse.vacuum(settings.lakehouse.vacuum_retention_hours).items():
        context.log.info(f"{table}: {len(files)} files deleted" + "".join(f"\n  {path}" for path in files))


@job(description="Delete the lakehouse's files no version of the retention reads: replaced partitions, killed writes.")
def vacuum_job():
    vacuum_lakehouse()


JOBS = [ingest_job, daily_job, evaluation_job, cohort_job, release_job, serving_job, freshness_job, vacuum_job]
