"""What the API answers for a style (its subclass-brand's similar styles, or the styles bought with them) and
for a cart (the co-purchase rules its subclass-brands match, `baskets`), from a version's item-to-item keys
(`store`: `y:`, `gs:`, `gb:`, `gl:`, `ra:`, `~basket`, `t:`). Plain functions over stored bytes; the cart's
lookups take the store's batched read of one version, so a cart costs at most five batched reads whatever
its size (source ids, groups, rules, listings, fallback)."""

from collections.abc import Awaitable, Callable
from itertools import islice

import orjson

from reco_assets.serving import baskets
from reco_assets.serving.store import BASKET_FALLBACK, LISTED, RULES, STYLE_GROUP, STYLE_SOURCE, Manifest

ReadMany = Callable[[list[bytes]], Awaitable[list[bytes | None]]]
"""A version's values of some keys, in their order (None when missing): `ServingStore.get_many_async`."""


NO_LIST = {"fallback": True, "styles": []}
"""A list that is not stored: as the loader stores a group without one, empty and flagged."""


def kept_entries(entries: list[dict], withdrawn: frozenset[str], leave_out: set[str], limit: int) -> list[dict]:
    """The entries of a stored list (`gs:`, `gb:`, `~basket`) without the styles `withdrawn` or `leave_out`,
    at most `limit`, as stored (a `style_source_id` kept)."""
    kept = (e for e in entries if e["style_id"] not in leave_out and e["style_id"] not in withdrawn)
    return list(islice(kept, limit))


def style_list(
    manifest: Manifest,
    style_id: str,
    source_id: str | None,
    group: bytes,
    stored: bytes | None,
    withdrawn: frozenset[str],
    limit: int,
) -> dict:
    """The answer for `style_id` (asked by `source_id` when not None) of `group` from its group's stored
    list: without the style itself and the withdrawn styles, at most `limit`."""
    document = orjson.loads(stored) if stored is not None else NO_LIST
    asked = {"style_id": style_id} | ({"style_source_id": source_id} if source_id is not None else {})
    return asked | {
        "group_key": group.decode(),
        "version": manifest.version,
        "as_of_date": manifest.as_of_date,
        "fallback": document["fallback"],
        "styles": kept_entries(document["styles"], withdrawn, {style_id}, limit),
    }


async def lakehouse_ids(read: ReadMany, asked: list[str], by_source: bool) -> list[str | None]:
    """The lakehouse ids of `asked` styles: themselves, or mapped from source ids (None when not mapped)."""
    if not by_source:
        return list(asked)
    found = await read([STYLE_SOURCE + style.encode() for style in asked])
    return [style.decode() if style is not None else None for style in found]


async def basket_list(
    read: ReadMany, manifest: Manifest, given: list[str], by_source: bool, withdrawn: frozenset[str], limit: int
) -> dict:
    """The answer for a cart of `given` styles: the styles of the groups its groups' rules propose
    (`baskets`: each group and each pair of the first ones, best rule per proposed group, the first `limit`
    groups, their listings spread by rank), without the cart's groups and styles and the withdrawn styles,
    at most `limit`. None proposed: the stored cart fallback without the cart's and the withdrawn styles,
    flagged. Styles the version does not know are ignored and named (as given) in `unknown_style_ids`."""
    asked = list(dict.fromkeys(given))
    ids = await lakehouse_ids(read, asked, by_source)
    known = [style for style in ids if style is not None]
    group_of = dict(zip(known, await read([STYLE_GROUP + style.encode() for style in known])))
    unknown = [a for a, style in zip(asked, ids) if style is None or group_of[style] is None]
    cart_groups = [int(group_of[style]) for style in known if group_of[style] is not None]
    found = await read([RULES + key.encode() for key in baskets.antecedents(cart_groups)])
    groups = baskets.complementary_groups(cart_groups, [orjson.loads(r) for r in found if r is not None])[:limit]
    listings, exclude = {}, {int(style) for style in known}
    for (group, _), stored in zip(groups, await read([LISTED + str(g).encode() for g, _ in groups])):
        styles = orjson.loads(stored) if stored is not None else []
        listings[group] = [int(style) for style in styles]
        # the withdrawn styles of these listings only: the version's whole list is not copied per request
        exclude.update(int(style) for style in styles if style in withdrawn)
    spread = baskets.spread(groups, listings, exclude, limit)
    if spread:
        styles = [{"style_id": str(style), "score": score, "group_key": str(group)} for style, score, group in spread]
    else:
        (stored,) = await read([BASKET_FALLBACK])
        fallback = orjson.loads(stored) if stored is not None else NO_LIST
        styles = kept_entries(fallback["styles"], withdrawn, set(known), limit)
    return {
        "style_ids": given,
        "version": manifest.version,
        "as_of_date": manifest.as_of_date,
        "fallback": not spread,
        "unknown_style_ids": unknown,
        "styles": styles,
    }
