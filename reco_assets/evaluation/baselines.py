"""The random baseline: a seeded shuffle of the candidates per member (pandas), the floor any ranking must
clear. The other baselines (popularity, cohort popularity, repeat) are ranking methods of the daily pass
(`pipeline/methods.py`), so that a baseline that wins can be published as it was scored.

Returns a ranking frame (`member_id`, `item_id`, `score`, `rank` 1..k).
"""

import numpy as np
import pandas as pd

BLOCK_CELLS = 4_000_000
"""Members x candidates drawn at once."""


def random(members: pd.DataFrame, candidates: np.ndarray, k: int, seed: int) -> pd.DataFrame:
    """Each member's candidates ordered by a uniform draw per candidate, the first `k` kept: the draws come
    block by block of members from one seeded stream (the same numbers as one draw of them all), and only the
    `k` smallest of a member's are sorted."""
    rng = np.random.default_rng(seed)
    n_members, n_items = len(members), len(candidates)
    keep = min(k, n_items)
    block = max(1, BLOCK_CELLS // max(n_items, 1))
    parts = []
    for start in range(0, n_members, block):
        draws = rng.random((min(block, n_members - start), n_items))
        if not 0 < keep < n_items:
            parts.append(np.argsort(draws, axis=1)[:, :keep])
            continue
        first = np.argpartition(draws, keep - 1, axis=1)[:, :keep]
        order = np.argsort(np.take_along_axis(draws, first, axis=1), axis=1)
        parts.append(np.take_along_axis(first, order, axis=1))
    order = np.concatenate(parts) if parts else np.empty((0, keep), dtype=np.int64)
    return pd.DataFrame(
        {
            "member_id": np.repeat(members["member_id"].to_numpy(), keep),
            "item_id": np.asarray(candidates)[order].ravel(),
            "score": np.tile(np.arange(keep, 0, -1, dtype=float), n_members),
            "rank": np.tile(np.arange(1, keep + 1), n_members),
        }
    )
