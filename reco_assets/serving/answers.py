"""What the API answers for one member: the stored payload, passed through untouched when nothing has to
change, else trimmed at request time (withdrawn styles, one feed, a limit). Plain functions over bytes."""

import re

import orjson

MAX_LONG = 2**63 - 1
QUOTED_NUMBER = re.compile(rb'"(\d+)"')


def is_lakehouse_id(text: str) -> bool:
    """A lakehouse member or style id as the lakehouse writes it: a non-negative decimal integer of at most
    63 bits, without leading zeros (``007`` would miss member 7's payload and get the fallback)."""
    return text.isascii() and text.isdigit() and len(text) <= 19 and int(text) <= MAX_LONG and str(int(text)) == text


def is_source_id(text: str) -> bool:
    """A source (imported) member or style id: 1 to 256 printable characters."""
    return 0 < len(text) <= 256 and text.isprintable()


def names_any(payload: bytes, styles: frozenset[str]) -> bool:
    """Whether the payload names one of `styles`: ids are quoted decimal strings, so a scan for them finds
    every style it names (and at worst a member id too, which only costs a decode)."""
    return not styles.isdisjoint(number.decode() for number in QUOTED_NUMBER.findall(payload))


def _trimmed(group: dict, withdrawn: frozenset[str], limit: int | None) -> dict:
    """A group's lists without withdrawn styles (source ids kept aligned), at most `limit` long. A card
    that is the head of its full list stays the head of the trimmed list, so it keeps its size."""
    full = group["full"]
    keep = [i for i, style in enumerate(full) if style not in withdrawn]
    card_is_head = full[: len(group["card"])] == group["card"]
    card_size = len(group["card"])
    trimmed = dict(group)
    for lists in (("card", "full"), ("card_source_ids", "full_source_ids")):
        card, whole = lists
        if whole not in group:
            continue
        trimmed[whole] = [group[whole][i] for i in keep][:limit]
        if card_is_head:
            trimmed[card] = trimmed[whole][:card_size]
        else:
            kept = [i for i, style in enumerate(group["card"]) if style not in withdrawn]
            trimmed[card] = [group[card][i] for i in kept][:limit]
    return trimmed


def shape(
    payload: bytes,
    withdrawn: frozenset[str] = frozenset(),
    feed: str | None = None,
    limit: int | None = None,
    fill: dict | None = None,
) -> bytes:
    """The answer for a stored `payload`: the same bytes when there is nothing to change (no withdrawn
    style in it, no `feed`, `limit` or `fill`); else decoded, without the `withdrawn` styles, with the
    other feeds than `feed` empty, at most `limit` styles per list, and the fields of `fill` set (a
    fallback's member id). Groups left without styles are dropped."""
    withdrawn = withdrawn if withdrawn and names_any(payload, withdrawn) else frozenset()
    if not (withdrawn or feed or limit or fill):
        return payload
    document = orjson.loads(payload)
    document.update(fill or {})
    feeds = document["feeds"]
    if feed:
        feeds = {name: (groups if name == feed else []) for name, groups in feeds.items()}
    if withdrawn or limit:
        feeds = {
            name: [g for g in (_trimmed(group, withdrawn, limit) for group in groups) if g["full"]]
            for name, groups in feeds.items()
        }
    document["feeds"] = feeds
    return orjson.dumps(document)
