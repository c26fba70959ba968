"""Day-by-day simulation of a flash sale: releases, sessions, the funnel, sell-outs and bad records."""

import json
import warnings
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from reco_assets.simulator.world import TIER_BASE_PRICE, World

EASTERN = ZoneInfo("America/New_York")
RELEASE_HOURS = (11, 15, 20)
"""New styles go live at 11:00, 15:00 and 20:00 US Eastern."""

MALFORMED_KINDS = (
    "invalid_json",
    "missing_member_id",
    "negative_price",
    "unknown_event_type",
    "outside_day",
    "duplicate_event_id",
    "unknown_style",
    "bad_type",
)


@dataclass
class Styles:
    """Every style ever launched, with its current (latest) sale."""

    style_id: list[int] = field(default_factory=list)
    sb: list[int] = field(default_factory=list)
    price: list[float] = field(default_factory=list)
    appeal: list[float] = field(default_factory=list)
    first_live_at: list[datetime] = field(default_factory=list)
    live_from: list[datetime] = field(default_factory=list)
    live_until: list[datetime] = field(default_factory=list)
    qty: list[int] = field(default_factory=list)
    prior_sales: list[int] = field(default_factory=list)

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: np.asarray(values) for name, values in self.__dict__.items()}


def utc_day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


def launch_releases(
    rng: np.random.Generator, world: World, styles: Styles, day: date, new_per_day: int, sb_weight: np.ndarray
) -> None:
    """Launch the day's three releases; some launches bring back a style that sold before."""
    for hour in RELEASE_HOURS:
        at = datetime.combine(day, time(hour), tzinfo=EASTERN).astimezone(timezone.utc)
        for _ in range(new_per_day // len(RELEASE_HOURS)):
            until = at + timedelta(hours=int(rng.integers(60, 85)))
            ended = [i for i in rng.integers(len(styles.style_id), size=3)] if styles.style_id else []
            ended = [i for i in ended if styles.live_until[i] < at]
            if ended and rng.random() < 0.12:
                i = ended[0]
                styles.live_from[i], styles.live_until[i] = at, until
                styles.qty[i] = int(2 + rng.geometric(0.12))
                styles.prior_sales[i] += 1
                continue
            sb = int(rng.choice(len(sb_weight), p=sb_weight))
            tier = world.brand_tier[world.sb_brand[sb]]
            styles.style_id.append(10_000_000 + len(styles.style_id) + 1)
            styles.sb.append(sb)
            styles.price.append(round(float(TIER_BASE_PRICE[tier] * rng.lognormal(0, 0.35)) - 0.01, 2))
            styles.appeal.append(float(rng.lognormal(0, 0.8)))
            styles.first_live_at.append(at)
            styles.live_from.append(at)
            styles.live_until.append(until)
            styles.qty.append(int(2 + rng.geometric(0.12)))
            styles.prior_sales.append(0)


def catalog_snapshot(world: World, styles: Styles, day: date) -> pd.DataFrame:
    """Styles on sale during the day or launching within the next 24 hours, with stock at midnight."""
    start, end = utc_day_bounds(day)
    s = styles.arrays()
    known = (s["live_from"] < end + timedelta(hours=24)) & (s["live_until"] > start)
    sb = s["sb"][known]
    subclass = world.sb_subclass[sb]
    hierarchy = np.array(world.subclasses, dtype=object)[subclass]
    return pd.DataFrame(
        {
            "style_id": s["style_id"][known],
            "subclass_brand_id": world.sb_id(sb),
            "brand": np.array(world.brands, dtype=object)[world.sb_brand[sb]],
            "division": hierarchy[:, 0],
            "department": hierarchy[:, 1],
            "class": hierarchy[:, 2],
            "subclass": hierarchy[:, 3],
            "price": s["price"][known],
            "first_live_at": pd.to_datetime(s["first_live_at"][known], utc=True),
            "live_from": pd.to_datetime(s["live_from"][known], utc=True),
            "live_until": pd.to_datetime(s["live_until"][known], utc=True),
            "qty_on_hand": s["qty"][known],
            "prior_sales": s["prior_sales"][known],
        }
    )


MISSION_START = 0.15
"""Daily chance that a member without a shopping mission starts one."""
MISSION_FOCUS = 0.6
"""Share of a member's views spent inside the mission's subclass while it lasts."""
MISSION_DONE = 0.7
"""Chance that buying inside the mission's subclass ends the mission."""
CART_RATE = (0.10, 0.22)
"""Chance that a view adds to cart: outside, inside a mission."""


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
        taste = world.member_taste[starting] + rng.gumbel(size=(len(starting), len(world.sb_subclass)))
        self.subclass[starting] = world.sb_subclass[taste.argmax(axis=1)]
        self.days_left[starting] = 2 + rng.geometric(0.25, size=len(starting))


def simulate_events(
    rng: np.random.Generator, world: World, styles: Styles, day: date, missions: Missions
) -> pd.DataFrame:
    """One day of clickstream: sessions pick groups by taste and mission, styles by appeal, then the funnel."""
    start, end = utc_day_bounds(day)
    s = styles.arrays()
    live = np.flatnonzero((s["live_from"] < end) & (s["live_until"] > start))
    if len(live) == 0:
        return pd.DataFrame()
    missions.advance(rng, world)
    n_sessions = rng.poisson(world.member_activity)
    members = np.repeat(np.arange(len(world.member_ids)), n_sessions)
    session_ids = np.arange(len(members))
    views_per_session = 1 + rng.geometric(0.3, size=len(members))
    view_member = np.repeat(members, views_per_session)
    view_session = np.repeat(session_ids, views_per_session)

    # Group choice: Gumbel-max over the member's taste restricted to live groups, and to the mission's
    # subclass for a share of the views of members on a mission (when that subclass has a live group).
    live_sb = np.unique(s["sb"][live])
    live_subclass = world.sb_subclass[live_sb]
    mission = missions.subclass[view_member]
    on_mission = np.isin(mission, live_subclass) & (rng.random(len(view_member)) < MISSION_FOCUS)
    scores = world.member_taste[view_member][:, live_sb]
    scores += rng.gumbel(size=scores.shape).astype(np.float32)
    scores[on_mission[:, None] & (live_subclass[None, :] != mission[:, None])] = -np.inf
    view_sb = live_sb[scores.argmax(axis=1)]
    del scores
    view_style = np.empty(len(view_sb), dtype=np.int64)
    for sb in np.unique(view_sb):
        pick = view_sb == sb
        candidates = live[s["sb"][live] == sb]
        weight = s["appeal"][candidates] / s["appeal"][candidates].sum()
        view_style[pick] = rng.choice(candidates, size=pick.sum(), p=weight)

    # Time of each view, inside the style's live window on that day; a session keeps its order.
    lo = np.maximum(s["live_from"][view_style], start)
    hi = np.minimum(s["live_until"][view_style], end)
    span = np.array([(high - low).total_seconds() for low, high in zip(lo, hi)])
    offset = np.array([(low - start).total_seconds() for low in lo]) + rng.random(len(lo)) * np.maximum(span - 1, 0)
    view_time = start + pd.to_timedelta(np.round(offset, 3), unit="s")

    rows = []
    stock = s["qty"]
    order = np.argsort(offset, kind="stable")
    for i in order:
        m, style, t = view_member[i], view_style[i], view_time[i]
        base = dict(
            member_id=int(world.member_ids[m]),
            style_id=int(s["style_id"][style]),
            session_id=f"s{day:%Y%m%d}-{view_session[i]}",
            price=float(s["price"][style]),
        )
        rows.append({**base, "event_type": "product_view", "event_time": t})
        if stock[style] <= 0:
            if rng.random() < 0.3:
                rows.append({**base, "event_type": "still_want_it", "event_time": t + pd.Timedelta(seconds=5)})
            continue
        if rng.random() < CART_RATE[int(on_mission[i])]:
            rows.append(
                {**base, "event_type": "add_to_cart", "event_time": t + pd.Timedelta(seconds=20), "quantity": 1}
            )
            u = rng.random()
            if u < 0.25:
                rows.append(
                    {
                        **base,
                        "event_type": "remove_from_cart",
                        "event_time": t + pd.Timedelta(seconds=60),
                        "quantity": 1,
                    }
                )
            elif u < 0.75:
                stock[style] -= 1
                if on_mission[i] and rng.random() < MISSION_DONE:
                    missions.subclass[m] = -1
                rows.append(
                    {**base, "event_type": "purchase", "event_time": t + pd.Timedelta(seconds=90), "quantity": 1}
                )
    styles.qty = stock.tolist()

    events = pd.DataFrame(rows)
    # Non-scoring list-page and boutique views: one per session.
    first_views = events.drop_duplicates("session_id")
    pages = first_views.assign(
        event_type=np.where(rng.random(len(first_views)) < 0.5, "page_view", "boutique_view"),
        style_id=None,
        price=None,
        event_time=first_views["event_time"] - pd.Timedelta(seconds=30),
    )
    with warnings.catch_warnings():  # the page views' empty style and price columns are intended
        warnings.simplefilter("ignore", FutureWarning)
        events = pd.concat([events, pages], ignore_index=True)
    events["event_time"] = events["event_time"].clip(lower=start)
    events = events.sort_values("event_time", kind="stable").reset_index(drop=True)
    events.insert(0, "event_id", [f"e{day:%Y%m%d}-{i:07d}" for i in range(len(events))])
    events["style_id"] = events["style_id"].astype("Int64")
    events["quantity"] = events.get("quantity", pd.Series(dtype="float")).astype("Int64")
    return events


def to_json_lines(events: pd.DataFrame) -> list[str]:
    out = events.copy()
    out["event_time"] = out["event_time"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return out.to_json(orient="records", lines=True).splitlines()


def corrupt(rng: np.random.Generator, lines: list[str], share: float, day: date) -> list[str]:
    """Replace a share of the records by malformed ones of every kind, so that quarantine is visible."""
    n_bad = max(len(MALFORMED_KINDS), int(round(len(lines) * share))) if share > 0 else 0
    # Line 0 stays intact: the duplicate-id record copies its id.
    picks = rng.choice(np.arange(1, len(lines)), size=min(n_bad, len(lines) - 1), replace=False)
    for n, i in enumerate(sorted(picks)):
        kind = MALFORMED_KINDS[n % len(MALFORMED_KINDS)]
        record = json.loads(lines[i])
        if kind == "invalid_json":
            lines[i] = lines[i][: len(lines[i]) // 2]
            continue
        if kind == "missing_member_id":
            record.pop("member_id")
        elif kind == "negative_price":
            record["price"] = -abs(record["price"] or 9.99)
        elif kind == "unknown_event_type":
            record["event_type"] = "wishlist_share"
        elif kind == "outside_day":
            record["event_time"] = f"{day - timedelta(days=2):%Y-%m-%d}T12:00:00.000000Z"
        elif kind == "duplicate_event_id":
            record["event_id"] = json.loads(lines[0])["event_id"]
        elif kind == "unknown_style":
            record["event_type"], record["style_id"] = "product_view", 99_999_999
        elif kind == "bad_type":
            record["member_id"] = "member-" + str(record["member_id"])
        lines[i] = json.dumps(record)
    return lines
