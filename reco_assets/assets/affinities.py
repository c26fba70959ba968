"""Per-member affinities to subclass-brands: top K predictions, the intent boost, diversification.

The three tables come out of one vectorized pass over the day's members (`pipeline/affinities.py`), for
all of a day's cohorts in one Spark job, and are published together once their checks pass.
"""

from functools import partial

import pyarrow as pa
from dagster import AssetExecutionContext, AssetSpec, BackfillPolicy, MaterializeResult, MetadataValue, multi_asset

from reco_assets import invariants
from reco_assets.assets.common import cohort_days, publish, staged_metadata
from reco_assets.checks import check, spec
from reco_assets.constants import MODELLING
from reco_assets.evaluation.champion import blend_from_json, methods_by_cohort
from reco_assets.partitions import daily_cohort_partitions
from reco_assets.pipeline import stages
from reco_assets.pipeline.affinities import OUTPUTS, in_member_order, rank_batches
from reco_assets.pipeline.methods import MODEL, Method
from reco_assets.resources.lakehouse import Lakehouse, MissingPartition
from reco_assets.resources.spark import SparkResource
from reco_assets.settings import RecoSettings

PARTITION_COLUMNS = [pa.field("cohort", pa.string()), pa.field("as_of_date", pa.date32())]
METHOD = {"diversified_affinities": [pa.field("method", pa.string())]}  # the ranking method that produced it
TABLES = {name: pa.schema([*schema, *METHOD.get(name, []), *PARTITION_COLUMNS]) for name, schema in OUTPUTS.items()}


def champions(lakehouse: Lakehouse, day, cohorts: list[str]) -> tuple[dict[str, Method], str]:
    """The method each cohort is ranked by on `day` (`ranking_champions`), and where that came from. Without
    champions of the day (not evaluated yet), the model's: the quality gate holds such cards back anyway."""
    try:
        chosen = lakehouse.read_arrow("ranking_champions", partition={"as_of_date": day}).to_pandas()
    except MissingPartition:
        return {cohort: MODEL for cohort in cohorts}, "model (no ranking_champions of the day)"
    if chosen.empty:
        return {cohort: MODEL for cohort in cohorts}, "model (nothing evaluated)"
    methods = methods_by_cohort(chosen, blend_from_json(chosen["blend_weights"].iloc[0]))
    return {cohort: methods.get(cohort, MODEL) for cohort in cohorts}, "ranking_champions"


def _spec(name: str, deps: list[str], description: str) -> AssetSpec:
    return AssetSpec(
        name,
        deps=deps,
        partitions_def=daily_cohort_partitions,
        group_name=MODELLING,
        kinds={"spark", "delta"},
        description=description,
    )


@multi_asset(
    specs=[
        _spec(
            "member_affinities",
            ["als_factors", "implicit_ratings", "member_cohorts", "catalog", "ranking_champions"],
            "Each member's top K subclass-brands among those live today or in the next 24 hours.",
        ),
        # Dagster maps date x cohort to the same date only (no window across a multi-partition), so the
        # lineage names the day of raw_events; the pass reads the whole boost window.
        _spec(
            "boosted_affinities",
            ["member_affinities", "raw_events", "catalog"],
            "Affinities lifted for the subclasses a member browsed but did not buy in the last 10 days.",
        ),
        _spec(
            "diversified_affinities",
            ["boosted_affinities", "catalog"],
            "The ranking the cards are built from, by the cohort's champion method (`method`): for the model, "
            "boosted affinities with at most N subclass-brands per class per member, ranked again.",
        ),
    ],
    check_specs=[
        spec(
            "member_affinities",
            "ranks_ordered",
            "rank is 1..K without gaps per member and predictions do not rise with rank",
        ),
        spec(
            "boosted_affinities",
            "boosts_within_intent",
            "boosts touch at most the member's top browsed-not-bought subclasses",
        ),
        spec("diversified_affinities", "class_limit", "no member has more than N subclass-brands in one class"),
    ],
    partitions_def=daily_cohort_partitions,
    backfill_policy=BackfillPolicy.single_run(),
)
def affinities(context: AssetExecutionContext, spark: SparkResource, lakehouse: Lakehouse, settings: RecoSettings):
    reader = stages.Reader(spark.session(), lakehouse)
    params = settings.rank_params()
    writes: dict[str, list] = {name: [] for name in TABLES}
    violations = {"ranks_ordered": 0, "boosts_within_intent": 0, "class_limit": 0}
    candidates_by_day, methods_by_day = {}, {}
    for day, cohorts in cohort_days(context).items():
        methods, source = champions(lakehouse, day, cohorts)
        methods_by_day[str(day)] = {"source": source} | {cohort: m.name for cohort, m in methods.items()}
        lakehouse.require("raw_events", {"event_date": day})
        factors = reader.day("als_factors", day, cohorts)
        ranking = stages.ranking_pass(
            reader, day, factors, reader.day("implicit_ratings", day), reader.day("member_cohorts", day), settings
        )
        candidates_by_day[str(day)] = len(ranking.candidates)
        ranked_by = {cohort: (method,) for cohort, method in methods.items()}
        rank = partial(
            rank_batches, models=ranking.models, hierarchy=ranking.hierarchy, params=params, methods=ranked_by
        )
        staged = lakehouse.stage(
            in_member_order(ranking.inputs(factors)),
            TABLES,
            {"as_of_date": day, "cohort": cohorts},
            transform=rank,
            constants={"as_of_date": day},
        )
        for name, write in staged.items():
            writes[name].append(write)
        violations["ranks_ordered"] += invariants.rank_violations(staged["member_affinities"].dataset(), "prediction")
        violations["boosts_within_intent"] += invariants.boosts_outside_intent(
            staged["boosted_affinities"].dataset(), ranking.groups.toArrow(), settings.ranking.boost_subclasses
        )
        violations["class_limit"] += invariants.classes_over_limit(
            staged["diversified_affinities"].dataset(), settings.ranking.max_groups_per_class
        )
    limit = settings.ranking.max_groups_per_class
    yield from publish(
        [write for each in writes.values() for write in each],
        [
            check(
                "ranks_ordered",
                violations["ranks_ordered"],
                "members whose ranks have gaps or whose predictions rise with rank",
                asset="member_affinities",
            ),
            check(
                "boosts_within_intent",
                violations["boosts_within_intent"],
                f"members with boosts in more than {settings.ranking.boost_subclasses} subclasses",
                asset="boosted_affinities",
            ),
            check(
                "class_limit",
                violations["class_limit"],
                f"member x class pairs with more than {limit} groups",
                asset="diversified_affinities",
            ),
        ],
    )
    for name, each in writes.items():
        extra = {"methods": MetadataValue.json(methods_by_day)} if name == "diversified_affinities" else {}
        yield MaterializeResult(
            asset_key=name,
            metadata=staged_metadata(each, candidate_groups=MetadataValue.json(candidates_by_day), **extra),
        )
