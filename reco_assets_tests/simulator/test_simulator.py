import json
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from reco_assets.constants import EVENT_TYPES
from reco_assets.simulator import PROFILES, simulate
from reco_assets.simulator.catalog import write_catalog
from reco_assets.simulator.days import FOLLOW_UP_MS
from reco_assets.simulator.landing import simulate_days
from reco_assets.simulator.records import MALFORMED_KINDS, to_json_lines
from reco_assets.simulator.world import build_world, draw_by_taste


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    root = tmp_path_factory.mktemp("sim") / "landing"
    simulate(PROFILES["tiny"], root, log=lambda _: None)
    return root


def test_same_seed_same_files(landing, tmp_path):
    again = tmp_path / "landing"
    simulate(PROFILES["tiny"], again, log=lambda _: None)
    for path in sorted((landing / "events").iterdir()):
        assert path.read_bytes() == (again / "events" / path.name).read_bytes()


def test_every_event_kind_and_every_defect_appears(landing):
    kinds, records = Counter(), 0
    for path in (landing / "events").iterdir():
        for line in path.read_text().splitlines():
            records += 1
            try:
                kinds[json.loads(line).get("event_type")] += 1
            except json.JSONDecodeError:
                kinds["<invalid json>"] += 1
    assert set(EVENT_TYPES) - {"return"} <= set(kinds)  # returns come from invoice imports, not the flash sale
    assert kinds["product_view"] > kinds["add_to_cart"] > kinds["purchase"] > 0
    # One malformed record of each kind at least per day.
    assert kinds["<invalid json>"] >= PROFILES["tiny"].days
    assert records * 0.002 < len(MALFORMED_KINDS) * PROFILES["tiny"].days <= records * 0.05


def test_releases_turnover_and_sale_windows(landing):
    catalogs = {
        p.stem: pd.read_csv(p, parse_dates=["first_live_at", "live_from", "live_until"])
        for p in sorted((landing / "catalog").iterdir())
    }
    day = catalogs["2026-10-31"]
    eastern = day["live_from"].dt.tz_convert("America/New_York")
    assert set(eastern.dt.hour) <= {11, 15, 20}
    hours = (day["live_until"] - day["live_from"]).dt.total_seconds() / 3600
    assert hours.between(60, 84).all()
    assert day["division"].value_counts().idxmax() == "women"
    live_today = day[(day.live_from < "2026-11-01T00:00Z") & (day.live_until > "2026-10-31T00:00Z")]
    new_today = live_today[live_today.live_from >= "2026-10-31T00:00Z"]
    assert 0.2 <= len(new_today) / len(live_today) <= 0.45
    assert (day["prior_sales"] > 0).any()


@pytest.fixture(scope="module")
def days():
    """The tiny profile's days before corruption: (catalog at midnight, clean events) per day."""
    return [(catalog, events) for _, catalog, events, _ in simulate_days(PROFILES["tiny"])]


def _with_view_time(events: pd.DataFrame) -> pd.DataFrame:
    """Item events with the time of the product view each one follows."""
    items = events[events.style_id.notna()].copy()
    delay = items.event_type.map(FOLLOW_UP_MS).fillna(0)
    items["view_time"] = items.event_time - pd.to_timedelta(delay, unit="ms")
    return items


def test_funnel_events_follow_a_view_of_the_same_member_and_style(days):
    keys = ["member_id", "style_id", "session_id", "view_time"]
    for _, events in days:
        items = _with_view_time(events)
        views = items[items.event_type == "product_view"][keys]
        assert not views.duplicated().any()
        follow = items[items.event_type != "product_view"].merge(views, on=keys, how="left", indicator=True)
        assert (follow["_merge"] == "both").all()
        carts = items[items.event_type == "add_to_cart"][keys]
        after_cart = items[items.event_type.isin(["remove_from_cart", "purchase"])].merge(
            carts, on=keys, how="left", indicator=True
        )
        assert (after_cart["_merge"] == "both").all()
        # a view leads to at most one of: still want it, or add to cart (then at most one of remove, purchase)
        outcome = items[items.event_type != "product_view"].groupby(keys).event_type.agg(frozenset)
        assert set(outcome) <= {
            frozenset({"still_want_it"}),
            frozenset({"add_to_cart"}),
            frozenset({"add_to_cart", "remove_from_cart"}),
            frozenset({"add_to_cart", "purchase"}),
        }


def test_stock_is_never_oversold_and_only_sold_out_styles_are_still_wanted(days):
    still_wanted = 0
    for catalog, events in days:
        stock = catalog.set_index("style_id").qty_on_hand
        items = _with_view_time(events)
        bought = items[items.event_type == "purchase"]
        sold = bought.groupby("style_id").size()
        assert (sold <= stock.reindex(sold.index)).all()
        for kind, sold_out in (("still_want_it", True), ("add_to_cart", False)):
            for row in items[items.event_type == kind].itertuples():
                same = bought[bought.style_id == row.style_id]
                if sold_out:  # every unit went to views before this one
                    assert (same.view_time <= row.view_time).sum() == stock[row.style_id]
                else:
                    assert (same.view_time < row.view_time).sum() < stock[row.style_id]
        still_wanted += (items.event_type == "still_want_it").sum()
    assert still_wanted > 0


def test_draws_follow_the_softmax_of_taste_inside_the_block():
    world = build_world(np.random.default_rng(1), 3, 10)
    columns = np.arange(len(world.sb_subclass))
    rng, n = np.random.default_rng(2), 200_000
    for lo, hi in ((0, len(columns)), (3, 9)):
        picks = draw_by_taste(rng, world, np.full(n, 1), columns, np.full(n, lo), np.full(n, hi))
        assert picks.min() >= lo and picks.max() < hi
        weight = np.exp(world.taste(np.array([1]), columns[lo:hi])[0].astype(np.float64))
        expected = weight / weight.sum()
        seen = np.bincount(picks - lo, minlength=hi - lo) / n
        assert np.all(np.abs(seen - expected) <= 5 * np.sqrt(expected * (1 - expected) / n) + 1e-9)


def test_json_lines_are_what_pandas_to_json_wrote(days):
    _, events = days[-1]
    events = events.copy()
    events.loc[events.index[:3], "price"] = [45.0, 17.3, 4.99]  # pandas writes 45.0 and 17.3
    reference = events.astype({"event_id": object, "session_id": object})
    reference["event_time"] = reference.event_time.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert to_json_lines(events) == reference.to_json(orient="records", lines=True).splitlines()


def test_catalog_csv_is_what_pandas_date_format_wrote(days, tmp_path):
    catalog, _ = days[-1]
    write_catalog(catalog, tmp_path / "fast.csv")
    catalog.to_csv(tmp_path / "pandas.csv", index=False, date_format="%Y-%m-%dT%H:%M:%SZ")
    assert (tmp_path / "fast.csv").read_bytes() == (tmp_path / "pandas.csv").read_bytes()
