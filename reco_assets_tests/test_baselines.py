"""Baselines and the quality gate, by hand on small frames."""

import numpy as np
import pandas as pd

from reco_assets.evaluation import baselines
from reco_assets.evaluation.report import quality_gate

CANDIDATES = np.array([1, 2, 3, 4, 5], dtype=np.int64)
MEMBERS = pd.DataFrame({"member_id": [10, 20], "cohort": ["women_1", "men_2"]})
# item 3: three members; item 1: two; item 5: one (member 20's cohort only); item 9 is not a candidate
RECENT = pd.DataFrame(
    {
        "member_id": [10, 11, 12, 10, 11, 20, 13, 13],
        "item_id": [3, 3, 3, 1, 1, 5, 9, 9],
        "cohort": ["women_1", "women_1", "men_2", "women_1", "women_1", "men_2", "men_2", "men_2"],
    }
)


def lists(ranking: pd.DataFrame) -> dict[int, list[int]]:
    ordered = ranking.sort_values(["member_id", "rank"])
    return {m: group["item_id"].tolist() for m, group in ordered.groupby("member_id")}


def test_popularity_counts_members_not_events_and_breaks_ties_by_id():
    twice = pd.concat([RECENT, RECENT])  # repeated events of the same members change nothing
    assert lists(baselines.popularity(MEMBERS, twice, CANDIDATES, 4)) == {10: [3, 1, 5, 2], 20: [3, 1, 5, 2]}


def test_cohort_popularity_uses_the_members_cohort_then_the_global_order():
    # women_1: 1 (2 members), 3 (2 members) -> tie by id; men_2: 3 (1), 5 (1) -> tie by id; then global order
    assert lists(baselines.cohort_popularity(MEMBERS, RECENT, CANDIDATES, 5)) == {
        10: [1, 3, 5, 2, 4],
        20: [3, 5, 1, 2, 4],
    }


def test_repeat_puts_own_positive_ratings_first():
    own = pd.DataFrame({"member_id": [10, 10, 10, 20], "item_id": [4, 2, 9, 5], "rating": [3.0, 40.0, 50.0, -5.0]})
    # member 10: 2 (40), 4 (3); 9 is not a candidate; member 20's only rating is negative
    assert lists(baselines.repeat(MEMBERS, own, RECENT, CANDIDATES, 4)) == {10: [2, 4, 3, 1], 20: [3, 1, 5, 2]}


def test_random_is_a_seeded_permutation_per_member():
    first = baselines.random(MEMBERS, CANDIDATES, 5, seed=3)
    again = baselines.random(MEMBERS, CANDIDATES, 5, seed=3)
    pd.testing.assert_frame_equal(first, again)
    for items in lists(first).values():
        assert sorted(items) == CANDIDATES.tolist()
    assert lists(first) != lists(baselines.random(MEMBERS, CANDIDATES, 5, seed=4))


def gate_table(model: float, popularity: float, repeat: float) -> pd.DataFrame:
    rows = [("model", model), ("popularity", popularity), ("repeat", repeat), ("global_als", 0.99)]
    return pd.DataFrame(
        [
            {"level": "subclass_brand", "segment": "all", "method": m, "metric": "ndcg", "k": 10, "value": v}
            for m, v in rows
        ]
        + [{"level": "style", "segment": "all", "method": "model", "metric": "ndcg", "k": 10, "value": 0.0}]
    )


def test_gate_compares_the_model_with_the_best_baseline_within_the_margin():
    assert quality_gate(gate_table(0.20, 0.10, 0.15), margin=0.1).passed
    assert quality_gate(gate_table(0.14, 0.10, 0.15), margin=0.1).passed  # 0.14 >= 0.9 x 0.15
    failed = quality_gate(gate_table(0.13, 0.10, 0.15), margin=0.1)
    assert not failed.passed and failed.best_baseline == "repeat"  # ablations (0.99) are not baselines
    assert "0.1300 < threshold 0.1350" in failed.explain()


def test_gate_without_an_evaluation_fails_closed_and_says_so():
    verdict = quality_gate(None, margin=0.1)
    assert not verdict.passed and not verdict.evaluated and "not evaluated" in verdict.explain()
