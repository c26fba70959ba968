"""A day's list re-ranked by what the shopper did in the session so far: plain functions, the same for the API
(over styles) and for the replay evaluation (over subclass-brands).

The daily list is ranked; the session's events say, within minutes, what the shopper is after now. Each
item of the list (a style with its subclass-brand and subclass, or a subclass-brand alone) scores

    1 / log2(position + 1)                      its place in the daily list (1 for the first)
    + subclass_boost  if its subclass was browsed in the session and nothing of it bought (the reference's
                      intent boost, browsed but not bought, live)
    + group_boost     if its subclass-brand itself was browsed and not bought

and items the daily list lacks are drawn in from the similar lists of the session's most recent
subclass-brands (`neighbor_groups` of them), each scoring `neighbor_weight / log2(its place in that list + 1)`
plus the same boosts. Styles bought in the session are dropped. The result is as long as the daily list,
best first, ties kept in the daily order. With no session events the daily list stands.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

PRODUCT_EVENTS = ("product_view", "add_to_cart", "still_want_it", "purchase")
"""The events that name a style the shopper looked at."""


@dataclass(frozen=True)
class Weights:
    group_boost: float
    subclass_boost: float
    neighbor_weight: float
    neighbor_groups: int


@dataclass(frozen=True)
class Item:
    key: str
    """A style id (the API) or a subclass-brand id (the replay)."""
    group: str | None
    subclass: str | None


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


def session_of(entries: Sequence[Sequence], style_groups: dict[str, str], group_subclasses: dict[str, str]) -> Session:
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

    return Session(
        len(entries), groups, boosted, frozenset(subclasses(boosted) - subclasses(bought_groups)), frozenset(bought)
    )


def reranked(
    daily: Sequence[Item], session: Session, neighbors: Sequence[Sequence[Item]], weights: Weights
) -> list[Item]:
    """`daily` re-ranked by `session` (module docstring), drawing in `neighbors`: the similar lists of the
    session's most recent groups (`session.groups[:neighbor_groups]`), in that order, each best first (an
    item in two lists takes its place in the first)."""
    if not session:
        return list(daily)

    boosted, subclasses = session.boosted, session.subclasses
    group_boost, subclass_boost = weights.group_boost, weights.subclass_boost
    scored: dict[str, tuple[float, int, Item]] = {}

    def add(item: Item, score: float) -> None:
        if item.group in boosted:
            score += group_boost
        if item.subclass in subclasses:
            score += subclass_boost
        scored[item.key] = (score, len(scored), item)

    for position, item in enumerate(daily, start=1):
        if item.key not in session.bought and item.key not in scored:
            add(item, 1.0 / math.log2(position + 1))
    for similar in neighbors if weights.neighbor_weight > 0 else ():
        for place, item in enumerate(similar, start=1):
            if item.key not in session.bought and item.key not in scored:
                add(item, weights.neighbor_weight / math.log2(place + 1))
    best = sorted(scored.values(), key=lambda s: (-s[0], s[1]))
    return [item for _, _, item in best[: len(daily)]]
