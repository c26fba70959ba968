"""The `offline_evaluation` table of a backtest, the quality gate over it, and the comparison plot."""

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from reco_assets.evaluation import champion
from reco_assets.evaluation.backtest import Backtest
from reco_assets.evaluation.metrics import (
    bootstrap_weights,
    mean_intervals,
    member_lists,
    segment_coverage,
    subset_accuracy,
)
from reco_assets.pipeline.methods import MODEL, SIMPLEST_FIRST
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
PUBLISHED = "published"


def _segments(backtest: Backtest, relevant: pd.DataFrame, cold_start: int) -> dict[str, tuple[np.ndarray, bool]]:
    """Segment -> (its relevant items: a mask over the rows of `relevant`, whether they are those of `all` for
    its members: a cohort is)."""
    little = backtest.members.loc[backtest.members["rated_groups"] <= cold_start, "member_id"]
    new = relevant["new"].to_numpy(dtype=bool)
    segments = {
        "all": (np.ones(len(relevant), dtype=bool), True),
        "new_styles": (new, False),
        "returning_styles": (~new, False),
        "little_history": (relevant["member_id"].isin(little).to_numpy(), True),
    }
    for cohort, members in backtest.members.groupby("cohort"):
        segments[cohort] = (relevant["member_id"].isin(members["member_id"]).to_numpy(), True)
    return segments


KEY_STRIDE = 1 << 32
"""Row key of a member scored at an origin: origin x KEY_STRIDE + the member's position among the origin's
scored members (at most `evaluation_max_members`). Integers, as the figures are indexed by them thousands of
times a day."""


def _rekey(frame: pd.DataFrame, origin: int, positions: pd.Series) -> pd.DataFrame:
    """Rows (indexed by member id) keyed by (origin, member): a member scored at two origins counts twice."""
    at = positions.reindex(frame.index).to_numpy(dtype=np.int64)  # fails on a member not scored at the origin
    return frame.set_axis(pd.Index(origin * KEY_STRIDE + at), axis=0)


@dataclass
class Pooled:
    """A level's per-member figures over the origins: (segment, method) -> rows keyed by `KEY_STRIDE` keys."""

    accuracy: dict[tuple[str, str], pd.DataFrame]
    lists: dict[tuple[str, str], pd.DataFrame]
    coverage: dict[tuple[str, str], dict]  # the mean over origins
    cohort: pd.Series  # row key -> the member's cohort at that origin
    origin: pd.Series  # row key -> origin index
    member: pd.Series  # row key -> member id


def pool(backtests: list[Backtest], level_name: str, ks: list[int], cold_start: int) -> Pooled:
    accuracy, lists, coverages, cohorts, origins, member_of = {}, {}, {}, [], [], []
    for origin, backtest in enumerate(backtests):
        level = backtest.levels.get(level_name)
        if level is None:
            continue
        members = backtest.members.set_index("member_id")
        positions = pd.Series(np.arange(len(members)), index=members.index)
        cohorts.append(_rekey(members[["cohort"]], origin, positions)["cohort"])
        origins.append(pd.Series(origin, index=cohorts[-1].index))
        member_of.append(pd.Series(members.index.to_numpy(), index=cohorts[-1].index))
        everyone = pd.Index(level.relevant["member_id"].unique())
        segments = _segments(backtest, level.relevant, cold_start)
        member_ids = level.relevant["member_id"]
        scored = {name: pd.Index(member_ids[mask].unique()) for name, (mask, _) in segments.items()}
        scored = {name: ids for name, ids in scored.items() if not ids.empty}
        # segments of their own relevant items (new or returning styles) are scored against those only
        own_items = {name: mask for name, (mask, as_all) in segments.items() if not as_all and name in scored}
        for method, ranking in level.rankings.items():
            accuracy_of = subset_accuracy(ranking, level.relevant, ks, {"all": segments["all"][0]} | own_items)
            every = accuracy_of["all"]
            per_list = member_lists(ranking, everyone, ks, level.popularity, level.item_class, level.unseen_share)
            covered = segment_coverage(ranking, scored, ks, level.recommendable)
            for segment, segment_members in scored.items():
                own = every.loc[segment_members] if segments[segment][1] else accuracy_of[segment]
                key = (segment, method)
                accuracy.setdefault(key, []).append(_rekey(own, origin, positions))
                listed = per_list.loc[per_list.index.intersection(segment_members)]
                lists.setdefault(key, []).append(_rekey(listed, origin, positions))
                coverages.setdefault(key, []).append(covered[segment])
    return Pooled(
        {key: pd.concat(frames) for key, frames in accuracy.items()},
        {key: pd.concat(frames) for key, frames in lists.items()},
        {key: {m: sum(c[m] for c in each) / len(each) for m in each[0]} for key, each in coverages.items()},
        pd.concat(cohorts) if cohorts else pd.Series(dtype=str),
        pd.concat(origins) if origins else pd.Series(dtype=int),
        pd.concat(member_of) if member_of else pd.Series(dtype="int64"),
    )


def member_weights(members: pd.Series, draws: int, seed: int) -> pd.DataFrame:
    """Bootstrap weights over the rows (`members`: row key -> member id), drawn per member (a cluster
    bootstrap): a member scored at several origins is resampled as one, so the intervals do not count their
    origins as independent."""
    ids = members.to_numpy()
    drawn = bootstrap_weights(pd.Index(pd.unique(ids)), draws, seed)
    return drawn[ids].set_axis(members.index, axis=1)


def ndcg_at_gate(pooled: Pooled) -> pd.DataFrame:
    """NDCG@10 per scored member of every origin (rows) and method (columns; NaN where not ranked)."""
    gate = (GATE_METRIC, GATE_K)
    overall = {method: frame for (segment, method), frame in pooled.accuracy.items() if segment == "all"}
    return pd.DataFrame({method: frame[gate] for method, frame in overall.items() if gate in frame.columns})


def _choices(
    pooled: Pooled, weights: pd.DataFrame, min_members: int, before: int, candidates: tuple[str, ...]
) -> pd.DataFrame:
    """The champions chosen on the origins before `before` (the reported ones, from 1, when there are any;
    else the first), among the candidates ranked at the latest of them, on the members of those origins
    where every one of these was ranked (the blend only from its first fit on)."""
    per_unit = ndcg_at_gate(pooled)
    per_unit = per_unit[[m for m in per_unit.columns if m in candidates]]  # the ablations count for nothing here
    origin = pooled.origin.reindex(per_unit.index)
    history = per_unit[(origin >= (1 if before > 1 else 0)) & (origin < before)]
    if not history.empty:
        latest = history[origin.reindex(history.index) == origin.reindex(history.index).max()]
        history = history[latest.columns[latest.notna().all()]].dropna()
    return champion.choose(history, pooled.cohort, weights, min_members, candidates)


def _published(pooled: Pooled, weights: pd.DataFrame, min_members: int, candidates: tuple[str, ...]) -> None:
    """Adds method `published`: at every origin after the first, each member scored as the lists of their
    cohort's champion chosen on the origins before (what would have been published then)."""
    origins = sorted(set(pooled.origin))
    chosen = {}
    for origin in origins[1:]:
        champions = _choices(pooled, weights, min_members, origin, candidates)
        chosen[origin] = champions.set_index("cohort")["method"]
    for (segment, method), frame in list(pooled.accuracy.items()):
        if method != MODEL.name:
            continue
        rows = []
        for origin, methods in chosen.items():
            keys = frame.index[pooled.origin.reindex(frame.index) == origin]
            for cohort_method, members in pd.Series(keys, index=keys).groupby(
                pooled.cohort.reindex(keys).map(methods).fillna(MODEL.name)
            ):
                source = pooled.accuracy.get((segment, cohort_method))
                if source is not None:
                    rows.append(source.loc[source.index.intersection(members.index)])
        if rows:
            pooled.accuracy[(segment, PUBLISHED)] = pd.concat(rows)


def evaluation_table(
    backtests: list[Backtest],
    day: date,
    ks: list[int],
    model_key: str,
    draws: int = 200,
    seed: int = 7,
    cold_start: int = 2,
    min_members: int = 50,
    candidates: tuple[str, ...] = SIMPLEST_FIRST,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The long format of `offline_evaluation` (one row per level, segment, method, metric and k) over the
    reported origins, and the day's champions chosen on them (`champion.choose`). The first origin only fits
    what later ones need; the reported ones are those with a champion chosen before them (`published`), so
    that every method is scored on the same members (all but the first when there is no champion).

    Per-member figures are computed once per origin, method and relevant set; a figure averages the scored
    members of every reported origin, with a 95 % bootstrap interval over them (`draws` resamples, the same
    for every method; none for coverage, which is not a mean over members and is averaged over origins).
    `published` scores each member with the lists of the champion chosen on the origins before theirs."""
    rows, champions = [], pd.DataFrame(columns=champion.COLUMNS)
    first_reported = min(1, len(backtests) - 1)  # one backtest: it is reported
    for level_name in ("subclass_brand", "style"):
        pooled = pool(backtests, level_name, ks, cold_start)
        if not pooled.accuracy:
            continue
        weights = member_weights(pooled.member, draws, seed)
        if level_name == GATE_LEVEL:
            _published(pooled, weights, min_members, candidates)
            champions = _choices(pooled, weights, min_members, len(backtests), candidates)
            published = pooled.accuracy.get(("all", PUBLISHED))
            if published is not None and not published.empty:  # every method on the members `published` has
                first_reported = int(pooled.origin.reindex(published.index).min())
        reported = pooled.origin[pooled.origin >= first_reported].index
        for (segment, method), frame in pooled.accuracy.items():
            scored = frame.index.intersection(reported)
            if scored.empty:
                continue
            values = mean_intervals(frame.loc[scored], weights)
            if (segment, method) in pooled.lists:
                listed = pooled.lists[(segment, method)]
                values |= mean_intervals(listed.loc[listed.index.intersection(scored)], weights)
                values |= {key: (value, None, None) for key, value in pooled.coverage[(segment, method)].items()}
            rows += [
                (level_name, segment, method, metric, k, value, low, high, len(scored))
                for (metric, k), (value, low, high) in values.items()
            ]
    table = pd.DataFrame(rows, columns=SCHEMA.names[3:-1]).assign(model_key=model_key)
    table.insert(0, "test_end_date", backtests[-1].split.test_end)
    table.insert(0, "train_end_date", backtests[first_reported].split.train_end)
    table.insert(0, "as_of_date", day)
    return table[SCHEMA.names], champions


def settings_table(backtests: list[Backtest], day: date, settings: RecoSettings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`evaluation_table` with the cut-offs, model key, bootstrap and champion settings of `settings`."""
    return evaluation_table(
        backtests,
        day,
        settings.evaluation.ks,
        settings.model_key(),
        settings.evaluation.bootstrap_draws,
        settings.evaluation.seed,
        settings.evaluation.cold_start_max_groups,
        settings.evaluation.champion_min_members,
        tuple(settings.evaluation.champion_methods),
    )


@dataclass(frozen=True)
class GateVerdict:
    """What the day publishes: per cohort, the champion of the rolling backtest (`champion.choose`)."""

    evaluated: bool
    champion: str = ""
    value: float = 0.0
    best_baseline: str = ""
    baseline: float = 0.0
    methods: tuple[tuple[str, str], ...] = ()  # (cohort, method)

    @property
    def passed(self) -> bool:
        return self.evaluated

    def explain(self) -> str:
        if not self.evaluated:
            return "not evaluated: no offline evaluation of the day, or no member to score in it"
        counts = pd.Series(dict(self.methods)).value_counts()
        return (
            f"published: {', '.join(f'{m} in {n} cohorts' for m, n in counts.items())}; over everyone the champion "
            f"{self.champion} has NDCG@{GATE_K} {self.value:.4f} (best baseline {self.best_baseline} "
            f"{self.baseline:.4f})"
        )


def gate_verdict(champions: pd.DataFrame | None) -> GateVerdict:
    """Evaluated when the rolling backtest chose champions; fails closed otherwise (`gate_unevaluated` decides
    what such a day publishes). A baseline winning is no failure: the day then publishes the baseline."""
    if champions is None or champions.empty:
        return GateVerdict(False)
    overall = champions[champions["cohort"] == "all"].iloc[0]
    cohorts = champions[champions["cohort"] != "all"]
    return GateVerdict(
        True,
        str(overall["method"]),
        float(overall["ndcg"]),
        str(overall["best_baseline"]),
        float(overall["best_baseline_ndcg"]),
        tuple(zip(cohorts["cohort"], cohorts["method"], strict=True)),
    )


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
