"""One simulated day of clickstream: sessions, groups chosen by taste and mission, styles by appeal, the funnel."""

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from reco_assets.simulator.catalog import HOUR, Styles, utc_day_start
from reco_assets.simulator.world import World, draw_by_taste, draw_in_blocks, draw_subclass_blocks, draw_subclasses

MISSION_START = 0.15
"""Daily chance that a member without a shopping mission starts one."""
MISSION_FOCUS = 0.6
"""Share of a member's views spent inside the mission's subclass while it lasts."""
MISSION_DONE = 0.7
"""Chance that buying inside the mission's subclass ends the mission."""
SESSION_FOCUS = 0.5
"""Chance that a session's later view stays in the subclass of its first one (a shopper browsing dresses
keeps to dresses for a while): what a session says about the next view, beyond the member's tastes and
missions. A view spent on the member's mission keeps to the mission's subclass instead."""
CART_RATE = (0.10, 0.22)
"""Chance that a view adds to cart: outside, inside a mission."""
REMOVE, PURCHASE = 0.25, 0.5
"""What follows an add to cart: removed again, bought (else left in the cart)."""
STILL_WANT = 0.3
"""Chance that a view of a sold-out style says 'still want it' (and no add to cart can follow)."""

KINDS = ("product_view", "still_want_it", "add_to_cart", "remove_from_cart", "purchase", "page_view", "boutique_view")
FOLLOW_UP_MS = {"still_want_it": 5_000, "add_to_cart": 20_000, "remove_from_cart": 60_000, "purchase": 90_000}
"""Delay of each funnel event after its view."""
CART_KINDS = [KINDS.index(k) for k in ("add_to_cart", "remove_from_cart", "purchase")]
"""Kinds with a quantity (always 1)."""
PAGE_LEAD_MS = 30_000
"""A session's list-page or boutique view comes this long before its first product view."""
EVENT_COLUMNS = ["event_id", "member_id", "style_id", "session_id", "price", "event_type", "event_time", "quantity"]
"""Columns of the day's events, in the order of the keys of each JSON line."""


@dataclass(frozen=True)
class Funnel:
    """What follows a view, and which sessions are logged: the flash sale's by default.

    A grocery or department-store log (the wide profile) buys far more of what it picks up, and most of its
    sessions are in the store, where the till records the purchases and nothing else.
    """

    cart_rate: tuple[float, float] = CART_RATE
    remove: float = REMOVE
    purchase: float = PURCHASE
    online_share: float = 1.0
    """Share of sessions online, with every event logged; the others log their purchases only."""


@dataclass
class Missions:
    """Short-term intent: a member hunting in one subclass for a few days, browsing it until they buy.

    This is the behaviour the boost of browsed-not-bought subclasses exists for; without it the only
    learnable structure would be the members' long-term tastes.
    """

    subclass: np.ndarray  # subclass index per member, -1 without a mission
    days_left: np.ndarray

    @classmethod
    def none(cls, members: int) -> "Missions":
        return cls(np.full(members, -1, dtype=np.int64), np.zeros(members, dtype=np.int64))

    def advance(self, rng: np.random.Generator, world: World) -> None:
        """End the missions that ran out and start new ones, each in a subclass the member likes."""
        self.days_left -= 1
        self.subclass[self.days_left <= 0] = -1
        starting = np.flatnonzero((self.subclass < 0) & (rng.random(len(self.subclass)) < MISSION_START))
        if world.nested:  # the nested law's first stage, over the subclasses that have groups
            present = np.unique(world.sb_subclass)
            self.subclass[starting] = present[draw_subclasses(rng, world, starting, present)]
        else:
            liked = draw_by_taste(rng, world, starting, np.arange(len(world.sb_subclass)))
            self.subclass[starting] = world.sb_subclass[liked]
        self.days_left[starting] = 2 + rng.geometric(0.25, size=len(starting))


def sold_out_at_view(view_style: np.ndarray, would_buy: np.ndarray, stock: np.ndarray) -> np.ndarray:
    """Whether each view (in time order) finds its style sold out, when views that would buy do buy while stock lasts.

    Until a style sells out every would-be purchase goes through, so a view finds it sold out exactly when the
    would-be purchases of that style before it, in time order, reach the style's stock at midnight.
    """
    by_style = np.argsort(view_style, kind="stable")  # stable: time order inside each style
    style, buys = view_style[by_style], would_buy[by_style].astype(np.int64)
    before = np.cumsum(buys) - buys
    first = np.r_[0, np.flatnonzero(np.diff(style)) + 1]
    before -= np.repeat(before[first], np.diff(np.r_[first, len(style)]))
    out = np.empty(len(view_style), dtype=bool)
    out[by_style] = before >= stock[style]
    return out


def simulate_events(
    rng: np.random.Generator,
    world: World,
    styles: Styles,
    day: date,
    missions: Missions,
    funnel: Funnel = Funnel(),
) -> pd.DataFrame:
    """One day of clickstream: sessions pick groups by taste and mission, styles by appeal, then the funnel.

    Updates the styles' stock and ends the missions of members who bought what they were hunting for.
    """
    start = utc_day_start(day)
    live = np.flatnonzero((styles.live_from < start + 24 * HOUR) & (styles.live_until > start))
    if len(live) == 0:
        return pd.DataFrame(columns=EVENT_COLUMNS)
    missions.advance(rng, world)
    n_sessions = rng.poisson(world.member_activity)
    members = np.repeat(np.arange(len(world.member_ids)), n_sessions)
    views_per_session = 1 + rng.geometric(0.3, size=len(members))
    views = {
        "member": np.repeat(members, views_per_session),
        "session": np.repeat(np.arange(len(members)), views_per_session),
    }
    views["style"], views["on_mission"] = choose_styles(
        rng, world, styles, live, views["member"], views["session"], missions
    )
    views["ms"] = view_times(rng, styles, views["style"], start)
    order = np.argsort(views["ms"], kind="stable")  # the funnel runs in time order
    views = {name: values[order] for name, values in views.items()}

    # The funnel, drawn for every view at once; sell-outs follow from the would-be purchases in time order.
    n = len(order)
    cart = rng.random(n) < np.where(views["on_mission"], funnel.cart_rate[1], funnel.cart_rate[0])
    after_cart = rng.random(n)
    would_buy = cart & (after_cart >= funnel.remove) & (after_cart < funnel.remove + funnel.purchase)
    sold_out = sold_out_at_view(views["style"], would_buy, styles.qty)
    outcome = {
        "still_want_it": sold_out & (rng.random(n) < STILL_WANT),
        "add_to_cart": cart & ~sold_out,
        "remove_from_cart": cart & ~sold_out & (after_cart < funnel.remove),
        "purchase": would_buy & ~sold_out,
    }
    styles.qty -= np.bincount(views["style"][outcome["purchase"]], minlength=len(styles))
    done = outcome["purchase"] & views["on_mission"] & (rng.random(n) < MISSION_DONE)
    missions.subclass[views["member"][done]] = -1
    if funnel.online_share < 1:
        views["in_store"] = (rng.random(len(members)) >= funnel.online_share)[views["session"]]
    return events_frame(rng, world, styles, day, views, outcome)


def choose_styles(
    rng: np.random.Generator,
    world: World,
    styles: Styles,
    live: np.ndarray,
    view_member: np.ndarray,
    view_session: np.ndarray,
    missions: Missions,
) -> tuple[np.ndarray, np.ndarray]:
    """The style of each view (`view_session`: the views of a session are contiguous, its first one first),
    and whether the view is spent on the member's mission.

    The group is drawn by the member's taste over the live groups, or over the mission subclass's live groups
    for a share of the views of members on a mission (groups sorted by subclass make that a column block);
    the style by appeal among the group's live styles. In a nested world the other views draw a subclass
    first (`draw_subclass_blocks`), and every view its group inside its block (`draw_in_blocks`). Then a
    share (`SESSION_FOCUS`) of each session's later views off the mission is drawn again, by taste inside the
    subclass of the session's first view.
    """
    live_sb = np.unique(styles.sb[live])
    live_sb = live_sb[np.argsort(world.sb_subclass[live_sb], kind="stable")]
    live_subclass = world.sb_subclass[live_sb]
    mission = missions.subclass[view_member]
    lo = np.searchsorted(live_subclass, mission, side="left")
    hi = np.searchsorted(live_subclass, mission, side="right")
    on_mission = (mission >= 0) & (hi > lo) & (rng.random(len(view_member)) < MISSION_FOCUS)
    if world.nested:
        free = np.flatnonzero(~on_mission)
        lo[free], hi[free] = draw_subclass_blocks(rng, world, view_member[free], live_sb)
        view_sb = live_sb[draw_in_blocks(rng, world, view_member, live_sb, lo, hi)]
    else:
        lo, hi = np.where(on_mission, lo, 0), np.where(on_mission, hi, len(live_sb))
        view_sb = live_sb[draw_by_taste(rng, world, view_member, live_sb, lo, hi)]
    first = np.r_[0, np.flatnonzero(np.diff(view_session)) + 1]
    opening = np.repeat(view_sb[first], np.diff(np.r_[first, len(view_session)]))  # each view's session's first
    later = np.ones(len(view_member), dtype=bool)
    later[first] = False
    focused = np.flatnonzero(later & ~on_mission & (rng.random(len(view_member)) < SESSION_FOCUS))
    focus = world.sb_subclass[opening[focused]]
    lo = np.searchsorted(live_subclass, focus, side="left")
    hi = np.searchsorted(live_subclass, focus, side="right")
    view_sb[focused] = live_sb[draw_in_blocks(rng, world, view_member[focused], live_sb, lo, hi)]

    # Inverse CDF over the cumulative appeal of the live styles sorted by group, inside the view's group.
    live = live[np.argsort(styles.sb[live], kind="stable")]
    appeal = np.cumsum(styles.appeal[live])
    first = np.searchsorted(styles.sb[live], view_sb, side="left")
    last = np.searchsorted(styles.sb[live], view_sb, side="right") - 1
    below = np.where(first > 0, appeal[np.maximum(first - 1, 0)], 0.0)
    at = np.searchsorted(appeal, below + rng.random(len(view_sb)) * (appeal[last] - below), side="right")
    return live[np.clip(at, first, last)], on_mission


def view_times(rng: np.random.Generator, styles: Styles, view_style: np.ndarray, start: int) -> np.ndarray:
    """Epoch ms of each view, uniform inside the style's live window on the day."""
    lo = np.maximum(styles.live_from[view_style], start)
    span = np.minimum(styles.live_until[view_style], start + 24 * HOUR) - lo
    offset = (lo - start) + rng.random(len(view_style)) * np.maximum(span - 1, 0)
    return start * 1000 + np.round(offset * 1000).astype(np.int64)


def events_frame(
    rng: np.random.Generator,
    world: World,
    styles: Styles,
    day: date,
    views: dict[str, np.ndarray],
    outcome: dict[str, np.ndarray],
) -> pd.DataFrame:
    """The day's events in time order: the views, what followed them, and a list-page or boutique view
    (non-scoring) before each session's first product view. Of the views `in_store`, only the purchases."""
    _, first_view = np.unique(views["session"], return_index=True)
    page_kind = np.where(rng.random(len(first_view)) < 0.5, KINDS.index("page_view"), KINDS.index("boutique_view"))
    followed = [np.flatnonzero(outcome[k]) for k in FOLLOW_UP_MS]
    view = np.concatenate([np.arange(len(views["style"])), *followed, first_view])
    kind = np.concatenate([np.full(len(p), KINDS.index(k)) for k, p in zip(FOLLOW_UP_MS, followed)])
    kind = np.concatenate([np.zeros(len(views["style"]), dtype=np.int64), kind, page_kind])
    if "in_store" in views:
        logged = ~views["in_store"][view] | (kind == KINDS.index("purchase"))
        view, kind = view[logged], kind[logged]
    delay = np.array([0, *FOLLOW_UP_MS.values(), -PAGE_LEAD_MS, -PAGE_LEAD_MS])[kind]
    start_ms = utc_day_start(day) * 1000
    event_ms = np.maximum(views["ms"][view] + delay, start_ms)  # a page view never precedes the day

    by_time = np.argsort(event_ms, kind="stable")
    view, kind, event_ms = view[by_time], kind[by_time], event_ms[by_time]
    item, style = kind < KINDS.index("page_view"), views["style"][view]
    return pd.DataFrame(
        {
            "event_id": _ids(f"e{day:%Y%m%d}-", np.arange(len(view)), width=7),
            "member_id": world.member_ids[views["member"][view]],
            "style_id": pd.arrays.IntegerArray(np.where(item, styles.style_id[style], 0), ~item),
            "session_id": _ids(f"s{day:%Y%m%d}-", views["session"][view]),
            "price": np.where(item, styles.price[style], np.nan),
            "event_type": np.array(KINDS, dtype=object)[kind],
            "event_time": pd.to_datetime(event_ms, unit="ms", utc=True),
            "quantity": pd.arrays.IntegerArray(np.ones(len(kind), dtype=np.int64), ~np.isin(kind, CART_KINDS)),
        }
    )


def _ids(prefix: str, numbers: np.ndarray, width: int = 0) -> pd.Series:
    """`prefix` + number (zero-padded to `width`), built in Arrow: a Python f-string per row is slow at scale."""
    text = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), width, "0")
    return pd.Series(pc.binary_join_element_wise(prefix, text, ""), dtype=pd.ArrowDtype(pa.string()))
