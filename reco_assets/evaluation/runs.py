"""MLflow records of a backtest: one run per evaluated day, one nested run per cohort model."""

import tempfile
import time
from pathlib import Path

import pandas as pd

from reco_assets.evaluation.backtest import Backtest
from reco_assets.evaluation.report import comparison_plot


def metric_name(row: pd.Series) -> str:
    """MLflow metric key, e.g. `subclass_brand.model.ndcg_at_10` (MLflow keys cannot hold `@`)."""
    return f"{row['level']}.{row['method']}.{row['metric']}_at_{row['k']}"


def log_backtest(backtest: Backtest, table: pd.DataFrame, params: dict) -> None:
    """Log into the active MLflow run: parameters, sizes, overall metrics, the table, the plot, cohort runs."""
    import mlflow
    from mlflow.entities import Metric, Param

    split = backtest.split
    mlflow.log_params(
        params
        | {
            "train_end_date": str(split.train_end),
            "test_start_date": str(split.test_start),
            "test_end_date": str(split.test_end),
        }
    )
    mlflow.log_metrics({f"size.{name}": float(value) for name, value in backtest.sizes.items()})
    mlflow.log_metrics({f"seconds.{phase}": value for phase, value in backtest.seconds.items()})
    overall = table[table["segment"] == "all"]
    mlflow.log_metrics({metric_name(row): float(row["value"]) for _, row in overall.iterrows()})
    if table.empty:
        return  # nothing was scored: no member of the training day acted in the test window
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / f"offline_evaluation_{split.test_end}.csv"
        table.to_csv(csv, index=False)
        mlflow.log_artifact(str(csv))
        mlflow.log_artifact(str(comparison_plot(table, Path(tmp) / "model_vs_baselines.png")))
    # a nested run per model in three calls (created with its tags, one batch, ended): tens of them a day
    parent, client, now = mlflow.active_run().info, mlflow.MlflowClient(), int(time.time() * 1000)
    for model, stats in backtest.fits.items():
        tags = {"cohort": model, "train_end_date": str(split.train_end), "mlflow.parentRunId": parent.run_id}
        run = client.create_run(parent.experiment_id, run_name=f"{model} trained through {split.train_end}", tags=tags)
        rows = table[table["segment"] == model]
        metrics = {f"train.{name}": float(value) for name, value in stats.items()}
        metrics |= {metric_name(row): float(row["value"]) for _, row in rows.iterrows()}
        try:  # the client splits a batch at MLflow's limits
            client.log_batch(
                run.info.run_id,
                metrics=[Metric(key, value, now, 0) for key, value in metrics.items()],
                params=[Param(key, str(value)) for key, value in params.items() if key.startswith("factor_model.")],
            )
        except Exception:
            client.set_terminated(run.info.run_id, "FAILED")
            raise
        client.set_terminated(run.info.run_id)
