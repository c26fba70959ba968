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

PURCHASE_HEAVY = {"product_view": 1.0, "add_to_cart": 10.0, "purchase": 60.0}
EVERY_EVENT_ONCE = {"product_view": 1.0, "add_to_cart": 1.0, "still_want_it": 1.0, "purchase": 1.0}
SCALED = (0.25, 0.5, 2.0)
"""A factor model setting is tried at these multiples of its value in force, when the engine in force has it:
one grid for every engine, whose ranges differ (a softmax's prior precision of 20 is an ALS's 0.8)."""
GRID: dict[str, tuple | list] = {
    "factor_model.scope": ["cohort", "global"],
    "factor_model.engine": ["implicit", "softmax"],
    "factor_model.rank": SCALED,
    "factor_model.reg_param": SCALED,
    "factor_model.alpha": SCALED,
    "ratings.lookback_days": [30],
    "ratings.weights": [PURCHASE_HEAVY, EVERY_EVENT_ONCE],
    "ranking.boost_strength": [0.0, 0.25],
}
HEADLINE = [("ndcg", 10), ("recall", 50), ("map", 10), ("coverage", 50)]


def _values(base: RecoSettings, name: str, values) -> list:
    """The values a grid entry tries on the settings in force."""
    group, _, field = name.partition(".")
    if name == "ratings.weights":
        return [base.ratings.weights | value for value in values]
    if values is not SCALED:
        return list(values)
    model = base.factor_model
    if field not in type(model).model_fields:
        return []  # not a setting of the engine in force
    current = getattr(model, field)
    if isinstance(current, int):  # an integer setting (rank) stays a valid one: at least 1, each value once
        return sorted({max(1, round(current * scale)) for scale in values})
    return [current * scale for scale in values]


def trials(grid: dict[str, tuple | list], base: RecoSettings) -> Iterator[dict]:
    """The current settings first, then one dimension changed at a time (to the values it does not hold)."""
    yield {}
    for name, values in grid.items():
        group, _, field = name.partition(".")
        for value in _values(base, name, values):
            if getattr(getattr(base, group), field) != value:
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
        settings = base.changed(overrides)
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
