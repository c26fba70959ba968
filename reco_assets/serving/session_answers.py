"""Answers re-ranked by the shopper's session (`rerank`), from a version's keys: the styles' subclass-brands
(`y:`), the subclass-brands' subclasses (`gc:`) and similar lists (`gs:`). Three batched reads of the store
whatever the list's length: the styles' groups, the similar lists of the session's groups with the list's
subclasses, the drawn-in styles' subclasses.

- A member's payload: its product feed re-ranked (styles of the browsed subclass-brands and subclasses up,
  similar styles of the session's drawn in), the styles bought in the session dropped from every feed; the
  card stays the head of the full list.
- A style's or a cart's list: its entries re-ranked the same way (similar lists draw in the session's
  neighbours; bought-together and carts only move and drop what they hold).
"""

from collections import OrderedDict
from collections.abc import Hashable, Sequence

import orjson

from reco_assets.serving.item_answers import ReadMany
from reco_assets.serving.rerank import Session, Weights, reranked, session_of
from reco_assets.serving.store import GROUP_SUBCLASS, SIMILAR, STYLE_GROUP

SOURCE_ID = "style_source_id"


class Placed:
    """Styles placed in their subclass-brands and subclasses, read from one version as needed."""

    def __init__(self, read: ReadMany):
        self.read = read
        self.groups: dict[str, str] = {}
        self.subclasses: dict[str, str] = {}

    async def styles(self, styles: Sequence[str]) -> None:
        missing = [s for s in dict.fromkeys(styles) if s not in self.groups]
        found = await self.read([STYLE_GROUP + s.encode() for s in missing])
        self.groups |= {s: g.decode() for s, g in zip(missing, found) if g is not None}

    def subclass_keys(self, groups: Sequence[str]) -> list[bytes]:
        return [GROUP_SUBCLASS + g.encode() for g in dict.fromkeys(groups) if g not in self.subclasses]

    def learn_subclasses(self, keys: list[bytes], found: list[bytes | None]) -> None:
        prefix = len(GROUP_SUBCLASS)
        self.subclasses |= {k[prefix:].decode(): v.decode() for k, v in zip(keys, found) if v is not None}


async def session_context(
    read: ReadMany, entries: list[list], listed: Sequence[str], groups: Sequence[str], weights: Weights, draw_in: bool
) -> tuple[Session, Placed, list[list[dict]]]:
    """The session of `entries`; the styles of `listed` and of the session placed, with the subclasses of
    their groups and of `groups`; and (`draw_in`) the similar lists (entries) of the session's most recent
    groups."""
    placed = Placed(read)
    await placed.styles([entry[2] for entry in entries if entry[2] is not None] + list(listed))
    session = session_of(entries, placed.groups, {})
    near = session.groups[: weights.neighbor_groups] if draw_in else []
    keys = placed.subclass_keys([*placed.groups.values(), *groups])
    found = await read([SIMILAR + g.encode() for g in near] + keys)
    placed.learn_subclasses(keys, found[len(near) :])
    similar = [orjson.loads(stored)["styles"] if stored is not None else [] for stored in found[: len(near)]]
    drawn = placed.subclass_keys([e["group_key"] for entries_ in similar for e in entries_])
    placed.learn_subclasses(drawn, await read(drawn) if drawn else [])
    session = session_of(entries, placed.groups, placed.subclasses)
    return session, placed, similar


def summary(session: Session) -> dict:
    return {"session": {"reranked": bool(session), "events": session.events}}


async def member_payload(read: ReadMany, stored: bytes, entries: list[list], weights: Weights) -> tuple[bytes, Session]:
    """A stored member payload (or the fallback) with its product feed re-ranked by the session of `entries`,
    and the session (its `bought` styles are for the caller to drop from every feed)."""
    document = orjson.loads(stored)
    products = document["feeds"]["products"]
    full = products[0]["full"] if products else []
    session, placed, similar = await session_context(read, entries, full, [], weights, draw_in=True)
    if products:
        products[0] = _reranked_group(products[0], session, placed, similar, weights)
    document |= summary(session)
    return orjson.dumps(document), session


def _reranked_group(group: dict, session: Session, placed: Placed, similar: list[list[dict]], weights: Weights) -> dict:
    """A feed group (`card`, `full`, source ids aligned) with its full list re-ranked; the card is the head
    of the new list when it was the head of the old one, else it keeps its styles in the new order."""
    full = group["full"]
    sources = dict(zip(full, group.get("full_source_ids", [])))
    for entries in similar:
        sources |= {e["style_id"]: e[SOURCE_ID] for e in entries if SOURCE_ID in e}
    neighbors = [[(e["style_id"], e["group_key"]) for e in entries] for entries in similar]
    ranked = reranked(full, placed.groups, placed.subclasses, session, neighbors, weights)
    card = group["card"]
    if full[: len(card)] == card:
        card = ranked[: len(card)]
    else:
        order = {style: at for at, style in enumerate(ranked)}
        card = sorted((s for s in card if s in order), key=order.get)
    out = group | {"full": ranked, "card": card}
    if "full_source_ids" in group:
        out |= {"full_source_ids": [sources[s] for s in ranked], "card_source_ids": [sources[s] for s in card]}
    return out


async def entries_list(
    read: ReadMany, listed: list[dict], entries: list[list], weights: Weights, draw_in: bool
) -> tuple[list[dict], Session]:
    """Entries of a stored list (`{"style_id", "score", "group_key"}`, best first) re-ranked by the session of
    `entries` (`draw_in`: with the similar styles of the session's groups), scores as stored (drawn-in
    entries keep their own list's), and the session."""
    groups = [e["group_key"] for e in listed]
    session, placed, similar = await session_context(read, entries, [], groups, weights, draw_in)
    by_style = {e["style_id"]: e for e in listed}
    for similar_entries in similar:
        by_style = {e["style_id"]: e for e in similar_entries} | by_style
    neighbors = [[(e["style_id"], e["group_key"]) for e in entries_] for entries_ in similar]
    group_of = {e["style_id"]: e["group_key"] for e in listed}
    daily = [e["style_id"] for e in listed]
    return [by_style[key] for key in reranked(daily, group_of, placed.subclasses, session, neighbors, weights)], session


class Remembered:
    """The last `size` re-ranked answers, by what they depend on (the version, the shopper, the digest of their
    session's events): a shopper's requests between two of their events re-rank once. A new event changes the
    digest, so a remembered answer is never stale."""

    def __init__(self, size: int = 4096):
        self.size = size
        self.kept: OrderedDict = OrderedDict()

    def get(self, key: Hashable):
        found = self.kept.get(key)
        if found is not None:
            self.kept.move_to_end(key)
        return found

    def put(self, key: Hashable, value) -> None:
        self.kept[key] = value
        if len(self.kept) > self.size:
            self.kept.popitem(last=False)
