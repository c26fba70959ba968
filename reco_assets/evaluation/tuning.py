"""A small hyper-parameter search on one day's backtest, every trial logged to MLflow.

The grid moves one setting at a time away from the current settings (a full factorial of five settings would
take hours on a laptop); the best value of each dimension shows where the defaults should move.
"""

from collections.abc import Callable, Iterator
from datetime import date

import pandas as pd
from pyspark.sql import SparkSession

from reco_assets.evaluation.backtest import MODEL, run_backtest
from reco_assets.evaluation.report import settings_table
from reco_assets.resources.lakehouse import Lakehouse
from reco_assets.resources.tracking import MlflowTracking
from reco_assets.settings import RecoSettings

PURCHASE_HEAVY = {"weight_product_view": 1.0, "weight_add_to_cart": 10.0, "weight_purchase": 60.0}
EVERY_EVENT_ONCE = {
    "weight_product_view": 1.0,
    "weight_add_to_cart": 1.0,
    "weight_still_want_it": 1.0,
    "weight_purchase": 1.0,
}
GRID: dict[str, list] = {
    "als_scope": ["cohort", "global"],
    "als_engine": ["implicit", "softmax"],
    "als_softmax_rank": [8, 32],
    "als_softmax_reg_param": [10.0, 40.0],
    "als_reg_param": [0.2, 0.4, 0.8, 1.2, 2.0],
    "als_mllib_reg_param": [0.03, 0.1, 1.0],
    "als_alpha": [0.01, 0.2, 1.0],
    "als_rank": [20, 100],
    "ratings_lookback_days": [30],
    "event_weights": [PURCHASE_HEAVY, EVERY_EVENT_ONCE],
    "boost_strength": [0.0, 0.25],
}
HEADLINE = [("ndcg", 10), ("recall", 50), ("map", 10), ("coverage", 50)]


ALS_ENGINES = ("implicit", "mllib")
ENGINE_ONLY = {
    "als_reg_param": ("implicit",),
    "als_mllib_reg_param": ("mllib",),
    "als_alpha": ALS_ENGINES,
    "als_rank": ALS_ENGINES,
    "als_softmax_rank": ("softmax",),
    "als_softmax_reg_param": ("softmax",),
}
"""Settings that only some engines read: tried only when the engine tuned is one of them."""


def trials(grid: dict[str, list], base: RecoSettings) -> Iterator[dict]:
    """The current settings first, then one dimension changed at a time (to the values it does not hold)."""
    yield {}
    for name, values in grid.items():
        if base.als_engine not in ENGINE_ONLY.get(name, (base.als_engine,)):
            continue
        for value in values:
            if name == "event_weights":
                yield dict(value)
            elif getattr(base, name) != value:
                yield {name: value}


def tune(
    session: SparkSession,
    lakehouse: Lakehouse,
    tracking: MlflowTracking,
    day: date,
    base: RecoSettings,
    limit: int | None = None,
    log: Callable[[str], None] = print,
    only: list[str] | None = None,
) -> pd.DataFrame:
    """Backtest every trial (model only, subclass-brand level); one MLflow run each; best NDCG@10 first.
    `only`: the grid's settings to vary (default: all)."""
    unknown = set(only or []) - set(GRID)
    if unknown:
        raise ValueError(f"not in the tuning grid: {sorted(unknown)}; choose from {sorted(GRID)}")
    grid = {name: values for name, values in GRID.items() if not only or name in only}
    results = []
    for number, overrides in enumerate(list(trials(grid, base))[:limit], 1):
        settings = base.model_copy(update=overrides)
        label = ", ".join(f"{k}={v}" for k, v in overrides.items()) or "current settings"
        with tracking.run(f"tuning {day} #{number}", {"as_of_date": str(day), "tuning": "true"}) as run:
            import mlflow

            mlflow.log_params({"trial": label} | {k: str(v) for k, v in overrides.items()})
            backtest = run_backtest(session, lakehouse, day, settings, ablations=False, styles=False)
            table, _ = settings_table([backtest], day, settings)
            overall = table[(table["segment"] == "all") & (table["method"] == MODEL.name)]
            values = {f"{m}@{k}": overall.query("metric == @m and k == @k")["value"].sum() for m, k in HEADLINE}
            mlflow.log_metrics({name.replace("@", "_at_"): value for name, value in values.items()})
            results.append({"trial": label, **values, "mlflow_run_id": run.info.run_id})
        log(f"  #{number:<2} {label:<60} ndcg@10 {values['ndcg@10']:.4f}  recall@50 {values['recall@50']:.4f}")
    return pd.DataFrame(results).sort_values("ndcg@10", ascending=False, ignore_index=True)
