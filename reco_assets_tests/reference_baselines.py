"""An independent pandas reference of the baselines the daily pass ranks (`pipeline/methods.py`), for tests.

Each returns a ranking frame (`member_id`, `item_id`, `rank` 1..k) over every candidate, written as plain
sorts on explicit keys (no score encodings): popularity counts distinct members who did a relevant event
on the item in the window (`interactions`: `member_id`, `item_id`, `cohort`).
- popularity: overall count desc, then item id;
- cohort_popularity: count in the member's cohort desc, then overall count desc, then item id;
- repeat: the member's own positively rated items first, by rating desc then item id; then the rest by
  overall count desc, then item id.
"""

import numpy as np
import pandas as pd


def counts(interactions: pd.DataFrame, candidates: np.ndarray, by: list[str]) -> pd.DataFrame:
    """Distinct members per (`by`..., item) among the candidates (only the touched ones)."""
    touched = interactions[interactions["item_id"].isin(candidates)].drop_duplicates(["member_id", "item_id"])
    return touched.groupby(by + ["item_id"]).size().rename("count").reset_index()


def _overall(interactions: pd.DataFrame, candidates: np.ndarray) -> pd.DataFrame:
    every = pd.DataFrame({"item_id": np.asarray(candidates, dtype=np.int64)})
    return every.merge(counts(interactions, candidates, []), on="item_id", how="left").fillna({"count": 0})


def _ranked(frame: pd.DataFrame, keys: list[str], ascending: list[bool], k: int) -> pd.DataFrame:
    ordered = frame.sort_values(["member_id", *keys, "item_id"], ascending=[True, *ascending, True])
    ordered = ordered.assign(rank=ordered.groupby("member_id").cumcount() + 1)
    return ordered[ordered["rank"] <= k][["member_id", "item_id", "rank"]].reset_index(drop=True)


def popularity(members: pd.DataFrame, interactions: pd.DataFrame, candidates: np.ndarray, k: int) -> pd.DataFrame:
    frame = members[["member_id"]].merge(_overall(interactions, candidates), how="cross")
    return _ranked(frame, ["count"], [False], k)


def cohort_popularity(
    members: pd.DataFrame, interactions: pd.DataFrame, candidates: np.ndarray, k: int
) -> pd.DataFrame:
    """`members` and `interactions` carry the member's `cohort`."""
    in_cohort = counts(interactions, candidates, ["cohort"]).rename(columns={"count": "cohort_count"})
    frame = members[["member_id", "cohort"]].merge(_overall(interactions, candidates), how="cross")
    frame = frame.merge(in_cohort, on=["cohort", "item_id"], how="left").fillna({"cohort_count": 0})
    return _ranked(frame, ["cohort_count", "count"], [False, False], k)


def repeat(
    members: pd.DataFrame, ratings: pd.DataFrame, interactions: pd.DataFrame, candidates: np.ndarray, k: int
) -> pd.DataFrame:
    """`ratings`: (`member_id`, `item_id`, `rating`) of the training window."""
    own = ratings[ratings["rating"] > 0][["member_id", "item_id", "rating"]]
    frame = members[["member_id"]].merge(_overall(interactions, candidates), how="cross")
    frame = frame.merge(own, on=["member_id", "item_id"], how="left")
    mine = frame["rating"].notna()
    # own items: by rating only (their count plays no part); the others: by count only
    frame = frame.assign(
        own=mine.astype(int),
        own_rating=frame["rating"].fillna(0.0),
        fill_count=frame["count"].where(~mine, 0),
    )
    return _ranked(frame, ["own", "own_rating", "fill_count"], [False, False, False], k)
