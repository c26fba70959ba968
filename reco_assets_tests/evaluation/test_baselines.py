"""Baselines, the champion and the gate verdict: the baselines as ranking methods of the dense pass
(`rank_block`) by hand and against an independent pandas reference (`reference_baselines`), the random
baseline, `champion.choose` on hand-made per-member frames, and `report.gate_verdict`."""

import numpy as np
import pandas as pd
import pytest

from reco_assets.constants import COHORTS
from reco_assets.evaluation import baselines, champion
from reco_assets.evaluation.metrics import bootstrap_weights
from reco_assets.evaluation.report import gate_verdict
from reco_assets.pipeline.affinities import CohortItems, Hierarchy, RankParams, rank_block
from reco_assets.pipeline.methods import BASELINE_METHODS, SIMPLEST_FIRST, Method, Popularity
from reco_assets_tests import reference_baselines as reference

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
# RECENT counted by hand, aligned with CANDIDATES 1..5: members 10, 11, 12, 13, 20 have a cohort
OVERALL = [2, 0, 3, 0, 1]  # 1: {10, 11}; 3: {10, 11, 12}; 5: {20}
POPULARITY = {
    "women_1": Popularity(np.array([2.0, 0, 2, 0, 0]), 2, np.array(OVERALL, float), 5),  # 1, 3: {10, 11}
    "men_2": Popularity(np.array([0.0, 0, 1, 0, 1]), 3, np.array(OVERALL, float), 5),  # 3: {12}; 5: {20}
}
# member 10: 2 (40), then 4 and 5 tied (3) where 5 is the more popular; 9 is not a candidate
OWN = pd.DataFrame(
    {"member_id": [10, 10, 10, 10, 20], "item_id": [4, 2, 9, 5, 5], "rating": [3.0, 40.0, 50.0, 3.0, -5.0]}
)
BASELINES = tuple(Method(name) for name in BASELINE_METHODS)
ONE_CLASS = Hierarchy(subclasses=np.array(["any"]), classes=np.array(["any"]))


def lists(ranking: pd.DataFrame) -> dict[int, list[int]]:
    ordered = ranking.sort_values(["member_id", "rank"])
    return {m: group["item_id"].tolist() for m, group in ordered.groupby("member_id")}


def table_lists(table) -> dict[int, list[int]]:
    return lists(table.to_pandas().rename(columns={"subclass_brand_id": "item_id"}))


def ranked(
    member_ids,
    ratings: pd.DataFrame,
    items: CohortItems,
    params: RankParams,
    methods=BASELINES,
    hierarchy: Hierarchy = ONE_CLASS,
    dim: int = 2,
    seed: int = 0,
) -> dict:
    """`rank_block` of one cohort's members with their `ratings` (member_id, item_id, rating)."""
    member_ids = np.asarray(member_ids, dtype=np.int64)
    row = {int(m): i for i, m in enumerate(member_ids)}
    own = ratings[ratings["member_id"].isin(row)]
    rated = (
        own["member_id"].map(row).to_numpy(dtype=np.int64),
        own["item_id"].to_numpy(dtype=np.int64),
        own["rating"].to_numpy(dtype=np.float64),
    )
    none = np.array([], dtype=np.int64)
    factors = np.random.default_rng(seed).normal(size=(len(member_ids), dim))
    return rank_block(member_ids, factors, rated, (none, none), items, hierarchy, params, methods)


def hand_items(cohort: str) -> CohortItems:
    factors = np.random.default_rng(1).normal(size=(len(CANDIDATES), 2)).astype(np.float32)
    zeros = np.zeros(len(CANDIDATES), dtype=int)
    return CohortItems(CANDIDATES, factors, zeros, zeros, POPULARITY[cohort])


def hand_lists(method: str, k: int) -> dict[int, list[int]]:
    """Both members' lists of `method`, each ranked in its own cohort's block (one class, limit 1: the
    baselines keep no per-class limit)."""
    params = RankParams(top_k=k, boost_strength=0.0, max_groups_per_class=1)
    out = {}
    for member, cohort in MEMBERS.itertuples(index=False):
        tables = ranked([member], OWN, hand_items(cohort), params, (Method(method),))
        out |= table_lists(tables["diversified_affinities"])
    return out


def test_popularity_ranks_by_overall_count_and_breaks_ties_by_id():
    expected = {10: [3, 1, 5, 2], 20: [3, 1, 5, 2]}  # 3 (3), 1 (2), 5 (1), then 2 and 4 (0) by id
    assert hand_lists("popularity", 4) == expected
    twice = pd.concat([RECENT, RECENT])  # repeated events of the same members change nothing
    assert lists(reference.popularity(MEMBERS, twice, CANDIDATES, 4)) == expected


def test_cohort_popularity_breaks_cohort_ties_by_overall_count_then_id():
    # women_1: 1 and 3 tie at 2 -> 3 first (3 overall vs 2); then 5 (1 overall), 2, 4 (0) by id
    # men_2: 3 and 5 tie at 1 -> 3 first (3 overall vs 1); then 1 (2 overall), 2, 4 (0) by id
    expected = {10: [3, 1, 5, 2, 4], 20: [3, 5, 1, 2, 4]}
    assert hand_lists("cohort_popularity", 5) == expected
    assert lists(reference.cohort_popularity(MEMBERS, RECENT, CANDIDATES, 5)) == expected


def test_repeat_puts_own_positive_ratings_first_ties_by_id():
    # member 10: 2 (40), then 4 and 5 (3 each) by id although 5 is more popular, then 3 (popular)
    # member 20: its only rating is negative: the popularity order
    expected = {10: [2, 4, 5, 3], 20: [3, 1, 5, 2]}
    assert hand_lists("repeat", 4) == expected
    assert lists(reference.repeat(MEMBERS, OWN, RECENT, CANDIDATES, 4)) == expected


def test_the_first_method_is_the_diversified_table_and_only_the_model_keeps_the_class_limit():
    items = CohortItems(CANDIDATES, np.eye(5, 2, dtype=np.float32), np.zeros(5, int), np.array([0, 0, 1, 1, 1]))
    hierarchy = Hierarchy(subclasses=np.array(["any"]), classes=np.array(["a", "b"]))
    items = CohortItems(items.ids, items.factors, items.subclass, items.klass, POPULARITY["women_1"])
    params = RankParams(top_k=5, boost_strength=0.0, max_groups_per_class=1)
    methods = (Method("repeat"), Method("model"), Method("popularity"), Method("cohort_popularity"))
    tables = ranked([10], OWN, items, params, methods, hierarchy)
    assert set(tables) == {
        "member_affinities",
        "boosted_affinities",
        "diversified_affinities",
        "model",
        "popularity",
        "cohort_popularity",
    }
    assert table_lists(tables["diversified_affinities"]) == {10: [2, 4, 5, 3, 1]}  # repeat, all five
    assert table_lists(tables["popularity"]) == {10: [3, 1, 5, 2, 4]}
    assert table_lists(tables["cohort_popularity"]) == {10: [3, 1, 5, 2, 4]}
    assert tables["model"].num_rows == 2  # one group per class: classes a and b
    assert tables["popularity"].column("score").to_pylist() == [3.0, 2.0, 1.0, 0.0, 0.0]  # the counts


def test_a_baseline_without_popularity_says_what_it_needs():
    items = CohortItems(CANDIDATES, np.ones((5, 2), np.float32), np.zeros(5, int), np.zeros(5, int))
    params = RankParams(top_k=3, boost_strength=0.0, max_groups_per_class=1)
    with pytest.raises(ValueError, match="popularity"):
        ranked([10], OWN, items, params, (Method("popularity"),))


# --- the pass against the pandas reference on random blocks ---------------------------------------------


def random_case(seed: int):
    """A block of one cohort's members, recent buyers of three cohorts (repeated events, non-candidate
    items), and integer ratings (ties, zero and negative ones, non-candidate items)."""
    rng = np.random.default_rng(seed)
    cohorts = ["women_1", "men_2", "kids_3"]
    m = int(rng.integers(1, 30))
    ids = np.sort(rng.choice(np.arange(1, 80), m, replace=False)).astype(np.int64)
    pool = np.union1d(ids, rng.integers(80, 90, 3))  # a few non-candidates
    buyers = rng.choice(np.arange(100, 160), int(rng.integers(1, 40)), replace=False)
    buyer_cohort = {int(b): cohorts[int(rng.integers(0, 3))] for b in buyers}
    n_events = int(rng.integers(0, 120))
    events = pd.DataFrame(
        {
            "member_id": rng.choice(buyers, n_events),
            "item_id": rng.choice(pool[: int(rng.integers(1, len(pool) + 1))], n_events),  # some never bought
        }
    )
    recent = events.assign(cohort=events["member_id"].map(buyer_cohort))
    cohort = cohorts[seed % 3]
    n = int(rng.integers(1, 25))
    # some block members are recent buyers of the cohort too, the others are not
    own_buyers = [b for b, c in buyer_cohort.items() if c == cohort]
    others = rng.choice(np.arange(1000, 2000), n, replace=False)
    member_ids = np.unique(np.concatenate([rng.permutation(own_buyers)[: n // 2], others[: n - n // 2]]))
    members = pd.DataFrame({"member_id": member_ids, "cohort": cohort})
    rating_rows = []
    for member in member_ids:
        for item in rng.choice(pool, int(rng.integers(0, min(len(pool), 8) + 1)), replace=False):
            rating_rows.append((int(member), int(item), float(rng.integers(-2, 4))))
    ratings = pd.DataFrame(rating_rows, columns=["member_id", "item_id", "rating"])
    # the popularity of `recent_buyers`, counted with sets; `members` is everyone with a cohort
    everyone = set(buyer_cohort) | {int(m) for m in member_ids}
    in_cohort = {int(b) for b, c in buyer_cohort.items() if c == cohort} | {int(m) for m in member_ids}
    pairs = {(int(b), int(i)) for b, i in zip(events["member_id"], events["item_id"], strict=True)}
    overall = np.array([sum(1 for _, i in pairs if i == g) for g in ids], dtype=float)
    mine = np.array([sum(1 for b, i in pairs if i == g and buyer_cohort[b] == cohort) for g in ids], dtype=float)
    popularity = Popularity(mine, len(in_cohort), overall, len(everyone))
    klass = rng.integers(0, 3, m)
    items = CohortItems(ids, rng.normal(size=(m, 3)).astype(np.float32), np.zeros(m, int), klass, popularity)
    hierarchy = Hierarchy(subclasses=np.array(["any"]), classes=np.array(["a", "b", "c"]))
    return members, recent, ratings, items, hierarchy, rng


@pytest.mark.parametrize("seed", range(12))
def test_the_pass_ranks_the_baselines_as_the_pandas_reference(seed):
    members, recent, ratings, items, hierarchy, rng = random_case(seed)
    m, ids = len(items.ids), items.ids
    methods = BASELINES[seed % 3 :] + BASELINES[: seed % 3]  # each one first in turn
    for top_k in sorted({1, max(1, m // 2), m, m + 3}):
        params = RankParams(top_k=top_k, boost_strength=0.5, max_groups_per_class=int(rng.integers(1, 3)))
        tables = ranked(members["member_id"], ratings, items, params, methods, hierarchy, dim=3, seed=seed)
        k = min(top_k, m)
        expected = {
            "popularity": reference.popularity(members, recent, ids, k),
            "cohort_popularity": reference.cohort_popularity(members, recent, ids, k),
            "repeat": reference.repeat(members, ratings, recent, ids, k),
        }
        for position, method in enumerate(methods):
            table = tables["diversified_affinities" if position == 0 else method.name]
            got = table.to_pandas().sort_values(["member_id", "rank"])
            want = expected[method.name].sort_values(["member_id", "rank"])
            assert got["member_id"].tolist() == want["member_id"].tolist(), (method.name, top_k)
            assert got["rank"].tolist() == want["rank"].tolist(), (method.name, top_k)
            assert got["subclass_brand_id"].tolist() == want["item_id"].tolist(), (method.name, top_k)


def test_random_is_a_seeded_permutation_per_member():
    first = baselines.random(MEMBERS, CANDIDATES, 5, seed=3)
    again = baselines.random(MEMBERS, CANDIDATES, 5, seed=3)
    pd.testing.assert_frame_equal(first, again)
    for items in lists(first).values():
        assert sorted(items) == CANDIDATES.tolist()
    assert lists(first) != lists(baselines.random(MEMBERS, CANDIDATES, 5, seed=4))


# --- the champion ------------------------------------------------------------------------------------------


def frame(columns: dict[str, list[float]], cohorts: list[str]) -> tuple[pd.DataFrame, pd.Series]:
    keys = [f"1:{i}" for i in range(len(cohorts))]
    return pd.DataFrame(columns, index=keys), pd.Series(cohorts, index=keys)


def choose(per_unit: pd.DataFrame, cohorts: pd.Series, min_members: int = 1, draws: int = 300) -> pd.DataFrame:
    return champion.choose(per_unit, cohorts, bootstrap_weights(per_unit.index, draws, 11), min_members)


def row(champions: pd.DataFrame, cohort: str) -> pd.Series:
    chosen = champions[champions["cohort"] == cohort]
    assert len(chosen) == 1
    return chosen.iloc[0]


def test_the_best_mean_wins_with_its_runner_up_margin_and_best_baseline():
    per_unit, cohorts = frame(
        {
            "popularity": [0.125, 0.25, 0.25, 0.0],  # mean 0.15625
            "repeat": [0.5, 0.0, 0.5, 0.25],  # mean 0.3125
            "model": [0.75, 0.125, 1.0, 0.25],  # mean 0.53125
            "no_boost": [0.25, 0.5, 0.0, 0.5],  # mean 0.3125
            "random": [1.0, 1.0, 1.0, 1.0],  # not a candidate
            "blend": [0.9, np.nan, 0.9, 0.9],  # not ranked for everyone: left out
        },
        ["women_1"] * 4,
    )
    champions = choose(per_unit, cohorts)
    assert champions.columns.tolist() == champion.COLUMNS
    assert champions["cohort"].tolist() == ["all", *COHORTS]
    overall = row(champions, "all")
    assert (overall["method"], overall["scope"], overall["members"]) == ("model", "all", 4)
    assert overall["ndcg"] == 0.53125
    assert overall["ci_low"] <= overall["ndcg"] <= overall["ci_high"]
    # the runner-up: repeat and no_boost tie at 0.3125, the simpler one (repeat) is named
    assert overall["versus"] == "repeat" and overall["versus_ndcg"] == 0.3125
    assert overall["margin"] == 0.21875
    assert overall["margin_low"] < overall["margin"] < overall["margin_high"]
    assert (overall["best_baseline"], overall["best_baseline_ndcg"]) == ("repeat", 0.3125)
    women = row(champions, "women_1")  # its four members are everyone
    assert (women["method"], women["scope"], women["ndcg"]) == ("model", "cohort", 0.53125)


def test_an_exact_tie_goes_to_the_simpler_method():
    values = [0.25, 0.5, 0.75]
    # columns listed from the most complex: the order of SIMPLEST_FIRST decides, not the frame's
    per_unit, cohorts = frame(
        {"blend": values, "model": values, "no_boost": values, "cohort_popularity": values, "popularity": [0, 0, 0]},
        ["men_2"] * 3,
    )
    overall = row(choose(per_unit, cohorts), "all")
    assert SIMPLEST_FIRST.index("cohort_popularity") < SIMPLEST_FIRST.index("no_boost")
    assert (overall["method"], overall["versus"]) == ("cohort_popularity", "no_boost")
    assert (overall["margin"], overall["margin_low"], overall["margin_high"]) == (0.0, 0.0, 0.0)
    assert overall["best_baseline"] == "cohort_popularity"


def test_a_constant_lead_has_an_interval_of_that_lead():
    per_unit, cohorts = frame({"repeat": [0.5, 0.25, 0.75, 0.0], "model": [0.25, 0.0, 0.5, -0.25]}, ["men_2"] * 4)
    overall = row(choose(per_unit, cohorts), "all")
    assert (overall["method"], overall["versus"]) == ("repeat", "model")
    # every resample of the members moves both means alike: the paired margin is always 0.25
    assert (overall["margin"], overall["margin_low"], overall["margin_high"]) == (0.25, 0.25, 0.25)
    assert overall["ci_low"] < overall["ndcg"] < overall["ci_high"]  # the champion's own mean does vary


def test_a_small_cohort_takes_the_overall_choice():
    # women_1 (3 members) prefers repeat, men_2 (2 members) prefers popularity; everyone prefers the model
    per_unit, cohorts = frame(
        {
            "popularity": [0.0, 0.0, 0.0, 0.9, 0.9, 0.0, 0.0],
            "repeat": [0.6, 0.6, 0.6, 0.0, 0.0, 0.0, 0.0],
            "model": [0.5, 0.5, 0.5, 0.5, 0.5, 1.0, 1.0],
        },
        ["women_1", "women_1", "women_1", "men_2", "men_2", "kids_3", "kids_3"],
    )
    champions = choose(per_unit, cohorts, min_members=3)
    overall = row(champions, "all")
    assert (overall["method"], overall["members"]) == ("model", 7)  # 4.5 / 7 against 1.8 / 7 for each baseline
    assert overall["ndcg"] == pytest.approx(4.5 / 7)
    women = row(champions, "women_1")
    assert (women["method"], women["scope"], women["members"]) == ("repeat", "cohort", 3)
    assert women["ndcg"] == pytest.approx(0.6) and women["margin"] == pytest.approx(0.1)
    for small in ("men_2", "kids_3", "men_1"):  # two members, two members, none
        fallback = row(champions, small)
        assert (fallback["method"], fallback["scope"], fallback["members"]) == ("model", "all", 7)
        assert fallback["ndcg"] == overall["ndcg"] and fallback["margin"] == overall["margin"]
    assert set(champions.loc[champions["scope"] == "cohort", "cohort"]) == {"women_1"}


def test_a_cohort_departs_from_the_overall_choice_only_on_a_lead_above_noise():
    # kids_3 (16 members) gains 0.1 from the blend on each; men_2 (8) loses 0.05 with it on each, a sure lead
    # of repeat; women_1 (8) prefers repeat on average (0.6 against 0.5), but only two members carry that lead
    per_unit, cohorts = frame(
        {
            "repeat": [0.5] * 6 + [0.9] * 2 + [0.55] * 8 + [0.4] * 16,
            "blend": [0.6] * 6 + [0.2] * 2 + [0.5] * 8 + [0.5] * 16,
        },
        ["women_1"] * 8 + ["men_2"] * 8 + ["kids_3"] * 16,
    )
    champions = choose(per_unit, cohorts, draws=400)
    overall = row(champions, "all")
    assert (overall["method"], overall["ndcg"]) == ("blend", pytest.approx(0.5))  # repeat: 15.6 / 32
    # in about a third of the resamples of women_1's members at most one of the two is drawn, and repeat
    # leads by nothing: its lead is noise, and it keeps the overall choice
    women = row(champions, "women_1")
    assert (women["method"], women["scope"], women["ndcg"]) == ("blend", "cohort", pytest.approx(0.5))
    # its runner-up is its own best, ahead by noise: a negative margin whose interval reaches above zero
    assert (women["versus"], women["margin"]) == ("repeat", pytest.approx(-0.1))
    assert women["margin_low"] < -0.1 < women["margin_high"] and women["margin_high"] >= 0
    men = row(champions, "men_2")  # a lead in every resample: its own best
    assert (men["method"], men["versus"], men["margin"]) == ("repeat", "blend", pytest.approx(0.05))
    assert row(champions, "kids_3")["method"] == "blend"


def test_a_model_made_worse_than_a_baseline_loses_to_it():
    per_unit, cohorts = frame({"popularity": [0.25, 0.25, 0.5, 0.5], "model": [0.5, 0.25, 1.0, 0.75]}, ["women_2"] * 4)
    assert row(choose(per_unit, cohorts), "all")["method"] == "model"
    per_unit["model"] = [0.0, 0.25, 0.5, 0.0]  # mean 0.1875, below popularity's 0.375
    overall = row(choose(per_unit, cohorts), "all")
    assert (overall["method"], overall["versus"], overall["best_baseline"]) == ("popularity", "model", "popularity")
    assert (overall["ndcg"], overall["versus_ndcg"], overall["margin"]) == (0.375, 0.1875, 0.1875)
    women = row(choose(per_unit, cohorts), "women_2")  # everyone is women_2: the same choice
    assert (women["method"], women["scope"]) == ("popularity", "cohort")


def test_only_the_allowed_candidates_can_win():
    per_unit, cohorts = frame(
        {"popularity": [0.25, 0.5], "repeat": [0.5, 0.5], "model": [1.0, 1.0]}, ["women_2", "women_2"]
    )
    weights = bootstrap_weights(per_unit.index, 50, 3)
    overall = row(champion.choose(per_unit, cohorts, weights, 1, ("popularity", "repeat")), "all")
    assert (overall["method"], overall["versus"], overall["margin"]) == ("repeat", "popularity", 0.125)
    assert champion.choose(per_unit, cohorts, weights, 1, ("blend",)).empty  # not ranked: nothing to choose


def test_no_candidate_scored_chooses_nothing():
    assert choose(*frame({"random": [0.5]}, ["men_2"])).empty
    assert choose(*frame({"model": []}, [])).empty


# --- the gate verdict ----------------------------------------------------------------------------------


def champions_frame(rows: list[tuple[str, str, float, str, float]]) -> pd.DataFrame:
    """(cohort, method, ndcg, best_baseline, best_baseline_ndcg) rows, the other columns filled in."""
    full = [
        dict(zip(champion.COLUMNS, [c, m, "cohort", v, v, v, "model", 0.0, v, 0.0, v, b, bv, 9], strict=True))
        for c, m, v, b, bv in rows
    ]
    return pd.DataFrame(full, columns=champion.COLUMNS)


def test_the_verdict_is_evaluated_when_champions_exist_even_when_a_baseline_wins():
    verdict = gate_verdict(
        champions_frame(
            [
                ("all", "repeat", 0.3, "repeat", 0.3),
                ("women_1", "model", 0.4, "repeat", 0.35),
                ("men_2", "repeat", 0.2, "repeat", 0.2),
                ("men_3", "repeat", 0.25, "repeat", 0.25),
            ]
        )
    )
    assert verdict.evaluated and verdict.passed
    assert (verdict.champion, verdict.value, verdict.best_baseline, verdict.baseline) == ("repeat", 0.3, "repeat", 0.3)
    assert verdict.methods == (("women_1", "model"), ("men_2", "repeat"), ("men_3", "repeat"))
    explained = verdict.explain()
    assert "repeat in 2 cohorts" in explained and "model in 1 cohorts" in explained
    assert "champion repeat has NDCG@10 0.3000 (best baseline repeat 0.3000)" in explained


def test_the_verdict_of_the_chosen_champions():
    per_unit, cohorts = frame({"popularity": [0.25, 0.5], "model": [0.5, 0.75]}, ["men_2", "men_2"])
    verdict = gate_verdict(choose(per_unit, cohorts, min_members=5))
    assert verdict.passed and (verdict.champion, verdict.best_baseline) == ("model", "popularity")
    assert verdict.value == pytest.approx(0.625) and verdict.baseline == pytest.approx(0.375)
    assert len(verdict.methods) == len(COHORTS) and {m for _, m in verdict.methods} == {"model"}


def test_the_verdict_without_champions_fails_closed_and_says_so():
    for champions in (None, pd.DataFrame(columns=champion.COLUMNS)):
        verdict = gate_verdict(champions)
        assert not verdict.passed and not verdict.evaluated and "not evaluated" in verdict.explain()


def test_random_drawn_block_by_block_is_one_seeded_shuffle_of_every_member(monkeypatch):
    """Blocks of members and a partial sort give the first k of the plain argsort of one draw of them all."""
    monkeypatch.setattr(baselines, "BLOCK_CELLS", 50)  # 5 members a block
    members = pd.DataFrame({"member_id": np.arange(100, 123)})
    candidates = np.arange(500, 510)
    for k in (1, 4, 10, 20):
        got = baselines.random(members, candidates, k, seed=11)
        draws = np.random.default_rng(11).random((23, 10))
        order = np.argsort(draws, axis=1)[:, : min(k, 10)]
        assert got["item_id"].tolist() == candidates[order].ravel().tolist()
        assert got["member_id"].tolist() == np.repeat(members["member_id"], min(k, 10)).tolist()
