"""What goes with a cart: the co-purchase rules its groups match, merged, and the live styles of the groups
they point to. Plain functions over a request's few lists (a cart holds at most 100 styles), used by the API
at request time; the offline evaluation scores the same rule in SQL over the holdout baskets, and a test
holds the two together.

    antecedents: each of the cart's distinct groups, and each pair of the first `PAIR_GROUPS` of them
    group score: the best lift x confidence of a rule from a matched antecedent to the group
    style score: its group's score / the style's rank in the group's listing (1 for the best)

Groups already in the cart are not proposed; styles are ordered by score, ties by the smaller id.
"""

from itertools import combinations

PAIR_GROUPS = 10
"""Pairs are formed among the cart's first groups only: a cart of 100 groups would ask for 4,950."""


def antecedent_key(groups: tuple[int, ...] | list[int]) -> str:
    """The stored key of an antecedent: its group ids in ascending order, joined by commas."""
    return ",".join(str(g) for g in sorted(groups))


def antecedents(groups: list[int]) -> list[str]:
    """The antecedent keys a cart's distinct groups (in cart order) match: each group, then each pair of the
    first `PAIR_GROUPS`."""
    distinct = list(dict.fromkeys(groups))
    return [antecedent_key((g,)) for g in distinct] + [
        antecedent_key(pair) for pair in combinations(distinct[:PAIR_GROUPS], 2)
    ]


def complementary_groups(cart_groups: list[int], consequents: list[list[tuple[int, float]]]) -> list[tuple[int, float]]:
    """The groups proposed for a cart: for each consequent of the matched rules (`consequents`: the lists of
    (group, lift x confidence) of its matched antecedents), its best score; the cart's own groups left
    out; best first, ties by the smaller id."""
    best: dict[int, float] = {}
    for rules in consequents:
        for group, score in rules:
            if score > best.get(group, float("-inf")):
                best[group] = score
    for group in cart_groups:
        best.pop(group, None)
    return sorted(best.items(), key=lambda item: (-item[1], item[0]))


def spread(groups: list[tuple[int, float]], listings: dict[int, list[int]], exclude: set[int], limit: int):
    """The styles of scored `groups` as (style id, score, group): each style's score its group's score
    divided by its rank in the group's listing (`listings`: group -> style ids, best first), so that the
    best style of each good group comes before the second of the best one; styles of `exclude` left out;
    best first (ties by the smaller style id), at most `limit`."""
    scored = [
        (style, score / rank, group)
        for group, score in groups
        for rank, style in enumerate(listings.get(group, ()), start=1)
        if style not in exclude
    ]
    return sorted(scored, key=lambda item: (-item[1], item[0]))[:limit]
