"""The random baseline: a seeded shuffle of the candidates per member (pandas), the floor any ranking must
clear. The other baselines (popularity, cohort popularity, repeat) are ranking methods of the daily pass
(`pipeline/methods.py`), so that a baseline that wins can be published as it was scored.

Returns a ranking frame (`member_id`, `item_id`, `score`, `rank` 1..k).
"""

import numpy as np
import pandas as pd


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
