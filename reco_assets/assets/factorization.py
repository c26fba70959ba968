"""ALS factors: one implicit-feedback model per cohort, tracked in MLflow."""

import pyarrow.compute as pc
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from reco_assets import checks
from reco_assets.assets.common import (
    check,
    cohort_members,
    partition_cohort,
    partition_date,
    spec,
    table_metadata,
    write_day,
)
from reco_assets.constants import MODELLING
from reco_assets.partitions import daily_cohort_partitions
from reco_assets.pipeline.factorization import AlsParams, fit_cohort
from reco_assets.resources.lakehouse import Lakehouse, partition_predicate
from reco_assets.resources.spark import SparkResource
from reco_assets.resources.tracking import MlflowTracking, register_cohort_model
from reco_assets.settings import RecoSettings


@asset(
    partitions_def=daily_cohort_partitions,
    deps=["implicit_ratings", "member_cohorts"],
    group_name=MODELLING,
    kinds={"spark", "delta", "mlflow"},
    check_specs=[spec("als_factors", "finite_factors", "every factor is a finite number")],
)
def als_factors(
    context: AssetExecutionContext,
    spark: SparkResource,
    lakehouse: Lakehouse,
    tracking: MlflowTracking,
    settings: RecoSettings,
) -> MaterializeResult:
    """Latent factors of the cohort's members and of the subclass-brands they rated."""
    day, cohort = partition_date(context), partition_cohort(context)
    session = spark.session()
    ratings = lakehouse.read_spark(session, "implicit_ratings", partition_predicate({"as_of_date": day}))
    ratings = ratings.join(cohort_members(lakehouse, session, day, cohort), "member_id", "left_semi")
    params = settings.pick(AlsParams, prefix="als_")
    with tracking.run(
        f"als_factors {cohort} {day}", {"cohort": cohort, "as_of_date": str(day), "dagster_run_id": context.run_id}
    ) as run:
        import mlflow

        mlflow.log_params(vars(params))
        factors, stats = fit_cohort(ratings, params)
        mlflow.log_metrics({k: float(v) for k, v in stats.items()})
        data = write_day(lakehouse, "als_factors", factors, day, cohort)
        version = register_cohort_model(data, cohort, str(day))
        run_id = run.info.run_id
    largest = pc.max(pc.abs(pc.list_flatten(data.column("factors")))).as_py() or 0.0
    non_finite = checks.non_finite_factors(data.select(["factors"]))
    return MaterializeResult(
        metadata=table_metadata(
            lakehouse,
            "als_factors",
            data,
            mlflow_run_id=run_id,
            registered_model=MetadataValue.text(f"reco_als_{cohort} version {version}"),
            factor_abs_max=MetadataValue.float(float(largest)),
            **stats,
        ),
        check_results=[check("finite_factors", non_finite, "factor rows with a NaN or infinite value")],
    )
