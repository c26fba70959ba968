"""Baselines every model must beat, ranking the same candidates for the same members (pandas).

Each returns a ranking frame (`member_id`, `item_id`, `score`, `rank` 1..k); ties break by item id.
- popularity: members who bought or carted the item in a recent window, the same list for everyone;
- cohort_popularity: the same count within the member's cohort;
- repeat: the member's own rated items by rating, then the popular ones (repeat behaviour);
- random: a seeded shuffle of the candidates per member.
"""

import numpy as np
import pandas as pd


def _top_k(scored: pd.DataFrame, k: int) -> pd.DataFrame:
    """Highest `score` first per member, item id breaking ties; keeps `k` rows per member."""
    ordered = scored.sort_values(["member_id", "score", "item_id"], ascending=[True, False, True])
    ordered = ordered.drop_duplicates(["member_id", "item_id"])
    ordered["rank"] = ordered.groupby("member_id").cumcount() + 1
    return ordered[ordered["rank"] <= k][["member_id", "item_id", "score", "rank"]].reset_index(drop=True)


def _counts(interactions: pd.DataFrame, candidates: np.ndarray, by: list[str]) -> pd.DataFrame:
    """Distinct members per (`by`..., item) among the candidates, zero for candidates nobody touched."""
    touched = interactions[interactions["item_id"].isin(candidates)].drop_duplicates(["member_id", "item_id"])
    return touched.groupby(by + ["item_id"]).size().rename("score").reset_index()


def popularity(members: pd.DataFrame, interactions: pd.DataFrame, candidates: np.ndarray, k: int) -> pd.DataFrame:
    counts = _counts(interactions, candidates, [])
    every = pd.DataFrame({"item_id": candidates}).merge(counts, on="item_id", how="left").fillna({"score": 0.0})
    top = _top_k(every.assign(member_id=0), k).drop(columns="member_id")
    return members[["member_id"]].merge(top, how="cross")


def cohort_popularity(
    members: pd.DataFrame, interactions: pd.DataFrame, candidates: np.ndarray, k: int
) -> pd.DataFrame:
    """`members` and `interactions` carry the member's `cohort`."""
    counts = _counts(interactions, candidates, ["cohort"])
    lists = []
    for cohort, group in counts.groupby("cohort"):
        top = _top_k(group.assign(member_id=0), k)
        lists.append(top.drop(columns="member_id").assign(cohort=cohort))
    by_cohort = pd.concat(lists) if lists else pd.DataFrame(columns=["item_id", "score", "rank", "cohort"])
    ranked = members[["member_id", "cohort"]].merge(by_cohort, on="cohort").drop(columns="cohort")
    # candidates nobody in the cohort touched fill the list after the popular ones, in global order
    rest = popularity(members, interactions, candidates, k).assign(score=lambda f: -f["rank"].astype(float))
    return _top_k(pd.concat([ranked.assign(score=ranked["score"] + k + 1), rest]), k)


def repeat(
    members: pd.DataFrame, ratings: pd.DataFrame, interactions: pd.DataFrame, candidates: np.ndarray, k: int
) -> pd.DataFrame:
    """`ratings`: (`member_id`, `item_id`, `rating`) of the training window."""
    own = ratings[ratings["member_id"].isin(members["member_id"]) & ratings["item_id"].isin(candidates)]
    own = own[own["rating"] > 0]
    popular = popularity(members, interactions, candidates, k)
    # the member's own items first (score above any popularity fill), then the popular ones by rank
    first = own.assign(score=own["rating"].astype(float) + k + 1)[["member_id", "item_id", "score"]]
    then = popular.assign(score=(k + 1 - popular["rank"]).astype(float))[["member_id", "item_id", "score"]]
    return _top_k(pd.concat([first, then]), k)


def random(members: pd.DataFrame, candidates: np.ndarray, k: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_members, n_items = len(members), len(candidates)
    keep = min(k, n_items)
    order = np.argsort(rng.random((n_members, n_items)), axis=1)[:, :keep]
    return pd.DataFrame(
        {
            "member_id": np.repeat(members["member_id"].to_numpy(), keep),
            "item_id": np.asarray(candidates)[order].ravel(),
            "score": np.tile(np.arange(keep, 0, -1, dtype=float), n_members),
            "rank": np.tile(np.arange(1, keep + 1), n_members),
        }
    )
