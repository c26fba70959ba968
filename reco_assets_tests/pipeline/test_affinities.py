"""Affinities: the one-pass ranking of a block of members (`rank_block`) against an independent pandas
reference, hand-computed cases of its tie, boost and per-class rules, the Spark composition around it, and
the intent subclasses. Hierarchy levels are keyed by their full path (names repeat across divisions)."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from reco_assets import invariants
from reco_assets.pipeline.affinities import (
    CohortItems,
    Hierarchy,
    RankParams,
    cohort_items,
    intent_subclasses,
    rank_batches,
    rank_block,
    ranking_inputs,
)
from reco_assets.pipeline.catalog import group_hierarchy
from reco_assets_tests.conftest import rows, utc

TABLES = ("member_affinities", "boosted_affinities", "diversified_affinities")
KEYS = {
    "member_affinities": ["member_id", "rank", "subclass_brand_id"],
    "boosted_affinities": ["member_id", "rank", "subclass_brand_id"],
    "diversified_affinities": ["member_id", "rank", "subclass_brand_id", "class_key"],
}
FLOATS = {
    "member_affinities": ["rating", "prediction"],
    "boosted_affinities": ["rating", "prediction", "boost", "score"],
    "diversified_affinities": ["score"],
}


# --- an independent reference: one member at a time, plain python sorts -------------------------------


def reference(member_ids, member_factors, rated, intents, items, hierarchy, params) -> dict[str, pd.DataFrame]:
    """The three tables as the contract defines them, member by member."""
    predictions = (member_factors.astype(np.float32) @ items.factors.T).astype(np.float64)
    ids = [int(i) for i in items.ids]
    k = min(params.top_k, len(ids))
    own = {(int(r), int(g)): float(v) for r, g, v in zip(*rated)}
    wanted = {}
    for r, code in zip(*intents):
        wanted.setdefault(int(r), set()).add(int(code))
    out = {name: [] for name in TABLES}
    for row, member in enumerate(member_ids):
        member = int(member)
        prediction = {ids[j]: predictions[row, j] for j in range(len(ids))}
        subclass = {ids[j]: int(items.subclass[j]) for j in range(len(ids))}
        klass = {ids[j]: str(hierarchy.classes[items.klass[j]]) for j in range(len(ids))}
        top = sorted(ids, key=lambda g: (-prediction[g], g))[:k]
        for rank, g in enumerate(top, 1):
            out["member_affinities"].append((member, g, own.get((row, g), 0.0), prediction[g], rank))
        spread = max(prediction[g] for g in top) - min(prediction[g] for g in top)
        boost = {g: params.boost_strength * spread if subclass[g] in wanted.get(row, ()) else 0.0 for g in top}
        score = {g: prediction[g] + boost[g] for g in top}
        boosted = sorted(top, key=lambda g: (-score[g], g))
        for rank, g in enumerate(boosted, 1):
            out["boosted_affinities"].append(
                (member, g, own.get((row, g), 0.0), prediction[g], boost[g], score[g], rank)
            )
        per_class: dict[str, int] = {}
        kept = 0
        for g in boosted:
            if per_class.get(klass[g], 0) < params.max_groups_per_class:
                per_class[klass[g]] = per_class.get(klass[g], 0) + 1
                kept += 1
                out["diversified_affinities"].append((member, g, klass[g], score[g], kept))
    columns = {
        "member_affinities": ["member_id", "subclass_brand_id", "rating", "prediction", "rank"],
        "boosted_affinities": ["member_id", "subclass_brand_id", "rating", "prediction", "boost", "score", "rank"],
        "diversified_affinities": ["member_id", "subclass_brand_id", "class_key", "score", "rank"],
    }
    return {name: pd.DataFrame(out[name], columns=columns[name]) for name in TABLES}


def assert_tables_equal(got: dict[str, pa.Table], expected: dict[str, pd.DataFrame]):
    for name in TABLES:
        mine = got[name].to_pandas().sort_values(["member_id", "rank"]).reset_index(drop=True)
        theirs = expected[name].sort_values(["member_id", "rank"]).reset_index(drop=True)
        assert len(mine) == len(theirs), name
        for column in KEYS[name]:
            assert mine[column].tolist() == theirs[column].tolist(), (name, column)
        for column in FLOATS[name]:
            np.testing.assert_allclose(mine[column], theirs[column], rtol=1e-12, atol=1e-12, err_msg=f"{name}.{column}")


def random_block(seed: int):
    """Random members, items, ratings and intents; integer-valued factors in some seeds so predictions tie."""
    rng = np.random.default_rng(seed)
    n, m, dim = int(rng.integers(1, 51)), int(rng.integers(1, 61)), int(rng.integers(1, 6))
    if seed % 2:
        members, item_factors = rng.integers(-2, 3, (n, dim)), rng.integers(-2, 3, (m, dim))
    else:
        members, item_factors = rng.normal(size=(n, dim)), rng.normal(size=(m, dim))
    ids = np.sort(rng.choice(np.arange(1, 400), m, replace=False)).astype(np.int64)
    n_subclasses, n_classes = int(rng.integers(1, 8)), int(rng.integers(1, 4))
    # keys (`level_key`), the same names under two divisions: the codes of different paths are different
    division = ("men", "women")
    hierarchy = Hierarchy(
        subclasses=np.array([f'["{division[i % 2]}","tops","class","subclass{i // 2}"]' for i in range(n_subclasses)]),
        classes=np.array([f'["{division[i % 2]}","tops","class{i // 2}"]' for i in range(n_classes)]),
    )
    items = CohortItems(
        ids=ids,
        factors=item_factors.astype(np.float32),
        subclass=rng.integers(0, n_subclasses, m),
        klass=rng.integers(0, n_classes, m),
    )
    # ratings: of the items and of other ids (below, between and above them), negative ones included
    rated_rows, rated_groups = [], []
    for row in range(n):
        pool = np.union1d(ids, rng.integers(0, 450, 5))
        chosen = rng.choice(pool, int(rng.integers(0, min(len(pool), 8) + 1)), replace=False)
        rated_rows += [row] * len(chosen)
        rated_groups += chosen.tolist()
    rated = (
        np.array(rated_rows, dtype=np.int64),
        np.array(rated_groups, dtype=np.int64),
        rng.uniform(-3, 10, len(rated_rows)),
    )
    # intents: none for some members, up to three subclass codes for others
    intent_rows, intent_codes = [], []
    for row in range(n):
        codes = rng.choice(n_subclasses, int(rng.integers(0, min(n_subclasses, 3) + 1)), replace=False)
        intent_rows += [row] * len(codes)
        intent_codes += codes.tolist()
    intents = (np.array(intent_rows, dtype=np.int64), np.array(intent_codes, dtype=np.int64))
    member_ids = rng.choice(np.arange(10_000), n, replace=False).astype(np.int64)
    return member_ids, members.astype(np.float64), rated, intents, items, hierarchy, rng


# --- rank_block against the reference -----------------------------------------------------------------


@pytest.mark.parametrize("seed", range(12))
def test_rank_block_matches_the_reference_on_random_blocks(seed):
    member_ids, members, rated, intents, items, hierarchy, rng = random_block(seed)
    m = len(items.ids)
    for top_k in sorted({1, max(1, m // 2), m, m + 7}):
        for strength in (0.0, float(rng.uniform(0.1, 1.5))):
            params = RankParams(top_k=top_k, boost_strength=strength, max_groups_per_class=int(rng.integers(1, 5)))
            got = rank_block(member_ids, members, rated, intents, items, hierarchy, params)
            expected = reference(member_ids, members, rated, intents, items, hierarchy, params)
            assert_tables_equal(got, expected)


@pytest.mark.parametrize("seed", range(4))
def test_a_block_ranked_for_its_first_ranks_only_holds_exactly_those_rows(seed):
    """`keep` (what a backtest scores) cuts every table to its first ranks after the class limit, not before."""
    from dataclasses import replace

    from reco_assets.pipeline.methods import Method

    member_ids, members, rated, intents, items, hierarchy, rng = random_block(seed)
    params = RankParams(top_k=len(items.ids), boost_strength=0.7, max_groups_per_class=int(rng.integers(1, 3)))
    methods = (Method("model"), Method("no_boost"), Method.blend({"prediction": 1.0, "rating": 0.3}))
    everything = rank_block(member_ids, members, rated, intents, items, hierarchy, params, methods)
    keep = int(rng.integers(1, 4))
    first = rank_block(member_ids, members, rated, intents, items, hierarchy, replace(params, keep=keep), methods)
    assert set(first) == set(everything)
    for name, table in everything.items():
        cut = table.filter(pc.less_equal(table.column("rank"), keep))
        assert first[name].to_pylist() == cut.to_pylist(), name
        assert first[name].num_rows > 0, name
    assert first["member_affinities"].num_rows == len(member_ids) * keep < everything["member_affinities"].num_rows


@pytest.mark.parametrize("seed", range(4, 16))
def test_first_ranks_under_any_top_k_are_the_full_lists_cut(seed):
    """The same with K below the groups' count and deeper cuts: the first ranks are sorted out of a partial
    selection, whatever K, the ties (integer factors in odd seeds) and the class limit."""
    from dataclasses import replace

    from reco_assets.pipeline.methods import Method

    member_ids, members, rated, intents, items, hierarchy, rng = random_block(seed)
    m = len(items.ids)
    params = RankParams(
        top_k=int(rng.integers(1, m + 2)), boost_strength=0.7, max_groups_per_class=int(rng.integers(1, 3))
    )
    methods = (Method("model"), Method("no_boost"), Method.blend({"prediction": 1.0, "rating": 0.3}))
    everything = rank_block(member_ids, members, rated, intents, items, hierarchy, params, methods)
    keep = int(rng.integers(1, 7))
    first = rank_block(member_ids, members, rated, intents, items, hierarchy, replace(params, keep=keep), methods)
    for name, table in everything.items():
        cut = table.filter(pc.less_equal(table.column("rank"), keep))
        assert first[name].to_pylist() == cut.to_pylist(), name


@pytest.mark.parametrize("seed", range(6))
def test_the_blend_scores_every_pair_by_its_weighted_features(seed):
    """The blend's score of each (member, group), against the features of `methods.FEATURES` computed pair by
    pair here: the pass sums the features that are 0 without a rating at the rated cells only."""
    from dataclasses import replace

    from reco_assets.pipeline.methods import FEATURES, Method, Popularity

    member_ids, members, rated, intents, items, hierarchy, rng = random_block(seed)
    n, m = len(member_ids), len(items.ids)
    ages = np.where(rng.random(len(rated[0])) < 0.2, np.nan, rng.uniform(0, 60, len(rated[0])))
    counts, own_counts = rng.integers(0, 30, m).astype(float), rng.integers(0, 5, m).astype(float)
    items = replace(items, popularity=Popularity(own_counts, 40, counts, 300))
    weights = {name: float(w) for name, w in zip(FEATURES, rng.uniform(-1, 2, len(FEATURES)), strict=True)}
    params = RankParams(top_k=m, boost_strength=0.0, max_groups_per_class=m, purchase_points=5.0)
    got = rank_block(
        member_ids, members, (*rated, ages), intents, items, hierarchy, params, (Method("model"), Method.blend(weights))
    )["blend"].to_pandas()

    wanted = {(row, code) for row, code in zip(*intents, strict=True)}
    expected = {}
    for row in range(n):
        own = {g: (r, a) for r_, g, r, a in zip(rated[0], rated[1], rated[2], ages, strict=True) if r_ == row}
        own = {g: v for g, v in own.items() if g in set(items.ids.tolist())}
        positive = [g for g, (r, _) in own.items() if r > 0]
        propensity = sum(own[g][0] >= 5.0 for g in positive) / max(len(positive), 1)
        prediction = (members[row].astype(np.float32) @ items.factors.T).astype(np.float64)
        standardised = (prediction - prediction.mean()) / (prediction.std() + 1e-6)
        scores = []
        for j, group in enumerate(items.ids.tolist()):
            r, age = own.get(group, (0.0, np.inf))
            values = {
                "prediction": standardised[j],
                "rating": np.log1p(max(r, 0.0)),
                "recency": 0.0 if np.isnan(age) or np.isinf(age) else np.exp(-age / 14.0),
                "repeat": propensity if r > 0 else 0.0,
                "intent": float((row, items.subclass[j]) in wanted),
                "cohort_popularity": np.log((own_counts[j] + 1) / 41),
                "popularity": np.log((counts[j] + 1) / 301),
            }
            scores.append(sum(weights[name] * values[name] for name in FEATURES))
        scores = np.array(scores)
        for group, score in zip(items.ids.tolist(), np.exp(scores - scores.max()), strict=True):
            expected[int(member_ids[row]), group] = score
    assert len(got) == len(expected) == n * m
    by_pair = dict(zip(zip(got["member_id"], got["subclass_brand_id"], strict=True), got["score"], strict=True))
    for pair, score in expected.items():
        assert by_pair[pair] == pytest.approx(score, rel=1e-4, abs=1e-9), pair


def test_a_class_limit_that_thins_the_first_ranks_reaches_deeper_for_them():
    """Ten groups of one class lead, the other class's two come last: with one group per class and two ranks
    kept, the second rank is the eleventh group by score, past the four times two first sorted."""
    hierarchy = Hierarchy(subclasses=np.array(["any"]), classes=np.array(["a", "b"]))
    items = CohortItems(
        ids=np.arange(1, 13),
        factors=np.arange(12, 0, -1, dtype=np.float32)[:, None],
        subclass=np.zeros(12, int),
        klass=np.array([0] * 10 + [1] * 2),
    )
    params = RankParams(top_k=12, boost_strength=0.0, max_groups_per_class=1, keep=2)
    got = rank_one([1.0], items, hierarchy, params)["diversified_affinities"]
    assert got.select(["subclass_brand_id", "class_key", "rank"]).to_pylist() == [
        {"subclass_brand_id": 1, "class_key": "a", "rank": 1},
        {"subclass_brand_id": 11, "class_key": "b", "rank": 2},
    ]


def test_rank_block_of_no_members_is_three_empty_tables():
    items = CohortItems(
        ids=np.array([1, 2]), factors=np.ones((2, 2), np.float32), subclass=np.zeros(2, int), klass=np.zeros(2, int)
    )
    none = np.array([], dtype=np.int64)
    got = rank_block(
        none,
        np.empty((0, 2)),
        (none, none, np.array([])),
        (none, none),
        items,
        Hierarchy(np.array(["s"]), np.array(["c"])),
        RankParams(top_k=3, boost_strength=1.0, max_groups_per_class=1),
    )
    assert set(got) == set(TABLES)
    assert all(table.num_rows == 0 for table in got.values())


# --- hand-computed cases --------------------------------------------------------------------------------

ONE_LEVEL = Hierarchy(subclasses=np.array(["any"]), classes=np.array(["any"]))
NOTHING = (np.array([], dtype=np.int64),) * 2


def rank_one(factors, items, hierarchy, params) -> dict:
    """`rank_block` of one member (id 1) with no rating and no intent."""
    return rank_block(np.array([1]), np.array([factors]), (*NOTHING, np.array([])), NOTHING, items, hierarchy, params)


def one_class_items(ids, factors):
    n = len(ids)
    return CohortItems(
        ids=np.array(ids), factors=np.array(factors, np.float32), subclass=np.zeros(n, int), klass=np.zeros(n, int)
    )


def test_three_tied_predictions_are_ranked_by_group_id():
    items = one_class_items([3, 5, 7, 9], [[2.0, 0.0], [1.0, 5.0], [1.0, 0.0], [1.0, -5.0]])  # 5, 7, 9 tie at 1.0
    got = rank_one([1.0, 0.0], items, ONE_LEVEL, RankParams(top_k=3, boost_strength=0.0, max_groups_per_class=4))
    assert got["member_affinities"].select(["subclass_brand_id", "prediction", "rank"]).to_pylist() == [
        {"subclass_brand_id": 3, "prediction": 2.0, "rank": 1},
        {"subclass_brand_id": 5, "prediction": 1.0, "rank": 2},
        {"subclass_brand_id": 7, "prediction": 1.0, "rank": 3},
    ]


def test_ties_at_the_top_k_cut_keep_the_smaller_group_id():
    items = one_class_items([10, 20, 30, 40], [[1.0], [0.0], [2.0], [2.0]])  # 30 and 40 tie at 2.0
    got = rank_one([1.0], items, ONE_LEVEL, RankParams(top_k=1, boost_strength=0.0, max_groups_per_class=4))
    assert got["member_affinities"]["subclass_brand_id"].to_pylist() == [30]


def test_rating_is_the_members_own_rating_of_the_group_or_zero():
    items = one_class_items([3, 5, 7], [[3.0], [2.0], [1.0]])
    rated = (np.array([0, 0, 1, 1]), np.array([5, 4, 3, 7]), np.array([-2.5, 9.0, 4.0, 1.0]))  # 4: not an item
    got = rank_block(
        np.array([10, 20]),
        np.array([[1.0], [1.0]]),
        rated,
        NOTHING,
        items,
        ONE_LEVEL,
        RankParams(top_k=2, boost_strength=0.0, max_groups_per_class=4),
    )
    assert got["member_affinities"].select(["member_id", "subclass_brand_id", "rating"]).to_pylist() == [
        {"member_id": 10, "subclass_brand_id": 3, "rating": 0.0},
        {"member_id": 10, "subclass_brand_id": 5, "rating": -2.5},
        {"member_id": 20, "subclass_brand_id": 3, "rating": 4.0},
        {"member_id": 20, "subclass_brand_id": 5, "rating": 0.0},
    ]


def test_boost_raising_an_intent_group_to_a_tie_is_ordered_by_group_id():
    # predictions 1.0 (id 11, dresses), 0.5 (12, tops), 0.25 (5, duvets), 0.25 (21, socks): spread 0.75,
    # so with strength 1 an intent group at 0.25 scores exactly 1.0 and ties group 11
    hierarchy = Hierarchy(subclasses=np.array(["dresses", "duvets", "socks", "tops"]), classes=np.array(["any"]))
    items = CohortItems(
        ids=np.array([5, 11, 12, 21]),
        factors=np.array([[0.25], [1.0], [0.5], [0.25]], np.float32),
        subclass=np.array([1, 0, 3, 2]),
        klass=np.zeros(4, int),
    )
    got = rank_block(
        np.array([1, 2]),
        np.array([[1.0], [1.0]]),
        (*NOTHING, np.array([])),
        (np.array([0, 1]), np.array([1, 2])),  # member 1 wants duvets (id 5), member 2 socks (id 21)
        items,
        hierarchy,
        RankParams(top_k=4, boost_strength=1.0, max_groups_per_class=4),
    )
    member = got["member_affinities"].select(["member_id", "subclass_brand_id", "rank"]).to_pylist()
    assert [(r["member_id"], r["subclass_brand_id"], r["rank"]) for r in member] == [
        (1, 11, 1), (1, 12, 2), (1, 5, 3), (1, 21, 4),
        (2, 11, 1), (2, 12, 2), (2, 5, 3), (2, 21, 4),
    ]  # fmt: skip
    boosted = got["boosted_affinities"].select(["member_id", "subclass_brand_id", "boost", "score", "rank"])
    assert [tuple(r.values()) for r in boosted.to_pylist()] == [
        (1, 5, 0.75, 1.0, 1), (1, 11, 0.0, 1.0, 2), (1, 12, 0.0, 0.5, 3), (1, 21, 0.0, 0.25, 4),
        (2, 11, 0.0, 1.0, 1), (2, 21, 0.75, 1.0, 2), (2, 12, 0.0, 0.5, 3), (2, 5, 0.0, 0.25, 4),
    ]  # fmt: skip


DRESSES, HEELS, TOPS = '["women","apparel","dresses"]', '["women","shoes","heels"]', '["women","apparel","tops"]'


def test_diversification_keeps_at_most_n_groups_per_class_in_score_order():
    hierarchy = Hierarchy(subclasses=np.array(["any"]), classes=np.array([DRESSES, HEELS, TOPS]))
    items = CohortItems(
        ids=np.arange(1, 8),
        factors=np.array([[0.99], [0.98], [0.97], [0.96], [0.95], [0.9], [0.8]], np.float32),
        subclass=np.zeros(7, int),
        klass=np.array([0, 0, 0, 0, 2, 0, 1]),  # 1-4 and 6 dresses, 5 tops, 7 heels
    )
    got = rank_one([1.0], items, hierarchy, RankParams(top_k=10, boost_strength=0.0, max_groups_per_class=3))
    diversified = got["diversified_affinities"].to_pylist()
    assert [(r["rank"], r["subclass_brand_id"], r["class_key"]) for r in diversified] == [
        (1, 1, DRESSES),
        (2, 2, DRESSES),
        (3, 3, DRESSES),
        (4, 5, TOPS),
        (5, 7, HEELS),
    ]
    assert [r["score"] for r in diversified] == pytest.approx([0.99, 0.98, 0.97, 0.95, 0.8], abs=1e-6)
    assert got["boosted_affinities"]["rank"].to_pylist() == [1, 2, 3, 4, 5, 6, 7]  # top_k capped at 7 items


# --- the Spark composition ------------------------------------------------------------------------------

HIERARCHY_ROWS = (
    "style_id long, subclass_brand_id long, brand string, division string, department string, class string, "
    "subclass string"
)


def run_pass(inputs, models, hierarchy, params) -> dict[str, list[dict]]:
    """The rows `rank_batches` yields for every table, over the batches of `ranking_inputs`."""
    out: dict[str, list] = {name: [] for name in TABLES}
    for name, table in rank_batches(iter(inputs.toArrow().to_batches()), models, hierarchy, params):
        assert table.column_names[-1] == "cohort"
        out[name] += table.to_pylist()
    return out


def collected(out, name, *columns):
    """(cohort, member, rank, group, *columns) of the yielded rows, sorted."""
    key = ("cohort", "member_id", "rank", "subclass_brand_id", *columns)
    return sorted(tuple(r[c] for c in key) for r in out[name])


def test_spark_pass_ranks_each_cohort_with_its_own_model_and_only_candidates(spark):
    factors = spark.createDataFrame(
        [
            ("a", "member", 1, [2.0, 1.0]),
            ("a", "item", 10, [1.0, 0.0]),
            ("a", "item", 20, [0.0, 1.0]),
            ("a", "item", 30, [5.0, 5.0]),  # not on sale: never ranked
            ("a", "item", 40, [1.0, 1.0]),
            ("b", "member", 2, [3.0, 1.0]),
            ("b", "item", 10, [0.0, 1.0]),
            ("b", "item", 20, [1.0, 0.0]),
            ("b", "item", 30, [9.0, 9.0]),
            ("b", "item", 40, [0.0, 0.0]),
            ("c", "member", 3, [1.0, 1.0]),  # cohort c's only item is not on sale: nothing to rank
            ("c", "item", 30, [1.0, 1.0]),
        ],
        "cohort string, side string, id long, factors array<float>",
    )
    ratings = spark.createDataFrame(
        [(1, 10, -1.5), (1, 20, 4.0), (1, 30, 5.0)], "member_id long, subclass_brand_id long, rating double"
    )
    tops, socks = '["women","apparel","clothing","tops"]', '["women","apparel","clothing","socks"]'
    intents = spark.createDataFrame([(2, [tops, socks])], "member_id long, intents array<string>")
    catalog = spark.createDataFrame(
        [(1, 10, "x", "women", "apparel", "clothing", "tops"), (2, 10, "x", "women", "apparel", "clothing", "tops"),
         (3, 20, "y", "women", "apparel", "clothing", "jeans"), (4, 30, "z", "home", "kitchen", "cookware", "pans"),
         (5, 40, "x", "home", "bedding", "duvets", "duvet covers")],
        HIERARCHY_ROWS,
    )  # fmt: skip
    models, hierarchy = cohort_items(factors, [10, 20, 40], group_hierarchy(catalog))
    params = RankParams(top_k=2, boost_strength=2.0, max_groups_per_class=1)
    out = run_pass(ranking_inputs(factors, ratings, intents), models, hierarchy, params)

    # a: predictions 10 -> 2, 20 -> 1, 40 -> 3 (30 excluded); b: 10 -> 1, 20 -> 3, 40 -> 0
    assert collected(out, "member_affinities", "prediction", "rating") == [
        ("a", 1, 1, 40, 3.0, 0.0),
        ("a", 1, 2, 10, 2.0, -1.5),
        ("b", 2, 1, 20, 3.0, 0.0),
        ("b", 2, 2, 10, 1.0, 0.0),
    ]
    # member 2 wants women's tops (group 10): boost 2 x (3 - 1) = 4, score 5; socks has no candidate group
    assert collected(out, "boosted_affinities", "boost", "score") == [
        ("a", 1, 1, 40, 0.0, 3.0),
        ("a", 1, 2, 10, 0.0, 2.0),
        ("b", 2, 1, 10, 4.0, 5.0),
        ("b", 2, 2, 20, 0.0, 3.0),
    ]
    # one group per class: member 2's groups 10 and 20 are both women > apparel > clothing
    clothing, duvets = '["women","apparel","clothing"]', '["home","bedding","duvets"]'
    assert collected(out, "diversified_affinities", "class_key", "score") == [
        ("a", 1, 1, 40, duvets, 3.0),
        ("a", 1, 2, 10, clothing, 2.0),
        ("b", 2, 1, 10, clothing, 5.0),
    ]


# --- names repeated across divisions: men's and women's "Tees" -------------------------------------------

TEES_CATALOG = [
    (1, 11, "aldo", "men", "tops", "Tees", "Graphic Tees"),
    (2, 12, "bema", "men", "tops", "Tees", "Graphic Tees"),
    (3, 21, "aldo", "women", "tops", "Tees", "Graphic Tees"),
    (4, 22, "bema", "women", "tops", "Tees", "Graphic Tees"),
    (5, 30, "aldo", "women", "bottoms", "Jeans", "Skinny Jeans"),
    (6, 21, "aldo", "women", "tops", "Tees", "Graphic Tees"),  # a second style of group 21
]
MEN_GRAPHIC_TEES = '["men","tops","Tees","Graphic Tees"]'
WOMEN_GRAPHIC_TEES = '["women","tops","Tees","Graphic Tees"]'
MEN_TEES, WOMEN_TEES, WOMEN_JEANS = '["men","tops","Tees"]', '["women","tops","Tees"]', '["women","bottoms","Jeans"]'
HIERARCHY_EVENTS = (
    "member_id long, division string, department string, class string, subclass string, event_type string, "
    "event_time timestamp"
)


def tees_models(spark, predictions: dict[int, float], members: list[int]):
    """One cohort `c`: one-dimensional factors, each member's is 1 so that prediction = the item's factor."""
    factors = spark.createDataFrame(
        [("c", "member", m, [1.0]) for m in members] + [("c", "item", g, [p]) for g, p in predictions.items()],
        "cohort string, side string, id long, factors array<float>",
    )
    groups = group_hierarchy(spark.createDataFrame(TEES_CATALOG, HIERARCHY_ROWS))
    models, hierarchy = cohort_items(factors, sorted(predictions), groups)
    return factors, groups, models, hierarchy


def test_a_browsed_subclass_boosts_only_the_groups_of_its_own_division(spark):
    men, women = ("men", "tops", "Tees", "Graphic Tees"), ("women", "tops", "Tees", "Graphic Tees")
    events = spark.createDataFrame(
        [
            (1, *women, "product_view", utc(2026, 10, 30, 10)),
            (1, *women, "add_to_cart", utc(2026, 10, 30, 11)),
            (1, *men, "product_view", utc(2026, 10, 30, 9)),
            (1, *men, "purchase", utc(2026, 10, 30, 9, 30)),  # bought men's: women's stays an intent
            (2, *men, "product_view", utc(2026, 10, 30, 12)),
        ],
        HIERARCHY_EVENTS,
    )
    intents = intent_subclasses(events, 3)
    assert rows(intents, "member_id", "intents") == [(1, [WOMEN_GRAPHIC_TEES]), (2, [MEN_GRAPHIC_TEES])]

    factors, groups, models, hierarchy = tees_models(spark, {11: 1.0, 12: 0.75, 21: 0.5, 22: 0.25, 30: 0.0}, [1, 2])
    ratings = spark.createDataFrame([], "member_id long, subclass_brand_id long, rating double")
    params = RankParams(top_k=5, boost_strength=1.0, max_groups_per_class=5)
    out = run_pass(ranking_inputs(factors, ratings, intents), models, hierarchy, params)
    # spread 1.0 - 0.0 = 1, strength 1: boost 1 on the groups of the member's own Graphic Tees only
    assert collected(out, "boosted_affinities", "boost", "score") == [
        ("c", 1, 1, 21, 1.0, 1.5),
        ("c", 1, 2, 22, 1.0, 1.25),
        ("c", 1, 3, 11, 0.0, 1.0),
        ("c", 1, 4, 12, 0.0, 0.75),
        ("c", 1, 5, 30, 0.0, 0.0),
        ("c", 2, 1, 11, 1.0, 2.0),
        ("c", 2, 2, 12, 1.0, 1.75),
        ("c", 2, 3, 21, 0.0, 0.5),
        ("c", 2, 4, 22, 0.0, 0.25),
        ("c", 2, 5, 30, 0.0, 0.0),
    ]
    boosted = pa.Table.from_pylist(out["boosted_affinities"])
    assert invariants.boosts_outside_intent(boosted, groups.toArrow(), 1) == 0  # one subclass path each


def test_same_named_classes_of_two_divisions_are_two_classes_when_diversifying(spark):
    factors, _, models, hierarchy = tees_models(spark, {11: 1.0, 21: 0.75, 12: 0.5, 22: 0.25, 30: 0.0}, [1])
    ratings = spark.createDataFrame([], "member_id long, subclass_brand_id long, rating double")
    intents = spark.createDataFrame([], "member_id long, intents array<string>")
    params = RankParams(top_k=5, boost_strength=0.0, max_groups_per_class=1)
    out = run_pass(ranking_inputs(factors, ratings, intents), models, hierarchy, params)
    # the best of men's Tees (11) and the best of women's Tees (21) are both kept; 12 and 22 are second in theirs
    assert collected(out, "diversified_affinities", "class_key", "score") == [
        ("c", 1, 1, 11, MEN_TEES, 1.0),
        ("c", 1, 2, 21, WOMEN_TEES, 0.75),
        ("c", 1, 3, 30, WOMEN_JEANS, 0.0),
    ]
    diversified = pa.Table.from_pylist(out["diversified_affinities"])
    assert invariants.classes_over_limit(diversified, 1) == 0


# --- intents ----------------------------------------------------------------------------------------------

PATHS = {
    "duvets": ("home", "bedding", "bedding", "duvets"),
    "towels": ("home", "bath", "towels", "towels"),
    "pans": ("home", "kitchen", "cookware", "pans"),
    "knives": ("home", "kitchen", "cookware", "knives"),
    "sheets": ("home", "bedding", "bedding", "sheets"),
    "plates": ("home", "kitchen", "tabletop", "plates"),
    "jeans": ("women", "apparel", "bottoms", "jeans"),
    "no subclass": ("home", "kitchen", "cookware", None),
    "men's tees": ("men", "apparel", "tops", "tees"),
    "women's tees": ("women", "apparel", "tops", "tees"),
}
DUVETS = '["home","bedding","bedding","duvets"]'
PANS = '["home","kitchen","cookware","pans"]'
KNIVES = '["home","kitchen","cookware","knives"]'
PLATES = '["home","kitchen","tabletop","plates"]'


def event(member, subclass, kind, at):
    return (member, *PATHS[subclass], kind, at)


def test_intents_are_the_top_browsed_subclasses_not_bought(spark):
    events = spark.createDataFrame(
        [
            *[event(1, "duvets", "product_view", utc(2026, 10, 30, h)) for h in range(5)],  # 5 browses
            *[event(1, "towels", "product_view", utc(2026, 10, 30, h)) for h in range(4)],
            event(1, "towels", "purchase", utc(2026, 10, 30, 6)),  # bought: no intent
            *[event(1, "pans", "add_to_cart", utc(2026, 10, 29, h)) for h in range(3)],
            *[event(1, "knives", "product_view", utc(2026, 10, 29, h)) for h in range(2)],
            event(1, "sheets", "product_view", utc(2026, 10, 29, 1)),
            event(1, "plates", "product_view", utc(2026, 10, 29, 2)),  # ties with sheets, browsed later
            *[event(1, "no subclass", "product_view", utc(2026, 10, 30, h)) for h in range(9)],  # no key: never
            event(2, "jeans", "still_want_it", utc(2026, 10, 29, 2)),  # not a browse
        ],
        HIERARCHY_EVENTS,
    )
    assert rows(intent_subclasses(events, 3), "member_id", "intents") == [(1, [DUVETS, PANS, KNIVES])]
    assert rows(intent_subclasses(events, 4), "member_id", "intents") == [(1, [DUVETS, PANS, KNIVES, PLATES])]


def test_intents_of_same_named_subclasses_are_two_and_tie_by_key(spark):
    at = utc(2026, 10, 30, 8)
    events = spark.createDataFrame(
        [
            event(3, "women's tees", "product_view", at),
            event(3, "men's tees", "product_view", at),  # same count, same time: the key decides
            event(4, "women's tees", "product_view", at),
            event(4, "men's tees", "purchase", at),  # a purchase of men's tees is not one of women's
        ],
        HIERARCHY_EVENTS,
    )
    assert rows(intent_subclasses(events, 3), "member_id", "intents") == [
        (3, ['["men","apparel","tops","tees"]', '["women","apparel","tops","tees"]']),
        (4, ['["women","apparel","tops","tees"]']),
    ]


def test_groups_without_a_class_are_not_limited_per_class():
    # an imported log without categories: every group's class is missing (""), so no list is cut to N
    hierarchy = Hierarchy(subclasses=np.array([""]), classes=np.array(["", DRESSES]))
    items = CohortItems(
        ids=np.arange(1, 7),
        factors=np.array([[0.9], [0.8], [0.7], [0.6], [0.5], [0.4]], np.float32),
        subclass=np.zeros(6, int),
        klass=np.array([0, 0, 0, 0, 1, 1]),  # 1-4 without a class, 5-6 dresses
    )
    got = rank_one([1.0], items, hierarchy, RankParams(top_k=6, boost_strength=0.0, max_groups_per_class=1))
    assert got["diversified_affinities"]["subclass_brand_id"].to_pylist() == [1, 2, 3, 4, 5]  # one dress only
    assert invariants.classes_over_limit(got["diversified_affinities"], 1) == 0
