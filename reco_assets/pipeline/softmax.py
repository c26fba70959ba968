"""The `softmax` factorization engine: a model of which group a member's events go to next.

A member u picks group g with probability softmax_g(w_u . f_g + b_g) over every group the model knows, and
their rating r of a group counts as log(1 + r) picks of it (so a purchase's 40 points weigh about 3.7 views',
not 13). The factors w, f and the biases b maximise that likelihood with a Gaussian prior on the factors
(`softmax_reg_param` / 2 times their squared norms; the biases are free), by full-batch Adam from a seeded start.

Why beside ALS: implicit ALS fits a squared loss in which every unrated group is a zero preference, so its
factors tell rated groups from unrated ones; this likelihood compares the groups with one another, which is
what ranking a member's candidates asks. The demo's members browse by such a choice, and the engine learns
it better (figures in the README's quality section and the settings).

Cost: each iteration scores every member against the groups once, in blocks of members, and adds the sparse
ratings' part. With more groups than `softmax_sampled_groups`, an iteration normalises each member's
choice over one uniform sample of that many groups (a sampled softmax: a uniform sample's correction is
the same for every group and cancels), so an iteration costs members x sampled groups x rank.

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
    n, m, rank, lam = len(member_ids), len(item_ids), params.softmax_rank, np.float32(params.softmax_reg_param)
    picks = sp.csr_matrix((np.log1p(ratings).astype(np.float32), (rows, cols)), shape=(n, m))
    picks.sum_duplicates()  # sorts each row's groups: the sparse products then add in one order, run after run
    per_member = np.asarray(picks.sum(axis=1), dtype=np.float32)  # n x 1
    per_group = np.asarray(picks.sum(axis=0), dtype=np.float32).ravel()

    rng = np.random.default_rng(params.seed)
    w = (0.1 * rng.standard_normal((n, rank))).astype(np.float32)
    f = (0.1 * rng.standard_normal((m, rank))).astype(np.float32)
    b = np.log1p(per_group)
    b -= b.mean()
    optimiser = _Adam([w, f, b], params.softmax_learning_rate)
    sampled = min(m, params.softmax_sampled_groups)
    block = max(1, BLOCK_CELLS // max(sampled, 1))
    for _ in range(params.softmax_iterations):
        groups = np.arange(m) if sampled == m else np.sort(rng.choice(m, sampled, replace=False))
        grad_w = lam * w - picks @ f
        grad_f = lam * f - picks.T @ w
        grad_b = -per_group
        f_s, b_s = f[groups], b[groups]
        grad_f_s, grad_b_s = np.zeros_like(f_s), np.zeros_like(b_s)
        for start in range(0, n, block):
            part = slice(start, start + block)
            logits = w[part] @ f_s.T + b_s
            logits -= logits.max(axis=1, keepdims=True)
            expected = np.exp(logits)
            expected *= per_member[part] / expected.sum(axis=1, keepdims=True)  # each member's picks, spread
            grad_w[part] += expected @ f_s
            grad_f_s += expected.T @ w[part]
            grad_b_s += expected.sum(axis=0)
        grad_f[groups] += grad_f_s
        grad_b[groups] += grad_b_s
        optimiser.step([grad_w, grad_f, grad_b])
    member_factors = np.hstack([w, np.ones((n, 1), np.float32)])
    item_factors = np.hstack([f, b[:, None]])
    return member_ids, member_factors, item_ids, item_factors


class _Adam:
    """Adam (Kingma and Ba) on numpy arrays in place: a dozen lines, where a deep-learning framework would be
    a gigabyte of dependency for one optimiser."""

    def __init__(self, arrays: list[np.ndarray], rate: float):
        self.arrays, self.rate, self.t = arrays, rate, 0
        self.first = [np.zeros_like(a) for a in arrays]
        self.second = [np.zeros_like(a) for a in arrays]

    def step(self, grads: list[np.ndarray]) -> None:
        self.t += 1
        beta1, beta2 = ADAM_BETAS
        rate = self.rate * np.sqrt(1 - beta2**self.t) / (1 - beta1**self.t)
        for array, grad, first, second in zip(self.arrays, grads, self.first, self.second, strict=True):
            first *= beta1
            first += (1 - beta1) * grad
            second *= beta2
            second += (1 - beta2) * grad * grad
            array -= (rate * first / (np.sqrt(second) + 1e-8)).astype(array.dtype)
