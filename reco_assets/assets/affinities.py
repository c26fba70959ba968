"""Per-member affinities to subclass-brands: top K predictions, the intent boost, diversification."""

from dagster import AssetExecutionContext, MaterializeResult, asset

from reco_assets import checks
from reco_assets.assets.common import (
    check,
    cohort_members,
    partition_cohort,
    partition_date,
    spec,
    table_metadata,
    window_where,
    write_day,
)
from reco_assets.constants import MODELLING
from reco_assets.partitions import daily_cohort_partitions
from reco_assets.pipeline.affinities import boost_affinities, diversify, intent_subclasses, top_k_affinities
from reco_assets.pipeline.catalog import candidate_groups, group_hierarchy
from reco_assets.resources.lakehouse import Lakehouse, partition_predicate
from reco_assets.resources.spark import SparkResource
from reco_assets.settings import RecoSettings


def _cohort_where(context: AssetExecutionContext) -> str:
    return partition_predicate({"as_of_date": partition_date(context), "cohort": partition_cohort(context)})


@asset(
    partitions_def=daily_cohort_partitions,
    deps=["als_factors", "implicit_ratings", "member_cohorts", "catalog"],
    group_name=MODELLING,
    kinds={"spark", "delta"},
    check_specs=[
        spec(
            "member_affinities",
            "ranks_ordered",
            "rank is 1..K without gaps per member and predictions do not rise with rank",
        )
    ],
)
def member_affinities(
    context: AssetExecutionContext, spark: SparkResource, lakehouse: Lakehouse, settings: RecoSettings
) -> MaterializeResult:
    """Each member's top K subclass-brands among those live today or in the next 24 hours."""
    day, cohort = partition_date(context), partition_cohort(context)
    session = spark.session()
    day_where = partition_predicate({"as_of_date": day})
    factors = lakehouse.read_spark(session, "als_factors", _cohort_where(context))
    ratings = lakehouse.read_spark(session, "implicit_ratings", day_where)
    ratings = ratings.join(cohort_members(lakehouse, session, day, cohort), "member_id", "left_semi")
    candidates = candidate_groups(lakehouse.read_spark(session, "catalog", day_where), day, settings.live_horizon_hours)
    top = top_k_affinities(factors, candidates, ratings, settings.affinity_top_k)
    data = write_day(lakehouse, "member_affinities", top, day, cohort)
    return MaterializeResult(
        metadata=table_metadata(lakehouse, "member_affinities", data, candidate_groups=len(candidates)),
        check_results=[
            check(
                "ranks_ordered",
                checks.rank_violations(data, "prediction"),
                "members whose ranks have gaps or whose predictions rise with rank",
            )
        ],
    )


@asset(
    partitions_def=daily_cohort_partitions,
    deps=[
        "member_affinities",
        "member_cohorts",
        "catalog",
        # Dagster maps date x cohort to the same date only (no window across a multi-partition), so the
        # lineage names the day; the asset reads the whole boost window.
        "raw_events",
    ],
    group_name=MODELLING,
    kinds={"spark", "delta"},
    check_specs=[
        spec(
            "boosted_affinities",
            "boosts_within_intent",
            "boosts touch at most the member's top browsed-not-bought subclasses",
        )
    ],
)
def boosted_affinities(
    context: AssetExecutionContext, spark: SparkResource, lakehouse: Lakehouse, settings: RecoSettings
) -> MaterializeResult:
    """Affinities lifted for the subclasses a member browsed but did not buy in the last 10 days."""
    day, cohort = partition_date(context), partition_cohort(context)
    session = spark.session()
    affinities = lakehouse.read_spark(session, "member_affinities", _cohort_where(context))
    events = lakehouse.read_spark(session, "raw_events", window_where("event_date", day, settings.boost_window_days))
    events = events.join(cohort_members(lakehouse, session, day, cohort), "member_id", "left_semi")
    groups = group_hierarchy(lakehouse.read_spark(session, "catalog", partition_predicate({"as_of_date": day})))
    intents = intent_subclasses(events, settings.boost_subclasses)
    boosted = boost_affinities(affinities, intents, groups, settings.boost_strength)
    data = write_day(lakehouse, "boosted_affinities", boosted, day, cohort)
    violations = checks.boosts_outside_intent(data, groups.toArrow(), settings.boost_subclasses)
    boosted_members = len(set(data.filter(data.column("boost").to_numpy() > 0).column("member_id").to_pylist()))
    return MaterializeResult(
        metadata=table_metadata(lakehouse, "boosted_affinities", data, boosted_members=boosted_members),
        check_results=[
            check(
                "boosts_within_intent",
                violations,
                f"members with boosts in more than {settings.boost_subclasses} subclasses",
            )
        ],
    )


@asset(
    partitions_def=daily_cohort_partitions,
    deps=["boosted_affinities", "catalog"],
    group_name=MODELLING,
    kinds={"spark", "delta"},
    check_specs=[
        spec("diversified_affinities", "class_limit", "no member has more than N subclass-brands in one class")
    ],
)
def diversified_affinities(
    context: AssetExecutionContext, spark: SparkResource, lakehouse: Lakehouse, settings: RecoSettings
) -> MaterializeResult:
    """Boosted affinities with at most N subclass-brands per class per member, ranked again."""
    day, cohort = partition_date(context), partition_cohort(context)
    session = spark.session()
    boosted = lakehouse.read_spark(session, "boosted_affinities", _cohort_where(context))
    groups = group_hierarchy(lakehouse.read_spark(session, "catalog", partition_predicate({"as_of_date": day})))
    data = write_day(
        lakehouse, "diversified_affinities", diversify(boosted, groups, settings.max_groups_per_class), day, cohort
    )
    return MaterializeResult(
        metadata=table_metadata(lakehouse, "diversified_affinities", data),
        check_results=[
            check(
                "class_limit",
                checks.classes_over_limit(data, settings.max_groups_per_class),
                f"member x class pairs with more than {settings.max_groups_per_class} subclass-brands",
            ),
        ],
    )
