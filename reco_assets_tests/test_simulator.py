import json
from collections import Counter

import pandas as pd
import pytest

from reco_assets.constants import EVENT_TYPES
from reco_assets.simulator import PROFILES, simulate
from reco_assets.simulator.days import MALFORMED_KINDS


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
