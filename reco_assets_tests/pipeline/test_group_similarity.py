"""The factor model's group similarity against a plain Python cosine, pair by pair."""

import math

import numpy as np
import pytest

from reco_assets.pipeline import group_similarity
from reco_assets.pipeline.group_similarity import factor_neighbors


def _reference(ids, factors, per_group):
    def cosine(a, b):
        dot = sum(x * y for x, y in zip(a, b, strict=True))
        size = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
        return dot / size if size else 0.0

    out = []
    for i, a in enumerate(ids):
        others = sorted(((-cosine(factors[i], factors[j]), b) for j, b in enumerate(ids) if j != i))
        kept = [(b, -c) for c, b in others if -c > 0][:per_group]
        out += [(a, b, rank, c) for rank, (b, c) in enumerate(kept, start=1)]
    return sorted(out)


def test_a_hand_worked_catalogue():
    ids = np.array([30, 10, 20, 40])
    factors = np.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [-1.0, 0.0]])
    got = factor_neighbors(ids, factors, 2).to_pylist()
    near = 1 / math.sqrt(1.01)  # cos(10, 30)
    assert [(r["subclass_brand_id"], r["neighbor_id"], r["rank"]) for r in got] == [
        (10, 30, 1),
        (10, 20, 2),
        (20, 10, 1),  # 20 is orthogonal to 30 and 40: no positive cosine but 10's
        (30, 10, 1),  # 40 points away from everyone: no neighbour
    ]
    assert [r["cosine"] for r in got] == pytest.approx([near, 0.1 * near, 0.1 * near, near], rel=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_random_factors_over_several_blocks_match_the_plain_cosine(seed, monkeypatch):
    monkeypatch.setattr(group_similarity, "BLOCK_CELLS", 7 * 61)  # blocks of 7 groups, the last one short
    rng = np.random.default_rng(seed)
    ids = rng.choice(10_000, 61, replace=False)
    factors = rng.standard_normal((61, 5))
    factors[3] = 0.0  # a group without signal: no neighbour, and no one's neighbour
    ids[3] = 3
    got = sorted(tuple(r.values()) for r in factor_neighbors(ids, factors, 6).to_pylist())
    want = _reference(ids.tolist(), factors.tolist(), 6)
    assert [g[:3] for g in got] == [w[:3] for w in want]
    assert [g[3] for g in got] == pytest.approx([w[3] for w in want], rel=1e-5)
    assert not any(3 in g[:2] for g in got)


def test_a_days_models_give_the_similarity_of_their_widest_cohort_without_the_softmax_bias():
    import pyarrow as pa

    from reco_assets.pipeline.group_similarity import model_similarity

    # cohort "b" holds three groups, "a" two: "b" is read. The last column is the softmax bias: group 2's
    # huge bias would make it everyone's nearest if it counted
    items = pa.table(
        {
            "cohort": ["a", "a", "b", "b", "b"],
            "id": [1, 2, 1, 2, 3],
            "factors": [[9.0, 0.0, 0.0], [0.0, 9.0, 0.0], [1.0, 0.0, 0.1], [0.0, 1.0, 50.0], [1.0, 0.2, 5.0]],
        }
    )
    got = [(r["subclass_brand_id"], r["neighbor_id"]) for r in model_similarity(items, "softmax", 5).to_pylist()]
    assert got == [(1, 3), (2, 3), (3, 1), (3, 2)]
    with_bias = [(r["subclass_brand_id"], r["neighbor_id"]) for r in model_similarity(items, "implicit", 1).to_pylist()]
    assert with_bias == [(1, 3), (2, 3), (3, 2)]  # ALS factors have no bias column: all of them count
