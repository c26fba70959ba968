"""The ways a member's candidate groups can be ranked, scored densely over a block of members x groups.

Every method ranks the same candidates in the same pass (`affinities.rank_block`), so what a backtest
scores is exactly what the day publishes when that method is the champion:

- `model`: the factor model's prediction, the intent boost and the per-class limit (the reference design);
- `no_boost`: the same without the boost;
- `blend`: a weighted sum of `FEATURES` with weights fitted on earlier backtests (`evaluation/blend.py`),
  then the per-class limit;
- `popularity`, `cohort_popularity`, `repeat`: the obvious baselines (members who bought or carted the group
  recently, overall or in the member's cohort; the member's own rated groups first, then the popular ones).

Ties break by group id everywhere: groups are sorted by id and every sort is stable.
"""

from dataclasses import dataclass

import numpy as np

FEATURES = ("prediction", "rating", "recency", "repeat", "intent", "cohort_popularity", "popularity")
"""The blend's features of a (member, group) pair:
- prediction: the factor model's dot product, standardised over the member's candidates (models differ in scale);
- rating: log(1 + the member's own rating of the group), 0 without one;
- recency: exp(-days since the member's last event on the group / RECENCY_DAYS), 0 without one;
- repeat: the member's repeat propensity (the share of their positively rated groups they bought in, a rating
  of at least one purchase's points) on the groups they rated positively, 0 elsewhere;
- intent: 1 when the group's subclass is one the member browsed but did not buy lately (the boost's signal);
- cohort_popularity, popularity: log of the smoothed share of members who bought or carted the group in the
  popularity window, in the member's cohort and overall."""
RECENCY_DAYS = 14.0
BASELINE_METHODS = ("popularity", "cohort_popularity", "repeat")
SIMPLEST_FIRST = ("popularity", "cohort_popularity", "repeat", "no_boost", "model", "blend")
"""Champion candidates from the simplest: a tie goes to the earlier one."""
DIVERSIFIED = ("model", "no_boost", "blend")
"""Methods whose lists keep the per-class limit (the baselines are published as they are)."""


@dataclass(frozen=True)
class Method:
    name: str
    weights: tuple[tuple[str, float], ...] = ()  # the blend's, per feature

    @classmethod
    def blend(cls, weights: dict[str, float]) -> "Method":
        return cls("blend", tuple((name, float(weights.get(name, 0.0))) for name in FEATURES))


MODEL = Method("model")


@dataclass(frozen=True)
class Popularity:
    """Members who bought or carted each candidate group (aligned with a model's sorted ids) in the window."""

    cohort_counts: np.ndarray
    cohort_members: int
    counts: np.ndarray
    members: int


Cells = tuple[np.ndarray, np.ndarray]
"""(row, column) of some cells of a block."""
SPARSE = ("rating", "recency", "repeat")
"""Features that are 0 outside the cells the member rated."""


@dataclass
class BlockSignals:
    """What a block of n members knows about the m candidate groups, as dense n x m arrays."""

    prediction: np.ndarray  # float32
    rating: np.ndarray  # the member's own rating, 0 without one
    age: np.ndarray  # days since the member's last event on the group, inf without one
    intent: np.ndarray  # bool
    popularity: Popularity | None
    purchase_points: float
    rated: Cells | None = None  # the cells with a rating (where the `SPARSE` features may not be 0)


def _log_share(counts: np.ndarray, members: int) -> np.ndarray:
    return np.log((counts + 1.0) / (members + 1.0))


def feature(name: str, block: BlockSignals, at: Cells | None = None) -> np.ndarray:
    """One feature of every (member, group) pair of the block (n x m, or 1 x m for the popularity ones), or of
    the cells `at` only (a vector): the same numbers, computed for those cells alone."""

    def cells(values: np.ndarray) -> np.ndarray:  # an n x m array, at the cells
        return values if at is None else values[at]

    def per_row(values: np.ndarray) -> np.ndarray:  # an n x 1 array, at the cells' rows
        return values if at is None else values[at[0], 0]

    def per_column(values: np.ndarray) -> np.ndarray:  # a vector of m, at the cells' columns
        return values[None, :] if at is None else values[at[1]]

    if name == "prediction":  # standardised over the member's candidates (models differ in scale)
        mean = block.prediction.mean(axis=1, keepdims=True)
        spread = block.prediction.std(axis=1, keepdims=True) + 1e-6
        return (cells(block.prediction) - per_row(mean)) / per_row(spread)
    if name == "rating":
        return np.log1p(np.maximum(cells(block.rating), 0.0))
    if name == "recency":
        return np.exp(-cells(block.age) / RECENCY_DAYS)  # exp(-inf) = 0 for groups without an event
    if name == "repeat":
        positive = block.rating > 0
        bought = (block.rating >= block.purchase_points).sum(axis=1, keepdims=True)
        propensity = bought / np.maximum(positive.sum(axis=1, keepdims=True), 1)
        return cells(positive) * per_row(propensity)
    if name == "intent":
        return cells(block.intent).astype(np.float32)
    popularity = _popularity(block)
    if name == "cohort_popularity":
        return per_column(_log_share(popularity.cohort_counts, popularity.cohort_members))
    if name == "popularity":
        return per_column(_log_share(popularity.counts, popularity.members))
    raise ValueError(f"no feature {name!r}; the features are {FEATURES}")


def _popularity(block: BlockSignals) -> Popularity:
    if block.popularity is None:
        raise ValueError("this method needs the candidate groups' popularity (CohortItems.popularity)")
    return block.popularity


def _blend(weights: tuple[tuple[str, float], ...], block: BlockSignals) -> np.ndarray:
    """The weighted sum of the features, in `FEATURES` order. The `SPARSE` ones are summed at the rated cells
    only: everywhere else they are 0 and leave the sum as it is, and at those cells every term is summed again
    in the same order, so the numbers are those of the dense sum, without a dense log and exp per feature."""
    n, m = block.prediction.shape
    weighted = [(name, weight) for name, weight in weights if weight]
    at = block.rated
    score = np.zeros((n, m))
    for name, weight in weighted:
        if at is None or name not in SPARSE:
            score = score + weight * feature(name, block)
    if at is not None and any(name in SPARSE for name, _ in weighted):
        summed = np.zeros(len(at[0]))
        for name, weight in weighted:
            summed = summed + weight * feature(name, block, at)
        score[at] = summed
    return score


def method_scores(method: Method, block: BlockSignals) -> np.ndarray:
    """The scores a method (other than the model's) ranks the candidates by, highest first: n x m, or 1 x m
    for a method that ranks every member's candidates alike."""
    n, m = block.prediction.shape
    if method.name == "blend":
        return _blend(method.weights, block)
    popularity = _popularity(block)
    counts = popularity.counts.astype(np.float64)
    if method.name == "popularity":
        return counts[None, :]
    if method.name == "cohort_popularity":  # the cohort's count, then the overall count (both integers)
        return (popularity.cohort_counts * (popularity.members + 1.0) + counts)[None, :]
    if method.name == "repeat":  # own positive ratings above any count, then the overall count
        return np.where(block.rating > 0, popularity.members + 1.0 + block.rating, counts[None, :])
    raise ValueError(f"no ranking method {method.name!r}")
