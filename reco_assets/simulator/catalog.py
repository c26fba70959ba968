"""The assortment: three releases a day, relaunches of styles that sold before, and the daily catalog snapshot."""

from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from reco_assets.constants import RELEASES, RETAIL_TIMEZONE
from reco_assets.pipeline.catalog import release_instant
from reco_assets.simulator.world import TIER_BASE_PRICE, World

EASTERN = ZoneInfo(RETAIL_TIMEZONE)
RELEASE_HOURS = tuple(int(release[:2]) for release in RELEASES)
"""New styles go live at 11:00, 15:00 and 20:00 US Eastern."""
RELAUNCH = 0.12
"""Chance that a launch brings back one of the ended styles it came across instead of a new style."""
HOUR = 3600
TIME_COLUMNS = ("first_live_at", "live_from", "live_until")


def utc_day_start(day: date) -> int:
    """Epoch seconds of the UTC midnight that starts the day: all simulated times are epoch seconds."""
    return int(datetime.combine(day, time(0), tzinfo=timezone.utc).timestamp())


@dataclass
class Styles:
    """Every style ever launched, with its current (latest) sale; one array entry per style, times in epoch s."""

    style_id: np.ndarray
    sb: np.ndarray
    price: np.ndarray
    appeal: np.ndarray
    first_live_at: np.ndarray
    live_from: np.ndarray
    live_until: np.ndarray
    qty: np.ndarray
    prior_sales: np.ndarray

    @classmethod
    def none(cls) -> "Styles":
        return cls(*(np.zeros(0, dtype=np.float64 if f.name in ("price", "appeal") else np.int64) for f in fields(cls)))

    def __len__(self) -> int:
        return len(self.style_id)

    def extend(self, **new: np.ndarray) -> None:
        for name, values in new.items():
            setattr(self, name, np.concatenate([getattr(self, name), values]))


def draw_stock(rng: np.random.Generator, n: int, stock_scale: int) -> np.ndarray:
    """Units of a (re)launched style: a few, sometimes dozens; times the profile's `stock_scale`."""
    return (2 + rng.geometric(0.12, size=n)) * stock_scale


def launch_releases(
    rng: np.random.Generator,
    world: World,
    styles: Styles,
    day: date,
    new_per_day: int,
    sb_weight: np.ndarray | None,
    stock_scale: int = 1,
    sale_hours: tuple[int, int] = (60, 85),
) -> None:
    """Launch the day's three releases; some launches bring back a style that sold before.

    Each launch looks at three random earlier styles; with chance RELAUNCH it relaunches the first of them
    whose sale has ended (a style relaunches at most once per release), otherwise it launches a new style.
    A new style's group is drawn by `sb_weight`; without weights (the wide profile) the groups take turns,
    style i going to group i mod groups, so that each launches one every groups / `new_per_day` days, and
    sales longer than that keep every group live. A sale lasts [`sale_hours`) hours.
    """
    n = new_per_day // len(RELEASE_HOURS)
    for hour in RELEASE_HOURS:
        at = int(datetime.combine(day, time(hour), tzinfo=EASTERN).timestamp())
        until = at + rng.integers(*sale_hours, size=n) * HOUR
        relaunch = np.zeros(n, dtype=bool)
        if len(styles):
            seen = rng.integers(len(styles), size=(n, 3))
            ended = styles.live_until[seen] < at
            pick = seen[np.arange(n), ended.argmax(axis=1)]
            candidates = np.flatnonzero(ended.any(axis=1) & (rng.random(n) < RELAUNCH))
            _, first = np.unique(pick[candidates], return_index=True)
            relaunch[candidates[first]] = True
            again = pick[relaunch]
            styles.live_from[again], styles.live_until[again] = at, until[relaunch]
            styles.qty[again] = draw_stock(rng, len(again), stock_scale)
            styles.prior_sales[again] += 1
        k = n - relaunch.sum()
        if sb_weight is None:
            sb = (len(styles) + np.arange(k)) % len(world.sb_subclass)
        else:
            sb = rng.choice(len(sb_weight), size=k, p=sb_weight)
        tier = world.brand_tier[world.sb_brand[sb]]
        styles.extend(
            style_id=10_000_000 + len(styles) + 1 + np.arange(k),
            sb=sb,
            price=np.round(TIER_BASE_PRICE[tier] * rng.lognormal(0, 0.35, size=k) - 0.01, 2),
            appeal=rng.lognormal(0, 0.8, size=k),
            first_live_at=np.full(k, at),
            live_from=np.full(k, at),
            live_until=until[~relaunch],
            qty=draw_stock(rng, k, stock_scale),
            prior_sales=np.zeros(k, dtype=np.int64),
        )


SALES_PER_HOUR = 0.05
"""Units an average-appeal style sells per hour on sale, in the release snapshots' stock."""


def catalog_snapshot(world: World, styles: Styles, day: date) -> pd.DataFrame:
    """Styles on sale during the day or launching within the next 24 hours, with stock at midnight."""
    start = utc_day_start(day)
    known = (styles.live_from < start + 48 * HOUR) & (styles.live_until > start)
    return _snapshot(world, styles, known, styles.qty)


def release_snapshots(world: World, styles: Styles, serving: date, rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    """The catalog at each release of `serving` (its launches must have run): styles on sale at the release
    or launching within 24 hours after it, ended sales gone, and stock lowered by the day's sales so far.
    Those sales are drawn for the snapshots only (Poisson, `SALES_PER_HOUR` x appeal), so a style can sell
    out between releases."""
    sold = np.zeros(len(styles), dtype=np.int64)
    since = utc_day_start(serving)
    snapshots = {}
    for release in RELEASES:
        at = int(release_instant(serving - timedelta(days=1), release).timestamp())
        on_sale = (styles.live_from <= at) & (styles.live_until > at)
        sold += rng.poisson(SALES_PER_HOUR * styles.appeal * (at - since) / HOUR) * on_sale
        since = at
        known = (styles.live_from < at + 24 * HOUR) & (styles.live_until > at)
        snapshots[release] = _snapshot(world, styles, known, np.maximum(styles.qty - sold, 0))
    return snapshots


def _snapshot(world: World, styles: Styles, known: np.ndarray, qty: np.ndarray) -> pd.DataFrame:
    sb = styles.sb[known]
    hierarchy = np.array(world.subclasses, dtype=object)[world.sb_subclass[sb]]
    utc = {name: pd.to_datetime(getattr(styles, name)[known], unit="s", utc=True) for name in TIME_COLUMNS}
    return pd.DataFrame(
        {
            "style_id": styles.style_id[known],
            "subclass_brand_id": world.sb_id(sb),
            "brand": np.array(world.brands, dtype=object)[world.sb_brand[sb]],
            "division": hierarchy[:, 0],
            "department": hierarchy[:, 1],
            "class": hierarchy[:, 2],
            "subclass": hierarchy[:, 3],
            "price": styles.price[known],
            **utc,
            "qty_on_hand": qty[known],
            "prior_sales": styles.prior_sales[known],
        }
    )


def write_catalog(catalog: pd.DataFrame, path: Path) -> None:
    """The snapshot as CSV, times as `2026-10-31T15:00:00Z`: formatted by numpy, as pandas' `date_format`
    calls strftime once per value (the slowest step of the simulation otherwise)."""
    text = catalog.copy()
    for name in TIME_COLUMNS:
        seconds = text[name].dt.tz_convert(None).to_numpy().astype("datetime64[s]")
        text[name] = np.char.add(np.datetime_as_string(seconds, unit="s"), "Z")
    text.to_csv(path, index=False)
