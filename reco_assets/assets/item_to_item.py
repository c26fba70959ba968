"""Item to item: the subclass-brands similar to each one and those bought together, for a style's page, the
cart and the session's lists."""

from datetime import timedelta

from dagster import AssetExecutionContext, MaterializeResult, asset

from reco_assets import invariants
from reco_assets.assets.common import partition_date, publish, stage_day, staged_metadata
from reco_assets.checks import check, not_empty, not_empty_spec, spec
from reco_assets.constants import PUBLISHING
from reco_assets.partitions import daily_partitions
from reco_assets.pipeline import stages
from reco_assets.resources.lakehouse import Lakehouse
from reco_assets.resources.spark import SparkResource
from reco_assets.resources.tracking import MlflowTracking, log_rules
from reco_assets.settings import RecoSettings

FROM_EVENTS = {
    "partitions_def": daily_partitions,
    "deps": ["raw_events"],  # a window of raw_events: `lineage.py`
    "group_name": PUBLISHING,
}
"""What both assets are: a day's table computed in Spark from a window of events."""


@asset(
    **FROM_EVENTS,
    kinds={"spark", "delta"},
    check_specs=[
        spec(
            "group_neighbors",
            "neighbors_well_formed",
            "no group is its own neighbour or lists one twice, every pair shares the minimum of sessions, ranks "
            "run 1..n and scores are positive and do not rise with the rank",
        ),
        not_empty_spec("group_neighbors"),
    ],
)
def group_neighbors(context: AssetExecutionContext, spark: SparkResource, lakehouse: Lakehouse, settings: RecoSettings):
    """Each subclass-brand's most similar ones, from the groups members' sessions hold together."""
    day = partition_date(context)
    lakehouse.require("raw_events", {"event_date": day})
    frame = stages.neighbors(stages.Reader(spark.session(), lakehouse), day, settings)
    staged = stage_day(lakehouse, "group_neighbors", frame, day)
    violations = invariants.neighbor_violations(staged.dataset().to_table(), settings.neighbors.min_co_sessions)
    yield from publish(
        [staged],
        [check("neighbors_well_formed", violations, "malformed neighbour rows"), not_empty([staged])],
    )
    yield MaterializeResult(metadata=staged_metadata([staged]))


@asset(
    **FROM_EVENTS,
    kinds={"spark", "delta", "mlflow"},
    check_specs=[
        spec(
            "co_purchase_rules",
            "rules_well_formed",
            "no consequent in its antecedent, antecedents sorted and of one or two groups, every rule in the "
            "minimum of baskets, confidence in (0, 1], lift positive, ranks 1..n by non-increasing lift x confidence",
        ),
        spec(
            "co_purchase_rules",
            "rules_recomputed",
            "support, confidence and lift of a sample of rules agree with a count over the baskets rebuilt in SQL",
        ),
    ],
)
def co_purchase_rules(
    context: AssetExecutionContext,
    spark: SparkResource,
    lakehouse: Lakehouse,
    settings: RecoSettings,
    tracking: MlflowTracking,
):
    """The groups bought with a group or a pair of groups: FPGrowth's rules over the members' baskets, logged
    to MLflow once published. A shop whose baskets hold one item has none: no `not_empty` here."""
    day = partition_date(context)
    lakehouse.require("raw_events", {"event_date": day})
    chosen = settings.rules
    frame = stages.rules(stages.Reader(spark.session(), lakehouse), day, settings)
    staged = stage_day(lakehouse, "co_purchase_rules", frame, day)
    written = staged.dataset().to_table()
    first = day - timedelta(days=chosen.window_days - 1)
    events = lakehouse.dataset("raw_events")
    yield from publish(
        [staged],
        [
            check(
                "rules_well_formed",
                invariants.rule_violations(written, chosen.min_baskets, chosen.max_antecedent_items),
                "malformed rules",
            ),
            check(
                "rules_recomputed",
                invariants.rules_not_recomputed(written, events, first, day, chosen.max_basket_items),
                "sampled rules whose figures differ from a recount",
            ),
        ],
    )
    with tracking.run(f"co_purchase_rules {day}", {"as_of_date": str(day), "dagster_run_id": context.run_id}) as run:
        log_rules(written.to_pandas(), {f"rules.{k}": v for k, v in chosen.model_dump().items()})
    yield MaterializeResult(metadata=staged_metadata([staged], mlflow_run_id=run.info.run_id))
