"""The metric definitions against `ranx` (an independent, well-kept implementation) and hand computation."""

import math

import numpy as np
import pandas as pd
import pytest

from reco_assets.evaluation.backtest import interaction_shares
from reco_assets.evaluation.metrics import accuracy_metrics, coverage, member_lists

ranx = pytest.importorskip("ranx", reason="ranx is a dev dependency: pip install -e .[dev]")

KS = [1, 3, 5, 10, 20]


def random_case(seed: int, members: int = 40, items: int = 60, list_length: int = 15):
    rng = np.random.default_rng(seed)
    ranked, relevant = [], []
    for member in range(members):
        listed = rng.choice(items, size=rng.integers(1, list_length + 1), replace=False)
        ranked += [(member, int(item), rank) for rank, item in enumerate(listed, 1)]
        # relevant items: some from the list, some outside it, 1..6 of them
        pool = np.concatenate([listed[: rng.integers(0, len(listed) + 1)], rng.choice(items, 4)])
        chosen = rng.choice(np.unique(pool), size=min(len(np.unique(pool)), rng.integers(1, 7)), replace=False)
        relevant += [(member, int(item)) for item in chosen]
    return (
        pd.DataFrame(ranked, columns=["member_id", "item_id", "rank"]),
        pd.DataFrame(relevant, columns=["member_id", "item_id"]),
    )


def with_ranx(ranked: pd.DataFrame, relevant: pd.DataFrame, ks: list[int]) -> dict[tuple[str, int], float]:
    qrels = ranx.Qrels({str(m): {str(i): 1 for i in group["item_id"]} for m, group in relevant.groupby("member_id")})
    run = ranx.Run(
        {
            str(m): {str(i): float(1000 - r) for i, r in zip(group["item_id"], group["rank"], strict=True)}
            for m, group in ranked.groupby("member_id")
        }
    )
    names = {
        "precision": "precision",
        "recall": "recall",
        "ndcg": "ndcg",
        "map": "map",
        "mrr": "mrr",
        "hit_rate": "hit_rate",
    }
    metrics = [f"{name}@{k}" for name in names.values() for k in ks]
    scores = ranx.evaluate(qrels, run, metrics, make_comparable=True)
    return {(ours, k): scores[f"{theirs}@{k}"] for ours, theirs in names.items() for k in ks}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_accuracy_metrics_agree_with_ranx(seed):
    ranked, relevant = random_case(seed)
    ours = accuracy_metrics(ranked, relevant, KS)
    theirs = with_ranx(ranked, relevant, KS)
    assert set(ours) == set(theirs)
    for key, value in theirs.items():
        assert ours[key] == pytest.approx(value, abs=1e-9), key


def test_members_without_a_list_score_zero_and_lists_without_relevance_are_ignored():
    ranked, relevant = random_case(4, members=10)
    lonely = pd.DataFrame({"member_id": [100, 100], "item_id": [1, 2]})  # relevant, never ranked
    stranger = pd.DataFrame({"member_id": [200], "item_id": [5], "rank": [1]})  # ranked, nothing relevant
    ours = accuracy_metrics(pd.concat([ranked, stranger]), pd.concat([relevant, lonely]), KS)
    theirs = with_ranx(ranked, relevant, KS)
    for key, value in theirs.items():
        assert ours[key] == pytest.approx(value * 10 / 11, abs=1e-9), key


def test_accuracy_by_hand():
    # member 1: list a b c d, relevant b d e -> hits at ranks 2 and 4
    ranked = pd.DataFrame({"member_id": [1] * 4, "item_id": [10, 11, 12, 13], "rank": [1, 2, 3, 4]})
    relevant = pd.DataFrame({"member_id": [1, 1, 1], "item_id": [11, 13, 14]})
    m = accuracy_metrics(ranked, relevant, [4])
    assert m[("precision", 4)] == pytest.approx(2 / 4)
    assert m[("recall", 4)] == pytest.approx(2 / 3)
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert m[("ndcg", 4)] == pytest.approx(dcg / idcg)
    assert m[("map", 4)] == pytest.approx((1 / 2 + 2 / 4) / 3)
    assert m[("mrr", 4)] == pytest.approx(1 / 2)
    assert m[("hit_rate", 4)] == 1.0


def test_beyond_accuracy_by_hand(spark):
    # two lists over a catalog of 10 items; item classes x/y; popularity from 3 training members
    ranked = pd.DataFrame(
        {"member_id": [1, 1, 1, 2, 2, 2], "item_id": [10, 11, 12, 10, 13, 14], "rank": [1, 2, 3, 1, 2, 3]}
    )
    training = pd.DataFrame({"member_id": [7, 8, 9, 7, 7], "item_id": [10, 10, 10, 11, 11]})
    shares, unseen = interaction_shares(spark.createDataFrame(training))
    assert shares[10] == pytest.approx(4 / 4) and shares[11] == pytest.approx(2 / 4) and unseen == 1 / 4
    item_class = pd.Series({10: "x", 11: "x", 12: "y", 13: "x", 14: "x"})
    members = pd.Index([1, 2])
    lists = member_lists(ranked, members, [2, 3], shares, item_class, unseen)
    m = coverage(ranked, members, [2, 3], 10) | lists.mean().to_dict()
    assert m[("coverage", 2)] == pytest.approx(3 / 10)  # 10, 11, 13
    assert m[("coverage", 3)] == pytest.approx(5 / 10)
    # novelty@2: member 1 -> (0 + 1) / 2, member 2 -> (0 + 2) / 2
    assert m[("novelty", 2)] == pytest.approx((0.5 + 1.0) / 2)
    assert m[("diversity", 3)] == pytest.approx((2 + 1) / 2)
    assert m[("diversity", 2)] == pytest.approx(1.0)


def test_bootstrap_intervals_cover_the_true_mean_as_often_as_they_say():
    """Members who convert with a known probability 0.3: over 300 samples of 400 members, the 95 % interval
    of the mean holds 0.3 in about 95 % of them (binomial spread of 300 trials: 0.92..0.98)."""
    from reco_assets.evaluation.metrics import bootstrap_weights, mean_intervals

    members = pd.Index(range(400), name="member_id")
    covered = 0
    for trial in range(300):
        rng = np.random.default_rng(1000 + trial)
        values = pd.DataFrame({("hit_rate", 10): rng.random(len(members)) < 0.3}, index=members).astype(float)
        ((mean, low, high),) = mean_intervals(values, bootstrap_weights(members, 200, seed=trial)).values()
        assert low <= mean <= high and mean == pytest.approx(values.to_numpy().mean())
        covered += low <= 0.3 <= high
    assert 0.92 <= covered / 300 <= 0.98


def test_bootstrap_intervals_shrink_with_more_members_and_are_paired_across_methods():
    from reco_assets.evaluation.metrics import bootstrap_weights, mean_intervals

    rng = np.random.default_rng(3)
    small, large = pd.Index(range(100)), pd.Index(range(10_000))
    widths = []
    for members in (small, large):
        values = pd.DataFrame({"x": rng.random(len(members))}, index=members)
        ((_, low, high),) = mean_intervals(values, bootstrap_weights(members, 200, seed=1)).values()
        widths.append(high - low)
    assert widths[1] < widths[0] / 5  # ~ 1 / sqrt(100) of the width
    # two methods scored on the same resamples: a method better by 0.1 for every member has its interval
    # exactly 0.1 higher (independent resamples would move the bounds apart by noise)
    base = rng.random(100)
    both = pd.DataFrame({"a": base, "b": base + 0.1}, index=small)
    intervals = mean_intervals(both, bootstrap_weights(small, 200, seed=2))
    assert np.allclose(np.subtract(intervals["b"], intervals["a"]), 0.1)
