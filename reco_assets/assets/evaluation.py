"""Offline evaluation: the pipeline backtested on a temporal holdout, with the quality gate of the day."""

import pyarrow as pa
from dagster import (
    AssetCheckResult,
    AssetDep,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionMapping,
    asset,
)

from reco_assets.assets.common import partition_date, spec, table_metadata
from reco_assets.assets.ratings import RATINGS_WINDOW
from reco_assets.constants import EVALUATION
from reco_assets.evaluation.backtest import run_backtest
from reco_assets.evaluation.report import SCHEMA, quality_gate, settings_table
from reco_assets.evaluation.runs import log_backtest
from reco_assets.partitions import daily_partitions
from reco_assets.resources.lakehouse import Lakehouse
from reco_assets.resources.spark import SparkResource
from reco_assets.resources.tracking import MlflowTracking
from reco_assets.settings import RecoSettings

HOLDOUT = RecoSettings.model_fields["holdout_days"].default


def _days_back(days: int) -> TimeWindowPartitionMapping:
    return TimeWindowPartitionMapping(start_offset=-days, allow_nonexistent_upstream_partitions=True)


@asset(
    partitions_def=daily_partitions,
    deps=[
        AssetDep("raw_events", partition_mapping=_days_back(RATINGS_WINDOW + HOLDOUT - 1)),
        AssetDep("catalog", partition_mapping=_days_back(HOLDOUT)),
    ],
    group_name=EVALUATION,
    kinds={"spark", "delta", "mlflow"},
    check_specs=[
        spec(
            "offline_evaluation",
            "model_beats_baselines",
            "the model's NDCG@10 over subclass-brands is not below the best baseline by more than the margin; "
            "the day's member cards are held back otherwise",
        )
    ],
)
def offline_evaluation(
    context: AssetExecutionContext,
    spark: SparkResource,
    lakehouse: Lakehouse,
    tracking: MlflowTracking,
    settings: RecoSettings,
) -> MaterializeResult:
    """Model, ablations and baselines scored on the last `holdout_days` days, trained on the days before."""
    day = partition_date(context)
    backtest = run_backtest(
        spark.session(), lakehouse, day, settings, settings.evaluation_ablations, settings.evaluation_styles
    )
    table = settings_table(backtest, day, settings)
    params = {f"als_{k}": v for k, v in settings.model_dump().items() if k.startswith("als_")} | {
        name: getattr(settings, name)
        for name in (
            "holdout_days",
            "relevant_events",
            "ratings_lookback_days",
            "boost_strength",
            "quality_gate_margin",
        )
    }
    with tracking.run(f"offline_evaluation {day}", {"as_of_date": str(day), "dagster_run_id": context.run_id}) as run:
        log_backtest(backtest, table, {k: str(v) if isinstance(v, list) else v for k, v in params.items()})
        run_id = run.info.run_id
    data = pa.Table.from_pandas(table, schema=SCHEMA, preserve_index=False)
    lakehouse.write_partition("offline_evaluation", data, {"as_of_date": day})
    verdict = quality_gate(table, settings.quality_gate_margin)
    return MaterializeResult(
        metadata=table_metadata(
            lakehouse,
            "offline_evaluation",
            data,
            mlflow_run_id=run_id,
            quality_gate=MetadataValue.text(verdict.explain()),
            **backtest.sizes,
            **{f"seconds_{phase}": value for phase, value in backtest.seconds.items()},
        ),
        check_results=[
            AssetCheckResult(
                check_name="model_beats_baselines",
                # a day with nothing to score passes only when the settings publish such days (`require_gate`)
                passed=verdict.passed or (not verdict.evaluated and settings.gate_unevaluated == "publish"),
                metadata={
                    "verdict": verdict.explain(),
                    "model_ndcg_at_10": verdict.model,
                    "best_baseline": verdict.best_baseline,
                    "best_baseline_ndcg_at_10": verdict.baseline,
                    "margin": settings.quality_gate_margin,
                },
            )
        ],
    )
