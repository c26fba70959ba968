import dataclasses
import hashlib
import json
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from reco_assets.constants import EVENT_TYPES
from reco_assets.simulator import PROFILES, simulate
from reco_assets.simulator.catalog import write_catalog
from reco_assets.simulator.days import FOLLOW_UP_MS
from reco_assets.simulator.landing import profile_world, simulate_days
from reco_assets.simulator.records import MALFORMED_KINDS, to_json_lines
from reco_assets.simulator.world import build_world, draw_by_taste, draw_in_blocks, draw_subclass_blocks


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


def test_the_flash_sale_profiles_land_what_they_did_at_version_5(landing):
    # sha256 of the tiny profile's first day and marker: the catalog as before the wide profile was added, the
    # events and the marker as simulator version 5 (sessions keeping to a subclass) lands them
    pinned = {
        "catalog/2026-10-18.csv": "879bb3cf5564318b286bf34cc2df57ef8a130b683a948c7e784c159bbeba84f6",
        "events/2026-10-18.jsonl": "0dcb1fbdd055209beb8d6f78de2de98d75d3a8139ff0893b721fac0427c25202",
        "simulation.json": "7cb9308bfdfd4197bc7b4d842b1b06862589754cb1b1ce04807f86183d67dc54",
    }
    assert {name: hashlib.sha256((landing / name).read_bytes()).hexdigest() for name in pinned} == pinned


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


def test_a_session_keeps_to_a_subclass_more_than_the_members_other_sessions_of_the_day(days):
    """Two views of one session share their subclass far more often than two views of the same member on the
    same day in different sessions (`SESSION_FOCUS`): the session itself tells something."""
    within, across = [], []
    for catalog, events in days:
        subclass = catalog.drop_duplicates("style_id").set_index("style_id")[
            ["division", "department", "class", "subclass"]
        ]
        views = events[events.event_type == "product_view"].join(
            subclass.apply(tuple, axis=1).rename("path"), on="style_id"
        )
        pairs = views.merge(views, on="member_id", suffixes=("", "_other"))
        pairs = pairs[pairs.event_id < pairs.event_id_other]
        same = pairs.path == pairs.path_other
        in_session = pairs.session_id == pairs.session_id_other
        within.append(same[in_session])
        across.append(same[~in_session])
    within, across = pd.concat(within), pd.concat(across)
    assert len(within) > 1_000 and len(across) > 1_000
    assert within.mean() > 1.5 * across.mean()


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


def test_nested_draws_follow_a_subclass_then_a_group_by_taste():
    world = build_world(np.random.default_rng(1), 3, 30, subclass_copies=2, nested=True)
    # a "live" subset of the groups, sorted by subclass as the days sort them
    columns = np.flatnonzero(np.random.default_rng(3).random(len(world.sb_subclass)) < 0.7)
    columns = columns[np.argsort(world.sb_subclass[columns], kind="stable")]
    rng, n = np.random.default_rng(2), 200_000
    for member in (0, 2):
        members = np.full(n, member)
        lo, hi = draw_subclass_blocks(rng, world, members, columns)
        picks = draw_in_blocks(rng, world, members, columns, lo, hi)
        assert np.all((lo <= picks) & (picks < hi))
        assert np.all(world.sb_subclass[columns[picks]] == world.sb_subclass[columns[lo]])

        # The stated law, by hand: P(group) = softmax over the live subclasses of m . L_s * 1.6 / sqrt(8) plus
        # the division's log preference, L_s = (sum of the subclass's groups' latents) / sqrt(their count);
        # times the softmax over the subclass's live groups of m . l_g * 1.6 / sqrt(8) - 0.8 |price - tier|.
        m = world.member_latent[member].astype(np.float64)
        sb_latent = world.sb_latent.astype(np.float64)
        subclass = world.sb_subclass[columns]
        present = sorted(set(subclass.tolist()))
        subclass_score = {}
        for s in present:
            groups = np.flatnonzero(world.sb_subclass == s)
            latent = sb_latent[groups].sum(axis=0) / np.sqrt(len(groups))
            division = world.sb_division[groups[0]]
            subclass_score[s] = m @ latent * 1.6 / np.sqrt(8) + world.division_log_pref[member, division]
        subclass_p = np.exp(list(subclass_score.values()))
        subclass_p = dict(zip(present, subclass_p / subclass_p.sum()))
        tier = world.brand_tier[world.sb_brand[columns]]
        group_score = sb_latent[columns] @ m * 1.6 / np.sqrt(8) - 0.8 * np.abs(world.price_level[member] - tier)
        expected = np.empty(len(columns))
        for s in present:
            inside = subclass == s
            weight = np.exp(group_score[inside])
            expected[inside] = subclass_p[s] * weight / weight.sum()
        seen = np.bincount(picks, minlength=len(columns)) / n
        assert np.all(np.abs(seen - expected) <= 5 * np.sqrt(expected * (1 - expected) / n) + 1e-9)


def test_wide_worlds_name_thousands_of_brands_and_keep_group_ids_distinct():
    world = build_world(np.random.default_rng(5), 10, 4_500, subclass_copies=10)  # more than 4,352 syllable names
    assert len(set(world.brands)) == 4_500
    assert len({subclass for *_, subclass in world.subclasses}) == 440  # HIERARCHY's 44 subclasses, 10 times
    groups = np.arange(len(world.sb_subclass))
    ids = world.sb_id(groups)
    assert len(set(ids.tolist())) == len(groups)
    assert np.array_equal(ids // 10_000, world.sb_subclass + 1) and np.array_equal(ids % 10_000, world.sb_brand + 1)


@pytest.fixture(scope="module")
def small_wide():
    """The wide profile shrunk: 1,000 brands (~3,700 groups), with its releases shrunk alike so that each group
    still launches a style every ~3.3 days; 3,000 members over 8 days."""
    wide = PROFILES["wide"]
    profile = dataclasses.replace(wide, members=3_000, brands=1_000, days=8, new_styles_per_day=1_110)
    world = profile_world(np.random.default_rng(profile.seed), profile)
    return profile, world, [(catalog, events) for _, catalog, events, _ in simulate_days(profile)]


def test_every_wide_group_is_live_with_stock_every_day(small_wide):
    profile, world, days = small_wide
    groups = set(world.sb_id(np.arange(len(world.sb_subclass))).tolist())
    for n, (catalog, _) in enumerate(days):
        start = pd.Timestamp(profile.first_day, tz="UTC") + pd.Timedelta(days=n)
        live = catalog[(catalog.live_from < start + pd.Timedelta(days=1)) & (catalog.live_until > start)]
        assert set(live[live.qty_on_hand > 0].subclass_brand_id) == groups


def test_purchases_are_most_of_the_wide_scoring_events(small_wide):
    profile, _, days = small_wide
    kinds = pd.concat([events.event_type for _, events in days]).value_counts()
    scoring = kinds.drop(["page_view", "boutique_view"])

    # Per pick with add-to-cart chance c (0.6 off a mission, 0.8 on one), then remove 0.1 or purchase 0.8:
    # an online session (1 in 4) logs the view, c carts, 0.1 c removes and 0.8 c purchases, a store session
    # only its 0.8 c purchases. Sell-outs are rare with ten times the units.
    def share(c, online=0.25):
        return 0.8 * c / (online * (1 + c + 0.1 * c + 0.8 * c) + (1 - online) * 0.8 * c)

    assert share(0.6) - 0.01 <= scoring["purchase"] / scoring.sum() <= share(0.8) + 0.01
    assert share(0.6) > 0.5
    assert kinds["purchase"] > kinds["product_view"]
    # store sessions log purchases only: sessions without any view exist, and every one of them bought
    by_session = pd.concat([events for _, events in days]).groupby("session_id").event_type.agg(set)
    store = by_session[by_session.map(lambda kinds: "product_view" not in kinds)]
    assert len(store) > 0.5 * len(by_session)
    assert store.map(lambda kinds: kinds == {"purchase"}).all()
