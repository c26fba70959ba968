"""The `offline_evaluation` table of a backtest, the quality gate over it, and the comparison plot."""

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa

from reco_assets.evaluation.backtest import BASELINES, MODEL, Backtest
from reco_assets.evaluation.metrics import (
    bootstrap_weights,
    coverage,
    mean_intervals,
    member_accuracy,
    member_lists,
)
from reco_assets.settings import RecoSettings

SCHEMA = pa.schema(
    [
        ("as_of_date", pa.date32()),
        ("train_end_date", pa.date32()),
        ("test_end_date", pa.date32()),
        ("level", pa.string()),
        ("segment", pa.string()),
        ("method", pa.string()),
        ("metric", pa.string()),
        ("k", pa.int64()),
        ("value", pa.float64()),
        ("ci_low", pa.float64()),
        ("ci_high", pa.float64()),
        ("members", pa.int64()),
        ("model_key", pa.string()),
    ]
)
"""Columns of `offline_evaluation`, typed even when a day has no row to write."""
GATE_LEVEL, GATE_METRIC, GATE_K = "subclass_brand", "ndcg", 10


def _segments(backtest: Backtest, relevant: pd.DataFrame) -> dict[str, tuple[pd.DataFrame, bool]]:
    """Segment -> (its relevant items, whether they are those of `all` for its members: a cohort is)."""
    segments = {
        "all": (relevant, True),
        "new_styles": (relevant[relevant["new"]], False),
        "returning_styles": (relevant[~relevant["new"]], False),
    }
    for cohort, members in backtest.members.groupby("cohort"):
        segments[cohort] = (relevant[relevant["member_id"].isin(members["member_id"])], True)
    return segments


def _means(
    per_member: pd.DataFrame, members: pd.Index, weights: pd.DataFrame
) -> dict[tuple[str, int], tuple[float, float, float]]:
    return mean_intervals(per_member.loc[per_member.index.intersection(members)], weights)


def _without_interval(values: dict) -> dict:
    return {key: (value, None, None) for key, value in values.items()}


def evaluation_table(
    backtest: Backtest, day: date, ks: list[int], model_key: str, draws: int = 200, seed: int = 7
) -> pd.DataFrame:
    """One row per (level, segment, method, metric, k): the long format of `offline_evaluation`; `model_key`
    names the model settings evaluated (`RecoSettings.model_key`).

    Per-member figures are computed once per method and relevant set; a segment averages its members, with
    a 95 % bootstrap interval over them (`draws` resamples, the same for every method; none for coverage,
    which is not a mean over members)."""
    rows = []
    for level_name, level in backtest.levels.items():
        segments = _segments(backtest, level.relevant)
        everyone = pd.Index(level.relevant["member_id"].unique())
        weights = bootstrap_weights(everyone, draws, seed)
        for method, ranking in level.rankings.items():
            accuracy = member_accuracy(ranking, level.relevant, ks)
            lists = member_lists(ranking, everyone, ks, level.popularity, level.item_class, level.unseen_share)
            for segment, (relevant, as_all) in segments.items():
                scored = pd.Index(relevant["member_id"].unique())
                if scored.empty:
                    continue
                own = accuracy if as_all else member_accuracy(ranking, relevant, ks)
                values = (
                    _means(own, scored, weights)
                    | _without_interval(coverage(ranking, scored, ks, level.recommendable))
                    | _means(lists, scored, weights)
                )
                rows += [
                    (level_name, segment, method, metric, k, value, low, high, len(scored))
                    for (metric, k), (value, low, high) in values.items()
                ]
    table = pd.DataFrame(rows, columns=SCHEMA.names[3:-1]).assign(model_key=model_key)
    table.insert(0, "test_end_date", backtest.split.test_end)
    table.insert(0, "train_end_date", backtest.split.train_end)
    table.insert(0, "as_of_date", day)
    return table[SCHEMA.names]


def settings_table(backtest: Backtest, day: date, settings: RecoSettings) -> pd.DataFrame:
    """`evaluation_table` with the cut-offs, model key and bootstrap of `settings` (the asset's and tuning's)."""
    return evaluation_table(
        backtest,
        day,
        settings.evaluation_ks,
        settings.model_key(),
        settings.evaluation_bootstrap_draws,
        settings.evaluation_seed,
    )


@dataclass(frozen=True)
class GateVerdict:
    passed: bool
    evaluated: bool
    model: float
    best_baseline: str
    baseline: float
    threshold: float

    def explain(self) -> str:
        if not self.evaluated:
            return "not evaluated: no offline evaluation of the day, or no member to score in it"
        relation = ">=" if self.passed else "<"
        return (
            f"model NDCG@{GATE_K} {self.model:.4f} {relation} threshold {self.threshold:.4f} "
            f"(best baseline {self.best_baseline} {self.baseline:.4f})"
        )


def quality_gate(table: pd.DataFrame | None, margin: float) -> GateVerdict:
    """Passes when the model's NDCG@10 over subclass-brands is at least (1 - margin) x the best baseline's.

    Without an evaluation (no table, or no member to score) it fails closed and says it was not evaluated
    (`gate_unevaluated` decides what such a day publishes).
    """
    if table is None or table.empty:
        return GateVerdict(False, False, 0.0, "", 0.0, 0.0)
    overall = table[
        (table["level"] == GATE_LEVEL)
        & (table["segment"] == "all")
        & (table["metric"] == GATE_METRIC)
        & (table["k"] == GATE_K)
    ].set_index("method")["value"]
    if MODEL not in overall.index:
        return GateVerdict(False, False, 0.0, "", 0.0, 0.0)
    baselines = overall.reindex([b for b in BASELINES if b in overall.index])
    best = baselines.idxmax()
    threshold = (1.0 - margin) * float(baselines[best])
    model = float(overall[MODEL])
    return GateVerdict(model >= threshold, True, model, best, float(baselines[best]), threshold)


def comparison_plot(table: pd.DataFrame, path: Path) -> Path:
    """Bars of every method per headline metric, one panel per level (segment `all`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    headline = [("ndcg", 10), ("recall", 10), ("map", 10), ("hit_rate", 10), ("recall", 50), ("coverage", 50)]
    levels = [level for level in ("subclass_brand", "style") if (table["level"] == level).any()]
    figure, axes = plt.subplots(len(levels), 1, figsize=(12, 4.5 * len(levels)), squeeze=False)
    for axis, level in zip(axes[:, 0], levels, strict=True):
        rows = table[(table["level"] == level) & (table["segment"] == "all")]
        rows = rows.assign(name=rows["metric"] + "@" + rows["k"].astype(str))
        wide = rows.pivot_table(index="name", columns="method", values="value")
        wide = wide.reindex([f"{m}@{k}" for m, k in headline]).dropna(how="all")
        wide.plot.bar(ax=axis, rot=0, width=0.85)
        axis.set_title(f"{level}: model vs baselines and ablations (train through {rows['train_end_date'].iloc[0]})")
        axis.legend(ncol=4, fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
