"""The `softmax` engine against its documented objective, written out here independently, and on planted tastes."""

import numpy as np
import pytest
from pyspark.sql import functions as F

from reco_assets.pipeline.factorization import fit_cohorts
from reco_assets.pipeline.softmax import fit_softmax
from reco_assets.settings import SoftmaxModel

PARAMS = SoftmaxModel(rank=2, reg_param=1.0, iterations=3000)


def _objective(w: np.ndarray, f: np.ndarray, b: np.ndarray, counts: np.ndarray, lam: float) -> float:
    """- sum over members and groups of log(1 + rating) * log softmax(w f' + b) + lam / 2 (|w|^2 + |f|^2)."""
    logits = w @ f.T + b
    log_p = logits - logits.max(axis=1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
    return float(-(counts * log_p).sum() + lam / 2 * ((w**2).sum() + (f**2).sum()))


def _cells(rng, members: int, groups: int, density: float):
    """A random sparse rating matrix as (member ids, group ids, ratings), every member with a rating."""
    ratings = np.where(rng.random((members, groups)) < density, rng.integers(1, 41, (members, groups)), 0)
    ratings[np.arange(members), rng.integers(groups, size=members)] = 3
    rows, cols = np.nonzero(ratings)
    return 1000 + rows, 5000 + 7 * cols, ratings[rows, cols].astype(float)


def test_the_fit_reaches_the_minimum_of_its_objective():
    from scipy.optimize import minimize

    members, groups, rank, lam = 25, 8, PARAMS.rank, PARAMS.reg_param
    member_ids, group_ids, ratings = _cells(np.random.default_rng(3), members, groups, 0.4)
    counts = np.zeros((members, groups))
    counts[member_ids - 1000, (group_ids - 5000) // 7] = np.log1p(ratings)

    got_members, w, got_groups, f = fit_softmax(member_ids, group_ids, ratings, PARAMS)
    assert list(got_members) == list(range(1000, 1000 + members))
    assert list(got_groups) == [5000 + 7 * g for g in range(groups)]
    assert w.shape == (members, rank + 1) and f.shape == (groups, rank + 1)
    assert (w[:, -1] == 1).all()  # the bias is folded in: the last member factor is one, the group's is its bias
    fitted = _objective(w[:, :-1].astype(float), f[:, :-1].astype(float), f[:, -1].astype(float), counts, lam)

    def objective(x):
        split = members * rank, (members + groups) * rank
        parts = np.split(x, split)
        return _objective(parts[0].reshape(members, rank), parts[1].reshape(groups, rank), parts[2], counts, lam)

    best = min(
        minimize(objective, np.random.default_rng(seed).normal(0, 0.5, (members + groups) * rank + groups)).fun
        for seed in range(3)
    )
    assert fitted == pytest.approx(best, rel=1e-4)


def test_the_factors_do_not_depend_on_the_order_of_the_ratings():
    member_ids, group_ids, ratings = _cells(np.random.default_rng(5), 40, 12, 0.3)
    params = PARAMS.model_copy(update={"iterations": 50})
    order = np.random.default_rng(6).permutation(len(ratings))
    first = fit_softmax(member_ids, group_ids, ratings, params)
    again = fit_softmax(member_ids[order], group_ids[order], ratings[order], params)
    for a, b in zip(first, again, strict=True):
        assert np.array_equal(a, b)


def test_planted_tastes_are_learned():
    """Members pick 12 times among 40 groups by a planted rank-2 taste; the model's ranking of each member's
    groups must agree with the taste better than the member's own picks do (it pools what similar members
    picked)."""
    rng = np.random.default_rng(11)
    members, groups = 300, 40
    taste = rng.normal(size=(members, 2)) @ rng.normal(size=(2, groups)) * 1.5
    probabilities = np.exp(taste) / np.exp(taste).sum(axis=1, keepdims=True)
    picks = np.stack([rng.multinomial(12, p) for p in probabilities])
    rows, cols = np.nonzero(picks)
    params = PARAMS.model_copy(update={"rank": 4, "iterations": 300})
    _, w, _, f = fit_softmax(rows, cols, 3.0 * picks[rows, cols], params)

    def agreement(scores: np.ndarray) -> float:
        """Mean over members of the true taste's share of the best 5 groups by `scores`."""
        top = np.argsort(-scores, axis=1, kind="stable")[:, :5]
        return float(np.take_along_axis(probabilities, top, axis=1).sum(axis=1).mean())

    # each member's own picks, ties by popularity: what a model that shares nothing across members could do
    own = picks + 1e-3 * picks.sum(axis=0)
    assert agreement(w @ f.T) > agreement(own)


def test_a_global_softmax_model_is_one_fit_shared_out_to_the_cohorts(spark):
    """The Spark wiring: the global model's task fits what `fit_softmax` fits on every cell (its math is the
    subject of the tests above), and a cohort gets its own members' rows and every group's."""
    cells = [("men_1", m, g, float(1 + (m + 2 * g) % 5)) for m in range(6) for g in range(4) if (m + g) % 3]
    cells += [("kids_3", 100 + m, g, float(1 + (m * g) % 7)) for m in range(6) for g in range(2, 7) if (m + g) % 2]
    ratings = spark.createDataFrame(cells, "cohort string, member_id long, subclass_brand_id long, rating double")
    params = PARAMS.model_copy(update={"scope": "global", "iterations": 100})
    rows = fit_cohorts(ratings, params).where(F.col("cohort") == "kids_3").collect()
    ids = (np.array([c[i] for c in cells]) for i in (1, 2))
    member_ids, w, group_ids, f = fit_softmax(*ids, np.array([c[3] for c in cells], np.float32), params)
    items = {r["id"]: r["factors"] for r in rows if r["side"] == "item"}
    members = {r["id"]: r["factors"] for r in rows if r["side"] == "member"}
    assert sorted(items) == list(group_ids) and sorted(members) == [100 + m for m in range(6)]
    for g, factors in zip(group_ids, f, strict=True):
        assert np.allclose(items[g], factors, atol=1e-6)
    for m in members:
        assert np.allclose(members[m], w[list(member_ids).index(m)], atol=1e-6)


def _planted_world(seed: int, members: int, groups: int, picks_each: int):
    """Members pick `picks_each` times among the groups by a planted rank-4 taste plus group appeal: (member
    ids, group ids, ratings, the dense log(1 + rating) counts, the taste)."""
    rng = np.random.default_rng(seed)
    taste = rng.normal(size=(members, 4)) @ rng.normal(size=(4, groups)) * 1.2 + rng.normal(size=groups)
    probabilities = np.exp(taste - taste.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    picks = np.stack([rng.multinomial(picks_each, p) for p in probabilities])
    picks[rng.integers(members, size=groups), np.arange(groups)] += 1  # every group rated: all are in the model
    rows, cols = np.nonzero(picks)
    ratings = 3.0 * picks[rows, cols]
    counts = np.zeros((members, groups))
    counts[rows, cols] = np.log1p(ratings)
    return rows, cols, ratings, counts, taste


def test_the_sampled_normaliser_fits_what_the_full_softmax_fits():
    """2,000 members, 1,500 groups, 200 drawn per step: the sampled fit's full objective (written out
    above, not estimated) is within 1 % of the full fit's (0.7 % above it), its best 10 groups per member
    find the planted taste's best 10 as often as the full fit's do (within 0.01), and the two fits share
    at least 80 % of each member's best 10 (82 %; a full fit from another seed shares 98 %: the sample's
    noise moves the tail of the top 10, not its quality)."""
    rows, cols, ratings, counts, taste = _planted_world(11, 2_000, 1_500, 15)
    best = np.argsort(-taste, axis=1)[:, :10]
    full = SoftmaxModel(rank=8, sampled_groups=0)
    sampled = full.model_copy(update={"sampled_groups": 200})
    fits = [fit_softmax(rows, cols, ratings, params) for params in (full, sampled)]
    objectives, tops, found = [], [], []
    for _, w, ids, f in fits:
        assert list(ids) == list(range(1_500))
        w, f = w.astype(float), f.astype(float)
        objectives.append(_objective(w[:, :-1], f[:, :-1], f[:, -1], counts, full.reg_param))
        tops.append(np.argsort(-(w @ f.T), axis=1)[:, :10])
        found.append(np.mean([len(set(a) & set(b)) for a, b in zip(tops[-1], best, strict=True)]) / 10)
    assert objectives[1] == pytest.approx(objectives[0], rel=0.01)
    assert found[1] >= found[0] - 0.01
    shared = np.mean([len(set(a) & set(b)) for a, b in zip(*tops, strict=True)]) / 10
    assert shared >= 0.8


def test_a_sample_as_large_as_the_groups_is_the_full_softmax():
    rows, cols, ratings, *_ = _planted_world(5, 60, 30, 6)
    params = PARAMS.model_copy(update={"iterations": 40, "sampled_groups": 0})
    full = fit_softmax(rows, cols, ratings, params)
    for size in (30, 1_000):
        same = fit_softmax(rows, cols, ratings, params.model_copy(update={"sampled_groups": size}))
        for a, b in zip(full, same, strict=True):
            assert np.array_equal(a, b)
    fewer = fit_softmax(rows, cols, ratings, params.model_copy(update={"sampled_groups": 29}))
    assert not np.array_equal(full[3], fewer[3])  # below the groups' count the normaliser is sampled


def test_a_warm_start_takes_the_earlier_models_factors_for_what_it_knows():
    """With steps of size 0, a warm fit is its start: the known members' and groups' factors and biases
    copied, the others drawn as cold, a new group's bias shifted by the known groups' mean difference."""
    member_ids, group_ids, ratings = _cells(np.random.default_rng(8), 12, 5, 0.5)
    earlier = fit_softmax(member_ids, group_ids, ratings, PARAMS.model_copy(update={"iterations": 40}))
    params = PARAMS.model_copy(update={"warm_iterations": 1, "learning_rate": 0.0})
    # today: member 1000 gone, member 999 new; group 5000 gone, group 6000 new
    today = (member_ids != 1000) & (group_ids != 5000)
    members = np.concatenate([member_ids[today], [999, 999]])
    groups = np.concatenate([group_ids[today], [6000, 5007]])
    values = np.concatenate([ratings[today], [3.0, 10.0]])
    got_members, w, got_groups, f = fit_softmax(members, groups, values, params, earlier)
    assert list(got_members) == sorted(set(members)) and list(got_groups) == sorted(set(groups))
    # a cold start, as the module documents it: seeded draws of 0.1 N(0, 1), the biases the groups' centred
    # log(1 + picks)
    rng = np.random.default_rng(params.seed)
    cold_w = 0.1 * rng.standard_normal((len(got_members), params.rank))
    cold_f = 0.1 * rng.standard_normal((len(got_groups), params.rank))
    picks = {g: np.log1p(values[groups == g]).sum() for g in got_groups}
    cold_b = np.log1p([picks[g] for g in got_groups])
    cold_b -= cold_b.mean()
    known = {m: i for i, m in enumerate(earlier[0])}
    for i, m in enumerate(got_members):
        want = earlier[1][known[m], :-1] if m in known else cold_w[i]
        assert w[i, :-1] == pytest.approx(want, abs=1e-6), m
    known = {g: i for i, g in enumerate(earlier[2])}
    shift = np.mean([earlier[3][known[g], -1] - cold_b[i] for i, g in enumerate(got_groups) if g in known])
    assert 6000 not in known and 999 not in earlier[0]
    for i, g in enumerate(got_groups):
        if g in known:
            assert np.array_equal(f[i], earlier[3][known[g]]), g
        else:  # the new group: drawn as cold, its bias moved with the others'
            assert f[i, :-1] == pytest.approx(cold_f[i], abs=1e-6)
            assert f[i, -1] == pytest.approx(cold_b[i] + shift, abs=1e-5)


def test_a_warm_fit_from_last_weeks_model_reaches_the_cold_fits_objective():
    """A model fitted on most of the picks, then a warm fit of `warm_iterations` steps on all of them: its
    objective (written out independently) is as low as a cold fit's of `iterations` steps, and lower than a
    cold fit's of as few steps."""
    rows, cols, ratings, counts, _ = _planted_world(21, 200, 30, 15)
    params = PARAMS.model_copy(update={"rank": 4, "iterations": 150, "warm_iterations": 30, "learning_rate": 0.05})
    older = np.random.default_rng(22).random(len(ratings)) < 0.8
    earlier = fit_softmax(rows[older], cols[older], ratings[older], params)
    lam = params.reg_param

    def objective(model) -> float:
        _, w, _, f = model
        return _objective(w[:, :-1].astype(float), f[:, :-1].astype(float), f[:, -1].astype(float), counts, lam)

    warm = objective(fit_softmax(rows, cols, ratings, params, earlier))
    cold = objective(fit_softmax(rows, cols, ratings, params))
    short = objective(fit_softmax(rows, cols, ratings, params.model_copy(update={"iterations": 30})))
    assert warm <= cold * 1.002 and warm < short


def test_a_warm_global_model_starts_from_the_shared_out_rows(spark):
    """The Spark wiring of a warm start: the earlier model's rows as every cohort holds them reach the task
    once per member and group, and the task fits what `fit_softmax` fits from that model."""
    cells = [("men_1", m, g, float(1 + (m + 2 * g) % 5)) for m in range(6) for g in range(4) if (m + g) % 3]
    cells += [("kids_3", 100 + m, g, float(1 + (m * g) % 7)) for m in range(6) for g in range(2, 7) if (m + g) % 2]
    ratings = spark.createDataFrame(cells, "cohort string, member_id long, subclass_brand_id long, rating double")
    params = PARAMS.model_copy(update={"scope": "global", "iterations": 60, "warm_iterations": 7})
    earlier_rows = fit_cohorts(ratings.where(F.col("member_id") != 3), params).localCheckpoint()
    rows = fit_cohorts(ratings, params, earlier_rows).where(F.col("cohort") == "men_1").collect()
    ids = (np.array([c[i] for c in cells]) for i in (1, 2))
    values = np.array([c[3] for c in cells], np.float32)
    older = [c for c in cells if c[1] != 3]
    earlier = fit_softmax(*(np.array([c[i] for c in older]) for i in (1, 2)), np.array([c[3] for c in older]), params)
    member_ids, w, group_ids, f = fit_softmax(*ids, values, params, earlier)
    items = {r["id"]: r["factors"] for r in rows if r["side"] == "item"}
    members = {r["id"]: r["factors"] for r in rows if r["side"] == "member"}
    assert sorted(items) == list(group_ids) and sorted(members) == list(range(6))
    for g, factors in zip(group_ids, f, strict=True):
        assert np.allclose(items[g], factors, atol=1e-5)
    for m in members:
        assert np.allclose(members[m], w[list(member_ids).index(m)], atol=1e-5)
