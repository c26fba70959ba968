"""Item to item: the subclass-brands similar to each one, for a style's page and the session's lists."""

from dagster import AssetExecutionContext, MaterializeResult, asset

from reco_assets import invariants
from reco_assets.assets.common import partition_date, publish, stage_day, staged_metadata
from reco_assets.checks import check, not_empty, not_empty_spec, spec
from reco_assets.constants import PUBLISHING
from reco_assets.partitions import daily_partitions
from reco_assets.pipeline import stages
from reco_assets.resources.lakehouse import Lakehouse
from reco_assets.resources.spark import SparkResource
from reco_assets.settings import RecoSettings


@asset(
    partitions_def=daily_partitions,
    deps=["raw_events"],  # the window of raw_events: `lineage.py`
    group_name=PUBLISHING,
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
