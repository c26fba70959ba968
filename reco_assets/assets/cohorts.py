"""Member cohorts: which of the 25 cohort models serves each rated member."""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from reco_assets import invariants
from reco_assets.assets.common import partition_date, publish, stage_day, staged_metadata
from reco_assets.checks import check, not_empty, not_empty_spec, spec
from reco_assets.constants import COHORTS, MODELLING
from reco_assets.partitions import daily_partitions
from reco_assets.pipeline import stages
from reco_assets.resources.lakehouse import Lakehouse
from reco_assets.resources.spark import SparkResource
from reco_assets.settings import RecoSettings


@asset(
    partitions_def=daily_partitions,
    deps=["implicit_ratings", "raw_events"],  # the window of raw_events: `lineage.py`
    group_name=MODELLING,
    kinds={"spark", "delta"},
    check_specs=[
        spec("member_cohorts", "one_cohort_per_rated_member", "every member with a rating has exactly one cohort"),
        spec("member_cohorts", "cohorts_are_partitions", "every cohort key is one of the 25 cohort partitions"),
        not_empty_spec("member_cohorts"),
    ],
)
def member_cohorts(context: AssetExecutionContext, spark: SparkResource, lakehouse: Lakehouse, settings: RecoSettings):
    """Each rated member's cohort: dominant division x spend bucket of their P90 purchase price."""
    day = partition_date(context)
    reader = stages.Reader(spark.session(), lakehouse)
    lakehouse.require("raw_events", {"event_date": day})
    cohorts = stages.cohorts(reader, day, reader.day("implicit_ratings", day), settings)
    staged = stage_day(lakehouse, "member_cohorts", cohorts, day)
    rated = lakehouse.read_arrow("implicit_ratings", columns=["member_id"], partition={"as_of_date": day})
    dataset = staged.dataset()
    yield from publish(
        [staged],
        [
            check(
                "one_cohort_per_rated_member",
                invariants.members_without_one_cohort(rated, dataset),
                "members with a rating and not exactly one cohort",
            ),
            check(
                "cohorts_are_partitions",
                invariants.unknown_cohorts(dataset.to_table(columns=["cohort"]), COHORTS),
                "members whose cohort key is not a cohort partition",
            ),
            not_empty([staged]),
        ],
    )
    sizes = dataset.to_table(columns=["cohort"]).group_by("cohort").aggregate([("cohort", "count")]).to_pylist()
    yield MaterializeResult(
        metadata=staged_metadata(
            [staged],
            members=MetadataValue.json(
                {s["cohort"]: s["cohort_count"] for s in sorted(sizes, key=lambda s: s["cohort"])}
            ),
        )
    )
