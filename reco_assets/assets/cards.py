"""Member cards: the product, brand and category feeds served by member id."""

from dagster import AssetExecutionContext, BackfillPolicy, Failure, MaterializeResult, MetadataValue, asset

from reco_assets import checks
from reco_assets.adapters.ids import ID_MAP
from reco_assets.assets.common import check, cohort_days, publish, spec, stage_day, staged_metadata
from reco_assets.constants import PUBLISHING
from reco_assets.evaluation.report import GateVerdict, quality_gate
from reco_assets.partitions import daily_cohort_partitions
from reco_assets.pipeline.cards import CardLimits, with_source_ids
from reco_assets.pipeline.cards import member_cards as assemble_cards
from reco_assets.pipeline.catalog import day_bounds
from reco_assets.resources.lakehouse import Lakehouse, partition_predicate
from reco_assets.resources.spark import SparkResource
from reco_assets.settings import RecoSettings


@asset(
    partitions_def=daily_cohort_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    deps=["diversified_affinities", "style_listings", "catalog", "offline_evaluation"],
    group_name=PUBLISHING,
    kinds={"spark", "delta"},
    check_specs=[
        spec("member_cards", "cards_saleable", "every style in a card is on sale with stock on the day"),
        spec("member_cards", "lists_well_formed", "no style twice in one list; at most 300 styles in a product feed"),
    ],
)
def member_cards(context: AssetExecutionContext, spark: SparkResource, lakehouse: Lakehouse, settings: RecoSettings):
    """Per member: the product feed and the brand and category cards, as ordered lists of style ids.

    Held back (the step fails) when the day's offline evaluation finds the model worse than a baseline.
    """
    session = spark.session()
    writes, unsaleable, malformed, verdicts = [], 0, 0, {}
    for day, cohorts in cohort_days(context).items():
        verdict = _gate(lakehouse, day, settings.quality_gate_margin)
        if not verdict.passed:
            raise Failure(f"member cards of {day} held back by the quality gate: {verdict.explain()}")
        verdicts[str(day)] = verdict.explain()
        day_where = partition_predicate({"as_of_date": day})
        cohort_where = f"{day_where} AND cohort IN ({', '.join(repr(c) for c in cohorts)})"
        affinities = lakehouse.read_spark(session, "diversified_affinities", cohort_where)
        listings = lakehouse.read_spark(session, "style_listings", day_where)
        cards = assemble_cards(affinities, listings, settings.pick(CardLimits))
        if lakehouse.table(ID_MAP) is not None:  # imported data: show the source's ids too
            cards = with_source_ids(cards, lakehouse.read_spark(session, ID_MAP))
        staged = stage_day(lakehouse, "member_cards", cards, day, cohorts)
        writes.append(staged)
        start, end = day_bounds(day)
        unsaleable += checks.styles_not_saleable(
            checks.card_styles(staged.dataset()),
            lakehouse.read_arrow("catalog", day_where),
            start,
            end,
            settings.min_qty_on_hand,
        )
        malformed += checks.card_violations(staged.dataset(), settings.product_feed_max)
    yield from publish(
        writes,
        [
            check("cards_saleable", unsaleable, "styles in cards not saleable on the day"),
            check("lists_well_formed", malformed, "lists with a repeated style or product feeds over the limit"),
        ],
    )
    yield MaterializeResult(
        asset_key="member_cards",
        metadata=staged_metadata(writes, quality_gate=MetadataValue.json(verdicts)),
    )


def _gate(lakehouse: Lakehouse, day, margin: float) -> GateVerdict:
    """The verdict of the day's offline evaluation; a day never evaluated passes, and says so."""
    try:
        table = lakehouse.read_arrow("offline_evaluation", partition_predicate({"as_of_date": day})).to_pandas()
    except FileNotFoundError:
        return quality_gate(table=None, margin=margin)
    return quality_gate(table, margin)
