"""The factor model's similarity of subclass-brands: where sessions are too few to tie a group to others.

Two groups are alike when members who pick one pick the other: the cosine of their factors. It fills a
group's list of similar groups after the neighbours its sessions give it (`pipeline/neighbors.py`): on a
wide catalogue most groups share too few sessions with any other to have a neighbour of their own, but
every group someone rated has factors. A plain numpy product over blocks of groups: the factors are one row
per group (the catalogue's size, never the events'), and each block keeps only its best columns.
"""

import numpy as np
import pyarrow as pa

BLOCK_CELLS = 4_000_000
"""Group x group cosines held at once (16 MB of float32)."""


def factor_neighbors(ids: np.ndarray, factors: np.ndarray, per_group: int) -> pa.Table:
    """Each group's `per_group` most similar others by the cosine of `factors` (one row per id of `ids`),
    positive cosines only, ties by the smaller id (at the cut, numpy's partition picks among equals):
    (`subclass_brand_id`, `neighbor_id`, `rank` from 1, `cosine`)."""
    order = np.argsort(ids, kind="stable")
    ids, factors = ids[order], np.asarray(factors, np.float32)[order]
    norms = np.linalg.norm(factors, axis=1, keepdims=True)
    unit = np.divide(factors, norms, out=np.zeros_like(factors), where=norms > 0)
    n, keep = len(ids), min(per_group, max(len(ids) - 1, 0))
    sources, neighbors, ranks, cosines = [], [], [], []
    block = max(1, BLOCK_CELLS // max(n, 1))
    for start in range(0, n if keep else 0, block):
        scores = unit[start : start + block] @ unit.T
        rows = np.arange(len(scores))
        scores[rows, start + rows] = -np.inf  # never its own neighbour
        # the best `keep` of each row, then ordered by cosine, ties by the smaller id (columns are id-sorted)
        best = np.sort(np.argpartition(-scores, keep - 1, axis=1)[:, :keep], axis=1)
        chosen = np.take_along_axis(scores, best, axis=1)
        ranked = np.argsort(-chosen, axis=1, kind="stable")
        best, chosen = np.take_along_axis(best, ranked, axis=1), np.take_along_axis(chosen, ranked, axis=1)
        positive = chosen > 0
        sources.append(np.repeat(ids[start : start + len(scores)], positive.sum(axis=1)))
        neighbors.append(ids[best[positive]])
        ranks.append((np.cumsum(positive, axis=1)[positive]).astype(np.int32))
        cosines.append(chosen[positive].astype(np.float64))
    empty = (np.array([], np.int64),) * 2 + (np.array([], np.int32), np.array([], np.float64))
    parts = (sources, neighbors, ranks, cosines)
    columns = [np.concatenate(part) if part else none for part, none in zip(parts, empty, strict=True)]
    return pa.table(dict(zip(("subclass_brand_id", "neighbor_id", "rank", "cosine"), columns, strict=True)))


def model_similarity(items: pa.Table, engine: str, per_group: int) -> pa.Table:
    """`factor_neighbors` of a day's models' group rows (`cohort`, `id`, `factors`): those of the cohort
    with the most groups (every cohort holds the same under a global model; ties by name), without the
    softmax engine's bias, which is popularity, not likeness."""
    if items.num_rows == 0:
        return factor_neighbors(np.array([], np.int64), np.zeros((0, 1), np.float32), per_group)
    cohorts = items.column("cohort").to_numpy(zero_copy_only=False)
    labels, counts = np.unique(cohorts, return_counts=True)  # sorted labels: the first of the largest wins
    rows = np.flatnonzero(cohorts == labels[np.argmax(counts)])
    factors = np.stack(items.column("factors").to_numpy(zero_copy_only=False)[rows]).astype(np.float32)
    if engine == "softmax":
        factors = factors[:, :-1]
    return factor_neighbors(items.column("id").to_numpy()[rows], factors, per_group)
