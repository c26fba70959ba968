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


@dataclass
class BlockSignals:
    """What a block of n members knows about the m candidate groups, as dense n x m arrays."""

    prediction: np.ndarray  # float32
    rating: np.ndarray  # the member's own rating, 0 without one
    age: np.ndarray  # days since the member's last event on the group, inf without one
    intent: np.ndarray  # bool
    popularity: Popularity | None
    purchase_points: float


def _standardised(prediction: np.ndarray) -> np.ndarray:
    centred = prediction - prediction.mean(axis=1, keepdims=True)
    return centred / (prediction.std(axis=1, keepdims=True) + 1e-6)


def _log_share(counts: np.ndarray, members: int) -> np.ndarray:
    return np.log((counts + 1.0) / (members + 1.0))


def feature(name: str, block: BlockSignals) -> np.ndarray:
    """One feature of every (member, group) pair of the block (n x m, or 1 x m for the popularity ones)."""
    if name == "prediction":
        return _standardised(block.prediction)
    if name == "rating":
        return np.log1p(np.maximum(block.rating, 0.0))
    if name == "recency":
        return np.exp(-block.age / RECENCY_DAYS)  # exp(-inf) = 0 for groups without an event
    if name == "repeat":
        positive = block.rating > 0
        bought = (block.rating >= block.purchase_points).sum(axis=1, keepdims=True)
        propensity = bought / np.maximum(positive.sum(axis=1, keepdims=True), 1)
        return positive * propensity
    if name == "intent":
        return block.intent.astype(np.float32)
    popularity = _popularity(block)
    if name == "cohort_popularity":
        return _log_share(popularity.cohort_counts, popularity.cohort_members)[None, :]
    if name == "popularity":
        return _log_share(popularity.counts, popularity.members)[None, :]
    raise ValueError(f"no feature {name!r}; the features are {FEATURES}")


def _popularity(block: BlockSignals) -> Popularity:
    if block.popularity is None:
        raise ValueError("this method needs the candidate groups' popularity (CohortItems.popularity)")
    return block.popularity


def method_scores(method: Method, block: BlockSignals) -> np.ndarray:
    """The n x m scores a method (other than the model's) ranks the candidates by, highest first."""
    n, m = block.prediction.shape
    if method.name == "blend":
        score = np.zeros((n, m))
        for name, weight in method.weights:
            if weight:
                score = score + weight * feature(name, block)
        return score
    popularity = _popularity(block)
    counts = popularity.counts.astype(np.float64)
    if method.name == "popularity":
        return np.broadcast_to(counts, (n, m))
    if method.name == "cohort_popularity":  # the cohort's count, then the overall count (both integers)
        return np.broadcast_to(popularity.cohort_counts * (popularity.members + 1.0) + counts, (n, m))
    if method.name == "repeat":  # own positive ratings above any count, then the overall count
        return np.where(block.rating > 0, popularity.members + 1.0 + block.rating, counts[None, :])
    raise ValueError(f"no ranking method {method.name!r}")
