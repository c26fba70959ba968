"""A day's list re-ranked by what the shopper did in the session so far: plain functions, the same for the API
(over styles) and for the replay evaluation (over subclass-brands).

The daily list is ranked; the session's events say, within minutes, what the shopper is after now. Each
item of the list (a style, or a subclass-brand in the replay) scores

    1 / log2(position + 1)                      its place in the daily list (1 for the first)
    + subclass_boost  if its subclass was browsed in the session and nothing of it bought (the reference's
                      intent boost, browsed but not bought, live)
    + group_boost     if its subclass-brand itself was browsed and not bought

and items the daily list lacks are drawn in from the first `neighbor_items` of the similar lists of the
session's most recent subclass-brands (`neighbor_groups` of them), each scoring
`neighbor_weight / log2(its place in that list + 1)` plus the same boosts. Styles bought in the session are
dropped. The result is as long as the daily list, best first, ties kept in the daily order. With no session
events the daily list stands.

Written by hand, and in two streams: the daily items that no boost moves keep their order (their scores fall
with their places), so only the few boosted or drawn-in items are sorted, then each is placed among them by
bisection. A request re-ranks a feed of 300 styles without a Python step per style beyond a few list
comprehensions.
"""

import math
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

PRODUCT_EVENTS = ("product_view", "add_to_cart", "still_want_it", "purchase")
"""The events that name a style the shopper looked at."""


@dataclass(frozen=True)
class Weights:
    group_boost: float
    subclass_boost: float
    neighbor_weight: float
    neighbor_groups: int
    neighbor_items: int = 20


@dataclass(frozen=True)
class Session:
    """What a shopper's recent events say."""

    events: int
    groups: list[str] = field(default_factory=list)
    """The subclass-brands of the product events, most recent first, each once: their similar lists draw in."""
    boosted: frozenset[str] = frozenset()
    """The subclass-brands browsed and not bought."""
    subclasses: frozenset[str] = frozenset()
    """The subclasses browsed, nothing of them bought."""
    bought: frozenset[str] = frozenset()
    """The styles bought."""

    def __bool__(self) -> bool:
        return self.events > 0


def session_of(
    entries: Sequence[Sequence], style_groups: Mapping[str, str], group_subclasses: Mapping[str, str]
) -> Session:
    """The `Session` of a shopper's entries (`[event_time, event_type, style_id, event_id]`, oldest first),
    styles placed by `style_groups` (style -> subclass-brand) and `group_subclasses` (subclass-brand ->
    subclass key); a style neither knows is counted, not placed."""
    groups: list[str] = []
    bought, bought_groups = set(), set()
    for _, kind, style, _ in reversed(entries):
        if kind not in PRODUCT_EVENTS or style is None:
            continue
        group = style_groups.get(style)
        if kind == "purchase":
            bought.add(style)
            bought_groups.add(group)
        if group is not None and group not in groups:
            groups.append(group)
    boosted = frozenset(groups) - bought_groups

    def subclasses(of) -> set:
        return {group_subclasses[g] for g in of if group_subclasses.get(g) is not None}

    browsed = frozenset(subclasses(boosted) - subclasses(bought_groups))
    return Session(len(entries), groups, boosted, browsed, frozenset(bought))


def place_log(place: int) -> float:
    """log2(place + 1): what the score of the `place`th item of a list (1 for the first) is divided by."""
    return math.log2(place + 1)


PLACE_SCORES = [0.0] + [1.0 / place_log(place) for place in range(1, 1025)]
"""1 / log2(place + 1) by place, for the places of the lists re-ranked so far (grown on demand)."""


def place_scores(length: int) -> list[float]:
    """`PLACE_SCORES`, long enough for a list of `length`."""
    PLACE_SCORES.extend(1.0 / place_log(place) for place in range(len(PLACE_SCORES), length + 1))
    return PLACE_SCORES


def reranked(
    daily: Sequence[str],
    group_of: Mapping[str, str | None],
    subclass_of: Mapping[str, str | None],
    session: Session,
    neighbors: Sequence[Sequence[tuple[str, str | None]]],
    weights: Weights,
) -> list[str]:
    """`daily` (keys, best first, each once) re-ranked by `session` (module docstring): each key's
    subclass-brand is `group_of[key]`, a subclass-brand's subclass `subclass_of[group]`; `neighbors` are the
    similar lists of the session's most recent groups (`session.groups[:neighbor_groups]`), in that order,
    each best first as (key, its subclass-brand) (an item in two lists takes its place in the first)."""
    if not session:
        return list(daily)
    groups = [group_of.get(key) for key in daily]
    lifts = {group: _lift(group, subclass_of, session, weights) for group in set(groups)}
    bought, base = session.bought, place_scores(len(daily))
    placed = list(enumerate(zip(daily, groups), 1))
    staying = [place for place, (key, group) in placed if not lifts[group] and key not in bought]
    moving = [  # (minus the score, arrival: the daily place, then after every daily item, key)
        (-(base[place] + lifts[group]), place, key)
        for place, (key, group) in placed
        if lifts[group] and key not in bought
    ]
    listed = set(daily)
    arrival = len(daily)
    for similar in neighbors if weights.neighbor_weight > 0 else ():
        for place, (key, group) in enumerate(similar[: weights.neighbor_items], start=1):
            if key not in bought and key not in listed:
                listed.add(key)
                arrival += 1
                lift = _lift(group, subclass_of, session, weights)
                moving.append((-(weights.neighbor_weight / place_log(place) + lift), arrival, key))
    moving.sort()
    # the staying items ahead of each moving one: a higher score, or the same and an earlier place
    keys = [daily[place - 1] for place in staying]
    scores = [-base[place] for place in staying]  # ascending, as the places
    out, taken = [], 0
    for score, arrived, key in moving:
        low, high = bisect_left(scores, score, taken), bisect_right(scores, score, taken)
        ahead = bisect_left(staying, arrived, low, high)
        out += keys[taken:ahead]
        out.append(key)
        taken = ahead
        if len(out) >= len(daily):
            break
    out += keys[taken : taken + len(daily) - len(out)]
    return out[: len(daily)]


def _lift(group: str | None, subclass_of: Mapping[str, str | None], session: Session, weights: Weights) -> float:
    """What the session adds to an item of `group`."""
    lift = weights.group_boost if group in session.boosted else 0.0
    return lift + (weights.subclass_boost if subclass_of.get(group) in session.subclasses else 0.0)
