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

Cost: each step scores every member against every group, in blocks of members (`BLOCK_CELLS`), with two
matrix products and an exponential per cell, and adds the sparse ratings' part: steps x members x groups x
(rank + a few) operations. A sampled normaliser (a uniform sample of groups per step) would cut that for
tens of thousands of groups, but a self-normalised sample is biased once each member's choice is peaked
(it misses the groups that carry the mass), and the fit then drifts from the optimum as it converges: it
is not offered until it includes each member's own groups.

The bias is folded into the factors (a member's last factor is 1, a group's is its bias): a model of this
engine is read as any other, a member's prediction of a group being the dot product of their factors.
"""

import numpy as np

BLOCK_CELLS = 4_000_000
"""Member x group scores held at once (16 MB of float32)."""
ADAM_BETAS = (0.9, 0.999)


def fit_softmax(members: np.ndarray, items: np.ndarray, ratings: np.ndarray, params):
    """One model: (member ids, member factors, item ids, item factors), ids sorted, factors rank + 1 wide."""
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
    optimiser = _Adam([w, f, b], params.learning_rate)
    block = max(1, BLOCK_CELLS // max(m, 1))
    for _ in range(params.iterations):
        # the gradient of minus the log-likelihood plus the prior: the ratings' part, then the members' expected picks
        grad_w = lam * w - picks @ f
        grad_f = lam * f - picks.T @ w
        grad_b = -per_group
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
        optimiser.step([grad_w, grad_f, grad_b])
    member_factors = np.hstack([w, np.ones((n, 1), np.float32)])
    item_factors = np.hstack([f, b[:, None]])
    return member_ids, member_factors, item_ids, item_factors


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
