"""Member cards: the product, brand and category feeds served by member id."""

import pyarrow as pa
from dagster import AssetCheckSpec, AssetExecutionContext, BackfillPolicy, MaterializeResult, MetadataValue, asset
from pyspark.sql import DataFrame

from reco_assets import invariants
from reco_assets.adapters.ids import ID_MAP
from reco_assets.assets.common import cohort_days, publish, stage_day, staged_metadata
from reco_assets.checks import check, not_empty, not_empty_spec, spec
from reco_assets.constants import PUBLISHING
from reco_assets.evaluation.gate import champion_tags, require_gate
from reco_assets.partitions import daily_cohort_partitions
from reco_assets.pipeline import stages
from reco_assets.pipeline.catalog import sale_window
from reco_assets.resources.lakehouse import Lakehouse, Staged
from reco_assets.resources.spark import SparkResource
from reco_assets.resources.tracking import MlflowTracking, mark_published
from reco_assets.settings import RecoSettings


def card_check_specs(asset: str) -> list[AssetCheckSpec]:
    return [
        spec(asset, "cards_saleable", "every style in a card is on sale with stock in the sale window"),
        spec(asset, "lists_well_formed", "no style twice in one list; at most 300 styles in a product feed"),
        not_empty_spec(asset),
    ]


@asset(
    partitions_def=daily_cohort_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    deps=["diversified_affinities", "style_listings", "catalog", "offline_evaluation", "ranking_champions"],
    group_name=PUBLISHING,
    kinds={"spark", "delta"},
    check_specs=card_check_specs("member_cards"),
)
def member_cards(
    context: AssetExecutionContext,
    spark: SparkResource,
    lakehouse: Lakehouse,
    tracking: MlflowTracking,
    settings: RecoSettings,
):
    """Per member: the product feed and the brand and category cards, as ordered lists of style ids.

    Published only when the day's quality gate has a passing verdict (`require_gate`); the cohorts' models
    of the day then become the `published` version in the MLflow registry.
    """
    session = spark.session()
    writes, violations, verdicts = [], (0, 0), {}
    for day, cohorts in cohort_days(context).items():
        verdicts[str(day)] = require_gate(lakehouse, day, settings, "member cards", cohorts).explain()
        day_partition = {"as_of_date": day}
        affinities = lakehouse.read_spark(
            session, "diversified_affinities", partition=day_partition | {"cohort": cohorts}
        )
        listings = lakehouse.read_spark(session, "style_listings", partition=day_partition)
        cards = build_cards(session, lakehouse, affinities, listings, settings)
        writes.append(stage_day(lakehouse, "member_cards", cards, day, cohorts))
        catalog = lakehouse.read_arrow("catalog", partition=day_partition)
        found = card_violations(writes[-1], catalog, sale_window(day), settings)
        violations = (violations[0] + found[0], violations[1] + found[1])
    yield from publish(writes, card_checks(writes, *violations))
    with tracking.run("member_cards", {"dagster_run_id": context.run_id}):
        models = {
            f"{day}/{cohort}": version
            for day, cohorts in cohort_days(context).items()
            for cohort, version in mark_published(cohorts, str(day), champion_tags(lakehouse, day)).items()
        }
    yield MaterializeResult(
        asset_key="member_cards",
        metadata=staged_metadata(
            writes, quality_gate=MetadataValue.json(verdicts), published_models=MetadataValue.json(models)
        ),
    )


def build_cards(
    session, lakehouse: Lakehouse, affinities: DataFrame, listings: DataFrame, settings: RecoSettings
) -> DataFrame:
    """The three feeds of the members' diversified affinities over the listed styles (with the source's ids
    for imported data)."""
    id_map = lakehouse.read_spark(session, ID_MAP) if lakehouse.table(ID_MAP) is not None else None
    return stages.cards(affinities, listings, settings, id_map)


def card_violations(staged: Staged, catalog: pa.Table, window, settings: RecoSettings) -> tuple[int, int]:
    """(styles not saleable in the sale `window` per `catalog`, malformed lists) of a staged write of cards."""
    dataset = staged.dataset()
    unsaleable = invariants.styles_not_saleable(
        invariants.card_styles(dataset), catalog, *window, settings.listings.min_qty_on_hand
    )
    return unsaleable, invariants.card_violations(dataset, settings.cards.product_feed_max)


def card_checks(writes: list[Staged], unsaleable: int, malformed: int) -> list:
    return [
        check("cards_saleable", unsaleable, "styles in cards not saleable in the sale window"),
        check("lists_well_formed", malformed, "lists with a repeated style or product feeds over the limit"),
        not_empty(writes),
    ]
