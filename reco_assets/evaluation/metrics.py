"""Ranking and beyond-accuracy metrics over top-k lists, vectorised with pandas.

Inputs are long frames: `ranked` (`member_id`, `item_id`, `rank` 1..n per member) and `relevant`
(`member_id`, `item_id`, one row per relevant pair). Only members with a relevant item are scored; a scored
member without a list scores 0. Relevance is binary. With R the member's relevant items and hit(i) = 1 when
the item at rank i is relevant:

- precision@k = hits in the top k / k
- recall@k    = hits in the top k / |R|
- ndcg@k      = sum_i<=k hit(i) / log2(i + 1), divided by the same sum for an ideal list of min(|R|, k) hits
- map@k       = sum_i<=k hit(i) x precision@i / |R|   (the denominator of `ranx` and TREC: all of R)
- mrr@k       = 1 / rank of the first hit within the top k, 0 without one
- hit_rate@k  = 1 when the top k holds a hit
- coverage@k  = distinct items in any scored member's top k / items that could be recommended
- novelty@k   = mean over lists of the mean self-information -log2 p(item) of the top k, where p is the share
                of training members who interacted with the item (add-one smoothed)
- diversity@k = mean over lists of the distinct classes in the top k

Every number is a mean over scored members except coverage. The definitions agree with `ranx` on fixed
inputs (see the tests); they are computed here rather than with `ranx` because the beyond-accuracy metrics
need the same lists and because thousands of members x several methods x segments fit one pandas pass.
"""

import numpy as np
import pandas as pd


def _per_member(values: pd.Series, members: pd.Index) -> np.ndarray:
    return values.reindex(members, fill_value=0.0).to_numpy(dtype=float)


def member_accuracy(ranked: pd.DataFrame, relevant: pd.DataFrame, ks: list[int]) -> pd.DataFrame:
    """Precision, recall, NDCG, MAP, MRR and hit rate at each k of every member with a relevant item:
    one row per member, one column per (metric, k). A segment of these members averages its rows."""
    return subset_accuracy(ranked, relevant, ks, {"": np.ones(len(relevant), dtype=bool)})[""]


def subset_accuracy(
    ranked: pd.DataFrame, relevant: pd.DataFrame, ks: list[int], subsets: dict[str, np.ndarray]
) -> dict[str, pd.DataFrame]:
    """`member_accuracy` against each subset of the relevant items (name -> boolean mask over the rows of
    `relevant`), with one join of the ranking: the costly part, done once however many subsets."""
    flags = [f"in_{i}" for i in range(len(subsets))]
    pairs = relevant[["member_id", "item_id"]].assign(**dict(zip(flags, subsets.values(), strict=True)))
    pairs = pairs.groupby(["member_id", "item_id"], as_index=False, sort=False)[flags].max()  # any of its rows
    top = ranked.loc[
        (ranked["rank"] <= max(ks)) & ranked["member_id"].isin(pairs["member_id"]), ["member_id", "item_id", "rank"]
    ]
    hits = top.merge(pairs, on=["member_id", "item_id"], how="inner").sort_values(["member_id", "rank"])
    return {
        name: _accuracy(hits[hits[flag]], pairs[pairs[flag]].groupby("member_id").size(), ks)
        for name, flag in zip(subsets, flags, strict=True)
    }


def _accuracy(hits: pd.DataFrame, sizes: pd.Series, ks: list[int]) -> pd.DataFrame:
    """The metrics of `member_accuracy` from the hits (member_id, rank; sorted) and each member's count of
    relevant items."""
    members = sizes.index
    if members.empty:
        return pd.DataFrame(index=members)
    hits = hits[["member_id", "rank"]].assign(hits_so_far=hits.groupby("member_id").cumcount() + 1)
    hits["gain"] = 1.0 / np.log2(hits["rank"] + 1.0)
    hits["precision_at_hit"] = hits["hits_so_far"] / hits["rank"]
    n_relevant = sizes.to_numpy(dtype=float)
    ideal_gains = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(1, max(ks) + 1) + 1.0))])
    out = {}
    for k in ks:
        at_k = hits[hits["rank"] <= k].groupby("member_id")
        n_hits = _per_member(at_k.size(), members)
        ideal = ideal_gains[np.minimum(n_relevant, k).astype(int)]
        first = at_k["rank"].min().reindex(members)
        out[("precision", k)] = n_hits / k
        out[("recall", k)] = n_hits / n_relevant
        out[("ndcg", k)] = _per_member(at_k["gain"].sum(), members) / ideal
        out[("map", k)] = _per_member(at_k["precision_at_hit"].sum(), members) / n_relevant
        out[("mrr", k)] = np.nan_to_num(1.0 / first.to_numpy(dtype=float), nan=0.0)
        out[("hit_rate", k)] = (n_hits > 0).astype(float)
    return pd.DataFrame(out, index=members)


def accuracy_metrics(ranked: pd.DataFrame, relevant: pd.DataFrame, ks: list[int]) -> dict[tuple[str, int], float]:
    """Mean precision, recall, NDCG, MAP, MRR and hit rate at each k over members with a relevant item."""
    return {key: float(value) for key, value in member_accuracy(ranked, relevant, ks).mean().items()}


def member_lists(
    ranked: pd.DataFrame,
    members: pd.Index,
    ks: list[int],
    popularity: pd.Series,
    item_class: pd.Series,
    unseen_share: float,
) -> pd.DataFrame:
    """Novelty and diversity at each k of the lists of `members` (one row per member with a list)."""
    lists = ranked.loc[ranked["member_id"].isin(members), ["member_id", "item_id", "rank"]]
    info = -np.log2(lists["item_id"].map(popularity).fillna(unseen_share).to_numpy(dtype=float))
    lists = lists.assign(info=info, item_class=lists["item_id"].map(item_class))
    out = {}
    for k in ks:
        per_member = lists[lists["rank"] <= k].groupby("member_id")
        out[("novelty", k)] = per_member["info"].mean()
        out[("diversity", k)] = per_member["item_class"].nunique().astype(float)
    return pd.DataFrame(out)


def coverage(ranked: pd.DataFrame, members: pd.Index, ks: list[int], catalog_size: int) -> dict[tuple[str, int], float]:
    """Distinct items in the top k of any of `members` over the items that could be recommended."""
    return segment_coverage(ranked, {"": members}, ks, catalog_size)[""]


def segment_coverage(
    ranked: pd.DataFrame, segments: dict[str, pd.Index], ks: list[int], catalog_size: int
) -> dict[str, dict[tuple[str, int], float]]:
    """`coverage` of every segment (name -> its members) of one ranking: the ranking's members and items are
    coded once, and each segment counts the distinct item codes of its members' rows."""
    top = ranked[ranked["rank"] <= max(ks)]
    members = pd.Index(top["member_id"].unique())
    member_code = members.get_indexer(top["member_id"])
    items, item_code = np.unique(top["item_id"].to_numpy(), return_inverse=True)
    rank = top["rank"].to_numpy()
    out = {}
    for name, scored in segments.items():
        chosen = np.zeros(len(members), dtype=bool)
        found = members.get_indexer(scored)
        chosen[found[found >= 0]] = True
        rows = chosen[member_code]
        out[name] = {
            ("coverage", k): (
                np.count_nonzero(np.bincount(item_code[rows & (rank <= k)], minlength=len(items))) / catalog_size
                if catalog_size
                else 0.0
            )
            for k in ks
        }
    return out


def bootstrap_weights(members: pd.Index, draws: int, seed: int) -> pd.DataFrame:
    """Poisson(1) weights per (draw, member): each row resamples the members with replacement (the Poisson
    bootstrap). Drawn once per set of members and shared by every method, so that the intervals of two
    methods come from the same resamples (a paired comparison)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.poisson(1.0, size=(draws, len(members))).astype(np.float32), columns=members)


def mean_intervals(
    per_member: pd.DataFrame, weights: pd.DataFrame, level: float = 0.95
) -> dict[object, tuple[float, float, float]]:
    """Per column of `per_member` (one row per member): (mean, low, high), the percentile interval of the
    bootstrapped means at `level`. Done by hand as one matrix product over all columns and draws: a
    resampling library would loop over the columns, methods and segments, thousands of them a day."""
    if per_member.empty:
        return {}
    chosen = weights[per_member.index].to_numpy(dtype=np.float64)
    totals = chosen.sum(axis=1, keepdims=True)
    means = (chosen @ per_member.to_numpy(dtype=np.float64)) / np.where(totals > 0, totals, np.nan)
    tail = (1 - level) / 2 * 100
    low, high = np.nanpercentile(means, [tail, 100 - tail], axis=0)
    point = per_member.mean().to_numpy(dtype=np.float64)
    return {key: (float(m), float(lo), float(hi)) for key, m, lo, hi in zip(per_member.columns, point, low, high)}
