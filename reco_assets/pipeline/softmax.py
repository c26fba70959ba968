"""The `softmax` factorization engine: a model of which group a member's events go to next.

A member u picks group g with probability softmax_g(w_u . f_g + b_g) over every group the model knows, and
their rating r of a group counts as log(1 + r) picks of it (a view's 3 points are 1.4 picks, a purchase's
40 points 3.7: a purchase weighs about 2.7 views, not 13). The factors w, f and the biases b maximise that
likelihood with a Gaussian prior on the factors (`softmax_reg_param` / 2 times their squared norms; the
biases are free), by full-batch Adam from a seeded start.

Why beside ALS: implicit ALS fits a squared loss in which every unrated group is a zero preference, so its
factors tell rated groups from unrated ones; this likelihood compares the groups with one another, which is
what ranking a member's candidates asks. The demo's members browse by such a choice, and the engine learns
it better (figures in the README's quality section and `benchmarks/TUNING.md`).

Cost: the full normaliser scores every member against every group at every step, in blocks of members
(`BLOCK_CELLS`): steps x members x groups x (rank + a few) operations, hours for tens of thousands of groups.
Past `sampled_groups` groups the fit estimates each member's normaliser instead, and its cost follows the
ratings: Z_u = sum over the member's own (rated) groups of exp(s_ug), exactly, plus an importance-sampled
estimate of the rest, sum over S groups drawn (with replacement, shared by every member in the step) from a
proposal q of exp(s_ug) / (S q_g), the draws that are the member's own groups left out (the log-Q
correction: a drawn group's logit less log(S q_g)). Every group is drawn with a positive probability (q is
half the groups' picks to the power 3/4, word2vec's flattening, and half uniform, which bounds every
importance weight), so the estimate of Z_u is unbiased; its log, and so the gradient, is biased by the
estimate's variance, which the exact own-group part keeps small: a member's choice is peaked on their own
groups, and a self-normalised sample without them would miss most of the mass.
A step costs the ratings x rank plus members x S x rank: linear in the ratings, the groups entering only
through the rank-sized factor updates. Tested against the full fit on a small world where both run.

The bias is folded into the factors (a member's last factor is 1, a group's is its bias): a model of this
engine is read as any other, a member's prediction of a group being the dot product of their factors.

A fit may start warm, from an earlier model's factors (`start`: yesterday's, or the evaluation's previous
origin's): the members and groups it knows take their factors and biases, new ones are drawn as in a cold
start (a new group's bias shifted by the known groups' mean difference, since the softmax ignores a shift
of every bias), and `warm_iterations` steps follow instead of `iterations`. The likelihood is the same; only
the starting point, closer to its optimum, differs.
"""

import numpy as np

BLOCK_CELLS = 4_000_000
"""Member x group scores held at once (16 MB of float32)."""
SAMPLED_BLOCK_CELLS = 1_000_000
"""Member x drawn group scores held at once: 4 MB, which stay in cache through a block's dozen passes (twice as
fast as 16 MB on this project's 2-core machines)."""
ADAM_BETAS = (0.9, 0.999)


def fit_softmax(members: np.ndarray, items: np.ndarray, ratings: np.ndarray, params, start: tuple | None = None):
    """One model: (member ids, member factors, item ids, item factors), ids sorted, factors rank + 1 wide;
    from `start`, an earlier model of the same shape (the same tuple), when given."""
    import scipy.sparse as sp

    member_ids, rows = np.unique(members, return_inverse=True)
    item_ids, cols = np.unique(items, return_inverse=True)
    n, m, rank, lam = len(member_ids), len(item_ids), params.rank, np.float32(params.reg_param)
    picks = sp.csr_matrix((np.log1p(ratings).astype(np.float32), (rows, cols)), shape=(n, m))
    picks.sum_duplicates()  # sorts each row's groups: the sparse products then add in one order, run after run
    per_member = np.asarray(picks.sum(axis=1), dtype=np.float32)  # n x 1
    per_group = np.asarray(picks.sum(axis=0), dtype=np.float32).ravel()

    rng = np.random.default_rng(params.seed)
    w = (0.1 * rng.standard_normal((n, rank))).astype(np.float32)
    f = (0.1 * rng.standard_normal((m, rank))).astype(np.float32)
    b = np.log1p(per_group)
    b -= b.mean()
    steps = params.iterations
    if start is not None and params.warm_iterations and _warm(start, member_ids, item_ids, (w, f, b)):
        steps = params.warm_iterations
    optimiser = _Adam([w, f, b], params.learning_rate)
    sampled = 0 < params.sampled_groups < m
    proposal = np.cumsum(_proposal(per_group))
    for _ in range(steps):
        # the gradient of minus the log-likelihood plus the prior: the ratings' part, then the members' expected
        # picks
        grad_w = lam * w - picks @ f
        grad_f = lam * f - picks.T @ w
        grad_b = -per_group
        if sampled:
            # sorted: the estimate does not depend on the draws' order, and a group's draws are one run
            draws = np.searchsorted(proposal, rng.random(params.sampled_groups), side="right")
            draws = np.sort(draws.clip(0, m - 1))
            q = np.diff(proposal, prepend=0.0)[draws]
            _sampled_expectation(picks, per_member, (w, f, b), (grad_w, grad_f, grad_b), draws, q)
        else:
            _full_expectation(per_member, (w, f, b), (grad_w, grad_f, grad_b))
        optimiser.step([grad_w, grad_f, grad_b])
    member_factors = np.hstack([w, np.ones((n, 1), np.float32)])
    item_factors = np.hstack([f, b[:, None]])
    return member_ids, member_factors, item_ids, item_factors


def _warm(start: tuple, member_ids: np.ndarray, item_ids: np.ndarray, factors: tuple) -> bool:
    """Copy into `factors` (w, f, b: a cold start) those of `start` (member ids, member factors, item ids,
    item factors, ids sorted) for the members and groups it knows; the other groups' biases shifted by the
    known ones' mean difference. False, and nothing copied, when `start` is of another rank or knows none."""
    w, f, b = factors
    start_members, start_w, start_items, start_f = start
    rank = w.shape[1]
    if start_w.shape[1] != rank + 1 or start_f.shape[1] != rank + 1:
        return False
    own_m, at_m = _matches(member_ids, start_members)
    own_i, at_i = _matches(item_ids, start_items)
    if not len(own_i):
        return False
    w[own_m] = start_w[at_m, :rank]
    f[own_i] = start_f[at_i, :rank]
    shift = start_f[at_i, rank].mean() - b[own_i].mean()
    b += shift
    b[own_i] = start_f[at_i, rank]
    return True


def _matches(ids: np.ndarray, known: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions in `ids` of the ids `known` (sorted) holds, and their positions there."""
    at = np.searchsorted(known, ids).clip(0, max(len(known) - 1, 0))
    found = known[at] == ids if len(known) else np.zeros(len(ids), bool)
    return np.flatnonzero(found), at[found]


def _proposal(per_group: np.ndarray) -> np.ndarray:
    """The groups' draw probabilities: half by their picks to the power 3/4 (word2vec's flattening), half
    uniform, so that no group's importance weight 1 / (S q) exceeds 2 m / S."""
    weight = per_group.astype(np.float64) ** 0.75
    return 0.5 * weight / weight.sum() + 0.5 / len(per_group)


def _full_expectation(per_member: np.ndarray, factors: tuple, grads: tuple) -> None:
    """Adds every member's expected picks under the model, over every group, to the gradients."""
    (w, f, b), (grad_w, grad_f, grad_b) = factors, grads
    n, m = len(w), len(f)
    block = max(1, BLOCK_CELLS // max(m, 1))
    for start in range(0, n, block):
        part = slice(start, start + block)
        logits = w[part] @ f.T
        logits += b
        logits -= logits.max(axis=1, keepdims=True)
        expected = np.exp(logits, out=logits)
        expected *= per_member[part] / expected.sum(axis=1, keepdims=True)  # each member's picks, spread
        grad_w[part] += expected @ f
        grad_f += expected.T @ w[part]
        grad_b += expected.sum(axis=0)


def _drawn_own(row: np.ndarray, first: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, position in the sorted draws) of every draw of a member's own group: each own cell's `row`, and
    its group's `first` position in the draws and `count` of draws."""
    total = int(count.sum())
    offset = np.arange(total) - np.repeat(np.cumsum(count) - count, count)
    return np.repeat(row, count), np.repeat(first, count) + offset


def _sampled_expectation(picks, per_member: np.ndarray, factors: tuple, grads: tuple, draws, q) -> None:
    """Adds every member's expected picks under the model to the gradients, with each member's normaliser
    estimated from their own groups (exactly) and the sorted `draws` (groups drawn with probabilities `q`,
    log-Q corrected; a draw of one of the member's own groups left out)."""
    import scipy.sparse as sp

    (w, f, b), (grad_w, grad_f, grad_b) = factors, grads
    n, m, size = len(w), len(f), len(draws)
    # the drawn groups' biases, log-Q corrected, ride in the product as a last factor against a member's 1
    drawn_fb = np.empty((size, f.shape[1] + 1), np.float32)
    np.take(f, draws, axis=0, out=drawn_fb[:, :-1])
    drawn_fb[:, -1] = b[draws] - np.log(size * q)
    drawn_f, w1 = drawn_fb[:, :-1], np.hstack([w, np.ones((n, 1), np.float32)])
    first, count = np.searchsorted(draws, np.arange(m)), np.bincount(draws, minlength=m)
    block = max(1, SAMPLED_BLOCK_CELLS // size)
    own_expected = np.empty(picks.nnz, np.float32)  # the own cells' expected picks, in the ratings' order
    drawn_w = np.zeros((size, f.shape[1] + 1), np.float32)  # the drawn groups' expected picks x (w, 1)
    buffer = np.empty((min(block, n), size), np.float32)  # one block's scores, the same pages block after block
    for start in range(0, n, block):
        part = slice(start, start + block)
        cells = slice(picks.indptr[start], picks.indptr[min(start + block, n)])
        indptr = picks.indptr[start : start + block + 1] - picks.indptr[start]
        group = picks.indices[cells]
        row = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
        own_logits = np.einsum("ij,ij->i", np.take(w[part], row, axis=0), np.take(f, group, axis=0))
        own_logits += np.take(b, group)
        logits = np.matmul(w1[part], drawn_fb.T, out=buffer[: len(indptr) - 1])
        logits[_drawn_own(row, first[group], count[group])] = -np.inf  # the own groups are counted exactly
        top = np.maximum(logits.max(axis=1), np.maximum.reduceat(own_logits, indptr[:-1]))
        own_exp = np.exp(own_logits - top[row])
        logits -= top[:, None]
        drawn = np.exp(logits, out=logits)
        scale = per_member[part].ravel() / (np.bincount(row, own_exp, len(indptr) - 1) + drawn.sum(axis=1))
        own_expected[cells] = own_exp * scale[row]
        # the drawn cells' expected picks are drawn x scale by rows: the scale goes on the thin side of each
        # product, and the groups' sums come out of the same product as their factors' (the ones of w1)
        scale = scale.astype(np.float32)[:, None]
        grad_w[part] += scale * (drawn @ drawn_f)
        drawn_w += drawn.T @ (scale * w1[part])
    expected = sp.csr_matrix((own_expected, picks.indices, picks.indptr), shape=picks.shape)
    grad_w += expected @ f
    grad_f += expected.T @ w
    grad_b += np.bincount(picks.indices, own_expected, m).astype(np.float32)
    np.add.at(grad_f, draws, drawn_w[:, :-1])  # a group drawn twice takes both draws' share
    np.add.at(grad_b, draws, drawn_w[:, -1])


class _Adam:
    """Adam (Kingma and Ba) on float32 numpy arrays in place: a dozen lines, where a deep-learning framework
    would be a gigabyte of dependency for one optimiser."""

    def __init__(self, arrays: list[np.ndarray], rate: float):
        self.arrays, self.rate, self.t = arrays, rate, 0
        self.first = [np.zeros_like(a) for a in arrays]
        self.second = [np.zeros_like(a) for a in arrays]

    def step(self, grads: list[np.ndarray]) -> None:
        self.t += 1
        beta1, beta2 = ADAM_BETAS
        # a Python float: a numpy float64 here would turn every update into a float64 copy of the arrays
        rate = float(self.rate * np.sqrt(1 - beta2**self.t) / (1 - beta1**self.t))
        for array, grad, first, second in zip(self.arrays, grads, self.first, self.second, strict=True):
            first *= beta1
            first += (1 - beta1) * grad
            second *= beta2
            second += (1 - beta2) * grad * grad
            step = np.sqrt(second)
            step += 1e-8
            np.divide(first, step, out=step)
            step *= rate
            array -= step
