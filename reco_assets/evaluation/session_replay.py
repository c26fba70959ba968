"""Session re-ranking evaluated by replay, as rows of `offline_evaluation` (level `session_rerank`).

At each origin of the rolling backtest, a scored member's daily list is the ranking their cohort's champion
method gave (its first `max(evaluation.ks)` subclass-brands), fixed for the origin's test window. The test
window's sessions are replayed in time order (product events with a style and a group, by `event_time`,
ties by `event_id`): at each step the next product event's subclass-brand is the target, counted only when
the session has not shown it yet (carting the style just viewed is no hit), and its rank is read in the
daily list and in the daily list re-ranked with the session so far (`serving.rerank`, the API's function, at
the level of subclass-brands: an item is a group; its neighbours are the origin's similar groups as served,
`style_lists.blended_neighbors`). MRR and hit rate at `K`, per segment: the steps after one event of the
session (`one_event`) and after two or more (`two_or_more_events`).

The re-ranking's weights are fitted on the origins before the first reported one (a grid, `WEIGHT_GRID`, best
MRR at `K` over every step), then used unchanged on the reported origins: nothing it learned comes after
the days it is scored on. The replay runs on the driver over the scored members' test-window events, which
the backtest's member sample bounds (`evaluation.max_members`).
"""

import itertools
from dataclasses import dataclass, replace
from datetime import date

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from reco_assets.evaluation.backtest import Backtest
from reco_assets.evaluation.item_to_item import COLUMNS, level_rows, per_target
from reco_assets.pipeline import stages
from reco_assets.pipeline.catalog import group_hierarchy
from reco_assets.pipeline.style_lists import blended_neighbors
from reco_assets.serving.rerank import PRODUCT_EVENTS, Weights, reranked, session_of
from reco_assets.settings import RecoSettings

K = 20
LEVEL = "session_rerank"
DAILY, RERANKED = "daily", "reranked"
METHODS = (DAILY, RERANKED)
ONE_EVENT, MORE_EVENTS = "one_event", "two_or_more_events"
WEIGHT_GRID = {"subclass_boost": (0.0, 0.25, 0.5, 1.0), "neighbor_weight": (0.0, 0.1, 0.25)}
"""The weights tried on the fitting origins. `group_boost` and `neighbor_groups` stay the settings': the replay
cannot measure a boost of the session's own groups, as its targets are groups the session has not shown."""


@dataclass
class Replay:
    """What one origin's replay reads, on the driver."""

    daily: dict[int, list[int]]
    """Member -> the subclass-brands of their daily list, best first."""
    sessions: list[tuple[int, list[list], list[int]]]
    """(member, its session's entries `[event_time, event_type, style_id, event_id]`, their groups), per session."""
    similar: dict[str, list[str]]
    """Group -> its similar groups as served, best first (ids as text, as the API's)."""
    subclasses: dict[str, str]
    """Group -> its subclass key."""


def replay_inputs(
    reader: stages.Reader,
    backtest: Backtest,
    champions: pd.DataFrame,
    factor_similar: DataFrame | None,
    settings: RecoSettings,
) -> Replay | None:
    """The daily lists, test-window sessions, similar groups and subclasses of one origin; None when it ranked
    nobody."""
    level = backtest.levels.get("subclass_brand")
    if level is None or backtest.members.empty:
        return None
    method_of = dict(zip(champions["cohort"], champions["method"]))
    lists = []
    for cohort, members in backtest.members.groupby("cohort")["member_id"]:
        ranking = level.rankings.get(method_of.get(cohort, "model"), level.rankings["model"])
        lists.append(ranking[ranking["member_id"].isin(members)])
    ranked = pd.concat(lists).sort_values(["member_id", "rank"])
    daily = {member: rows.tolist() for member, rows in ranked.groupby("member_id")["item_id"]}

    split = backtest.split
    scored = reader.session.createDataFrame(backtest.members[["member_id"]], "member_id long")
    events = (
        reader.events(split.test_end, (split.test_end - split.train_end).days)
        .where(
            F.col("event_type").isin(*PRODUCT_EVENTS)
            & F.col("style_id").isNotNull()
            & F.col("subclass_brand_id").isNotNull()
        )
        .join(F.broadcast(scored), "member_id", "left_semi")
        .select("member_id", "session_id", "event_time", "event_id", "event_type", "style_id", "subclass_brand_id")
        .toPandas()  # the sampled members' product events of the test window
        .sort_values(["member_id", "session_id", "event_time", "event_id"])
    )
    sessions = []
    for (member, _), rows in events.groupby(["member_id", "session_id"], sort=False):
        entries = [[str(t), kind, str(s), e] for t, kind, s, e in zip(*(rows[c] for c in _ENTRY))]
        sessions.append((member, entries, rows["subclass_brand_id"].astype(str).tolist()))

    neighbours = stages.neighbors(reader, split.train_end, settings)
    served = blended_neighbors(neighbours, factor_similar, settings.neighbors.neighbors_per_group).toPandas()
    served = served.sort_values(["subclass_brand_id", "score", "group_id"], ascending=[True, False, True])
    similar = {str(g): rows.astype(str).tolist() for g, rows in served.groupby("subclass_brand_id")["group_id"]}
    hierarchy = group_hierarchy(reader.day("catalog", split.train_end)).select("subclass_brand_id", "subclass_key")
    subclasses = {str(g): s for g, s in hierarchy.toPandas().itertuples(index=False) if s is not None}
    return Replay(daily, sessions, similar, subclasses)


_ENTRY = ("event_time", "event_type", "style_id", "event_id")


def replay_ranks(replay: Replay, weights: Weights) -> pd.DataFrame:
    """One row per step of every session (member_id, events: the session's events before it, and the rank
    of its target in the `daily` and `reranked` lists, NaN when absent): a step's target is the next product
    event's group, counted only when the session has not shown it yet."""
    rows = []
    similar = {g: [(n, n) for n in near] for g, near in replay.similar.items()}  # (key, group): a group is both
    for member, entries, groups in replay.sessions:
        daily = [str(g) for g in replay.daily.get(member, [])]
        itself = {g: g for g in daily}
        position = {g: at for at, g in enumerate(daily, start=1)}
        style_groups = {entry[2]: group for entry, group in zip(entries, groups)}
        for step in range(1, len(entries)):
            target = groups[step]
            if target in groups[:step]:
                continue
            session = session_of(entries[:step], style_groups, replay.subclasses)
            near = [similar.get(group, []) for group in session.groups[: weights.neighbor_groups]]
            ranked = reranked(daily, itself, replay.subclasses, session, near, weights)
            moved = next((at for at, g in enumerate(ranked, start=1) if g == target), np.nan)
            rows.append((member, step, position.get(target, np.nan), moved))
    return pd.DataFrame(rows, columns=["member_id", "events", DAILY, RERANKED])


def fitted_weights(replays: list[Replay], settings: RecoSettings) -> tuple[Weights, float]:
    """The weights of `WEIGHT_GRID` with the best re-ranked MRR at `K` over every step of `replays` (the
    settings' own when there is nothing to fit on), and that MRR."""
    chosen = settings.sessions.weights()
    steps = [replay for replay in replays if replay.sessions]
    if not steps:
        return chosen, float("nan")
    best = (float("-inf"), chosen)
    for values in itertools.product(*WEIGHT_GRID.values()):
        weights = replace(chosen, **dict(zip(WEIGHT_GRID, values)))
        ranks = pd.concat([replay_ranks(replay, weights) for replay in steps], ignore_index=True)
        mrr = per_target(ranks, (RERANKED,), K)[(RERANKED, "mrr")].mean() if len(ranks) else float("-inf")
        if mrr > best[0]:
            best = (mrr, weights)
    return best[1], best[0]


def session_rows(replays: dict[date, Replay | None], first: date, settings: RecoSettings) -> tuple[pd.DataFrame, dict]:
    """The `session_rerank` rows (`COLUMNS`) of the origins from `first` on, with weights fitted on those
    before it; and what was fitted (for the run's metadata)."""
    fitting = [replay for day, replay in replays.items() if day < first and replay is not None]
    weights, fitted_mrr = fitted_weights(fitting, settings)
    reported = [
        replay_ranks(replay, weights).assign(origin=at)
        for at, (day, replay) in enumerate(replays.items())
        if day >= first and replay is not None
    ]
    fitted = {"weights": weights.__dict__, "fitting_mrr_at_20": round(fitted_mrr, 6), "fitting_origins": len(fitting)}
    if not reported:
        return pd.DataFrame(columns=COLUMNS), fitted
    ranks = pd.concat(reported, ignore_index=True)
    parts = [
        level_rows(LEVEL, ranks[chosen], METHODS, settings, k=K, segment=segment)
        for segment, chosen in ((ONE_EVENT, ranks["events"] == 1), (MORE_EVENTS, ranks["events"] >= 2))
        if chosen.any()
    ]
    return (pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)), fitted


def session_replays(
    reader: stages.Reader,
    rolling,
    champions: pd.DataFrame,
    factor_similar: dict[date, DataFrame | None],
    settings: RecoSettings,
) -> dict[date, Replay | None]:
    """Each origin's replay inputs (`replay_inputs`), by training day, oldest first, read through `reader` (a
    keeping one covering every origin's windows: `item_to_item.evaluation_reader`), with each origin's factor
    similarity (`item_to_item.origin_similarity`)."""
    return {
        b.split.train_end: replay_inputs(reader, b, champions, factor_similar.get(b.split.train_end), settings)
        for b in rolling.backtests
    }
