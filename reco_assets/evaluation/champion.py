"""The champion: per cohort, the ranking method the day publishes, chosen on the rolling backtest.

Candidates are the methods the daily pass can publish (`methods.SIMPLEST_FIRST`: the baselines, the model
with and without the boost, the blend). The champion has the highest NDCG@10 over subclass-brands on the
cohort's scored members of every origin; a tie goes to the simpler method. A cohort keeps the choice made
over everyone unless its own best leads that choice on its members with a bootstrap interval above zero: a
cohort of a few hundred members would otherwise follow its noise. A cohort with fewer scored members than
`min_members` takes the choice made over everyone. The margin is the champion's lead over the best other
candidate, with a paired bootstrap interval (the same resamples of members for both): negative for a cohort
that keeps the overall choice while its own best leads by noise (an interval reaching below zero).
"""

import json

import numpy as np
import pandas as pd
import pyarrow as pa

from reco_assets.constants import COHORTS
from reco_assets.evaluation.metrics import mean_intervals
from reco_assets.pipeline.methods import BASELINE_METHODS, SIMPLEST_FIRST, Method

SCHEMA = pa.schema(
    [
        ("as_of_date", pa.date32()),
        ("cohort", pa.string()),
        ("method", pa.string()),
        ("scope", pa.string()),
        ("ndcg", pa.float64()),
        ("ci_low", pa.float64()),
        ("ci_high", pa.float64()),
        ("versus", pa.string()),
        ("versus_ndcg", pa.float64()),
        ("margin", pa.float64()),
        ("margin_low", pa.float64()),
        ("margin_high", pa.float64()),
        ("best_baseline", pa.string()),
        ("best_baseline_ndcg", pa.float64()),
        ("members", pa.int64()),
        ("blend_weights", pa.string()),
        ("model_key", pa.string()),
    ]
)
"""Columns of `ranking_champions`, typed even when a day has no row to write."""
COLUMNS = [name for name in SCHEMA.names if name not in ("as_of_date", "blend_weights", "model_key")]
"""The columns `choose` fills; the asset adds the day, the blend's weights and the model key."""


def _pick(values: pd.Series) -> str:
    """The best method, the simplest of those tied."""
    best = None
    for method in SIMPLEST_FIRST:
        if method in values.index and (best is None or values[method] > values[best]):
            best = method
    return best


def _row(cohort: str, scope: str, per_unit: pd.DataFrame, weights: pd.DataFrame, overall: str = "") -> dict:
    values = per_unit.mean()
    method = _pick(values)
    if overall and method != overall:
        lead = mean_intervals(pd.DataFrame({"lead": per_unit[method] - per_unit[overall]}), weights)["lead"]
        method = method if lead[1] > 0 else overall
    others = values.drop(method)
    versus = _pick(others) if not others.empty else method
    baselines = values.reindex([b for b in BASELINE_METHODS if b in values.index])
    best_baseline = baselines.idxmax() if not baselines.empty else ""
    intervals = mean_intervals(
        pd.DataFrame({"champion": per_unit[method], "margin": per_unit[method] - per_unit[versus]}), weights
    )
    (value, low, high), (margin, margin_low, margin_high) = intervals["champion"], intervals["margin"]
    return dict(
        zip(
            COLUMNS,
            [
                cohort,
                method,
                scope,
                value,
                low,
                high,
                versus,
                float(values[versus]),
                margin,
                margin_low,
                margin_high,
                best_baseline,
                float(baselines.max()) if best_baseline else np.nan,
                len(per_unit),
            ],
            strict=True,
        )
    )


def choose(
    per_unit: pd.DataFrame,
    cohorts: pd.Series,
    weights: pd.DataFrame,
    min_members: int,
    candidates: tuple[str, ...] = SIMPLEST_FIRST,
) -> pd.DataFrame:
    """One row per cohort of `COHORTS` (and `all`): the champion and its figures.

    `per_unit`: NDCG@10 per scored member of every origin (rows) and candidate method (columns, the ones
    not scored on every row left out); `cohorts`: each row's cohort; `weights`: bootstrap weights over the
    rows (`metrics.bootstrap_weights`); `candidates`: the methods allowed to win (`champion_methods`)."""
    complete = [m for m in SIMPLEST_FIRST if m in candidates and m in per_unit.columns and per_unit[m].notna().all()]
    if per_unit.empty or not complete:
        return pd.DataFrame(columns=COLUMNS)
    per_unit = per_unit[complete]
    overall = _row("all", "all", per_unit, weights)
    rows = [overall]
    for cohort in COHORTS:
        own = per_unit[cohorts.reindex(per_unit.index) == cohort]
        if len(own) >= max(min_members, 1):
            rows.append(_row(cohort, "cohort", own, weights, overall["method"]))
        else:
            rows.append(overall | {"cohort": cohort, "scope": "all"})
    return pd.DataFrame(rows, columns=COLUMNS)


def methods_by_cohort(champions: pd.DataFrame, blend: Method | None) -> dict[str, Method]:
    """The method each cohort's lists are ranked by (the blend with its weights)."""
    out = {}
    for row in champions[champions["cohort"] != "all"].itertuples():
        if row.method == "blend" and blend is None:
            raise ValueError(f"cohort {row.cohort}: the blend is the champion but has no fitted weights")
        out[row.cohort] = blend if row.method == "blend" else Method(row.method)
    return out


def blend_json(blend: Method | None) -> str:
    return json.dumps(dict(blend.weights)) if blend else ""


def blend_from_json(text: str) -> Method | None:
    return Method.blend(json.loads(text)) if text else None
