"""Factor models: one per cohort (or one global model shared out to the cohorts), by the engine of the settings
(the softmax choice model, implicit ALS or MLlib ALS), all of a day's cohorts fitted in one Spark job."""

import tempfile

import duckdb
from dagster import AssetExecutionContext, BackfillPolicy, MaterializeResult, MetadataValue, asset
from pyspark.sql import functions as F

from reco_assets import invariants
from reco_assets.assets.common import cohort_days, publish, stage_day, staged_metadata
from reco_assets.checks import check, spec
from reco_assets.constants import MODELLING
from reco_assets.evaluation.gate import require_gate
from reco_assets.partitions import daily_cohort_partitions
from reco_assets.pipeline import stages
from reco_assets.pipeline.factorization import GLOBAL
from reco_assets.resources.lakehouse import Lakehouse, Staged
from reco_assets.resources.spark import SparkResource
from reco_assets.resources.tracking import MlflowTracking, register_cohort_model
from reco_assets.settings import FactorModelSettings, RecoSettings


@asset(
    partitions_def=daily_cohort_partitions,
    backfill_policy=BackfillPolicy.single_run(),
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
):
    """Latent factors of each cohort's members and of the subclass-brands they rated.

    Fitted only when the day's quality gate lets the day through (`require_gate`): a day held back keeps
    its last published factors and registers no model."""
    reader = stages.Reader(spark.session(), lakehouse)
    params = settings.factor_model
    writes = []
    for day in cohort_days(context):
        require_gate(lakehouse, day, settings, "models")
    for day, cohorts in cohort_days(context).items():
        fitted = stages.factor_models(
            reader.day("implicit_ratings", day),
            reader.day("member_cohorts", day),
            params,
            cohorts,
            start=stages.earlier_models(reader, day, settings),
        )
        key = F.lit(settings.model_key())
        writes.append(stage_day(lakehouse, "als_factors", fitted.withColumn("model_key", key), day, cohorts))
    non_finite = sum(invariants.non_finite_factors(write.dataset()) for write in writes)
    yield from publish([*writes], [check("finite_factors", non_finite, "factor rows with a NaN or infinite value")])
    versions, fit_seconds = {}, {}
    with tracking.run("als_factors", {"dagster_run_id": context.run_id}) as run:
        for write in writes:
            day = str(write.partitions["as_of_date"])
            day_versions, day_seconds = _track(write, params, day)
            versions |= {f"{day}/{c}": v for c, v in day_versions.items()}
            fit_seconds |= {f"{day}/{c}": s for c, s in day_seconds.items()}
    yield MaterializeResult(
        asset_key="als_factors",
        metadata=staged_metadata(
            writes,
            mlflow_run_id=run.info.run_id,
            engine=params.engine,
            registered_models=MetadataValue.json(versions),
            fit_seconds=MetadataValue.json(fit_seconds),
        ),
    )


def _track(write: Staged, params: FactorModelSettings, day: str) -> tuple[dict[str, str], dict[str, float]]:
    """Parameters and sizes in the active MLflow run; each cohort's model registered as a version of
    `reco_factors_<cohort>` tagged with the day, its artifact a copy of the cohort's factor files.
    Returns cohort -> version, and the fit seconds per cohort, or once as `global` under the global scope (its
    cohorts share one fit: summing theirs would count it 25 times)."""
    import mlflow

    mlflow.log_params(params.model_dump() | {"as_of_date": day})
    with duckdb.connect() as con:
        con.register("t", write.dataset())
        sizes = con.sql(
            "SELECT cohort, count(*) FILTER (side = 'member') AS members, count(*) FILTER (side = 'item') AS items, "
            "max(fit_seconds) AS seconds FROM t GROUP BY cohort ORDER BY cohort"
        ).fetchall()
    versions, seconds = {}, {}
    for cohort, members, items, fit in sizes:
        seconds[GLOBAL if params.scope == GLOBAL else cohort] = round(fit, 3)
        mlflow.log_metrics({f"{cohort}.members": members, f"{cohort}.items": items})
        with tempfile.TemporaryDirectory() as folder:
            write.copy_files("cohort", cohort, folder)
            versions[cohort] = register_cohort_model(folder, cohort, day)
    mlflow.log_metrics({f"{label}.fit_seconds": fit for label, fit in seconds.items()})
    return versions, seconds
