"""Profiles of the simulator and the landing layout it writes: one events file and one catalog per day, and
the catalog snapshots of the next day's three releases."""

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from reco_assets.resources.landing import catalog_file, events_file, release_file, written_whole
from reco_assets.simulator.catalog import Styles, catalog_snapshot, launch_releases, release_snapshots, write_catalog
from reco_assets.simulator.days import Funnel, Missions, simulate_events
from reco_assets.simulator.records import corrupt, to_json_lines
from reco_assets.simulator.world import World, build_world


@dataclass(frozen=True)
class Wide:
    """What turns the flash sale into a grocery or department-store log: many subclasses (HIERARCHY's each
    `subclass_copies` times) and brands, views drawn by the nested law (a subclass, then a group inside it:
    `World.nested`), long sales launched to the groups in turn so that every group is always live, and a
    purchase-heavy funnel."""

    subclass_copies: int
    sale_hours: tuple[int, int]
    funnel: Funnel


@dataclass(frozen=True)
class SimulationProfile:
    name: str
    members: int
    brands: int
    days: int
    last_day: date
    new_styles_per_day: int
    malformed_share: float = 0.002
    seed: int = 7
    stock_scale: int = 1
    """Units of every style are multiplied by this, so that a larger audience does not sell out in minutes."""
    wide: Wide | None = None
    """Set for a grocery-like log (see `Wide`); None keeps the flash sale."""

    @property
    def first_day(self) -> date:
        return self.last_day - timedelta(days=self.days - 1)


def profile_world(rng: np.random.Generator, profile: SimulationProfile) -> World:
    """The profile's world, drawn from `rng` (seeded with `profile.seed`, as `simulate_days` does)."""
    if profile.wide is None:
        return build_world(rng, profile.members, profile.brands)
    return build_world(rng, profile.members, profile.brands, profile.wide.subclass_copies, nested=True)


SIMULATOR_VERSION = 5
"""Raised whenever the simulated behaviour changes, so that landing data of an older simulator is redone."""

PROFILES = {
    "tiny": SimulationProfile(
        "tiny",
        members=1_500,
        brands=40,
        days=14,
        last_day=date(2026, 10, 31),
        new_styles_per_day=150,
        malformed_share=0.005,
    ),
    "demo": SimulationProfile(
        "demo", members=20_000, brands=150, days=61, last_day=date(2026, 10, 31), new_styles_per_day=900
    ),
    # 5x the demo's audience with 2.5x its releases and 2x the units per style (see `scale`).
    "medium": SimulationProfile(
        "medium",
        members=100_000,
        brands=150,
        days=61,
        last_day=date(2026, 10, 31),
        new_styles_per_day=2_250,
        stock_scale=2,
    ),
    # 50x the demo's audience with 5x its releases and 10x the units per style: each unit of stock meets
    # as many views as in the demo, so sell-outs stay as common, while the daily catalog stays ~20k styles.
    "scale": SimulationProfile(
        "scale",
        members=1_000_000,
        brands=150,
        days=61,
        last_day=date(2026, 10, 31),
        new_styles_per_day=4_500,
        stock_scale=10,
    ),
    # A grocery or department-store log: 440 subclasses (HIERARCHY's 44, 10 times), 2,700 brands in 10,008
    # subclass-brands, all live with stock every day (each launches a style every 3.3 days, on sale 8-12
    # days, with 10x the units), and mostly purchases: three in four sessions are in the store and log only
    # what they buy, so purchases are ~55% of the scoring events.
    "wide": SimulationProfile(
        "wide",
        members=25_000,
        brands=2_700,
        days=120,
        last_day=date(2026, 10, 31),
        new_styles_per_day=3_000,
        stock_scale=10,
        wide=Wide(
            subclass_copies=10,
            sale_hours=(192, 289),
            funnel=Funnel(cart_rate=(0.6, 0.8), remove=0.1, purchase=0.8, online_share=0.25),
        ),
    ),
}


Day = tuple[date, pd.DataFrame, pd.DataFrame, dict[str, pd.DataFrame]]


def simulate_days(profile: SimulationProfile) -> Iterator[Day]:
    """The profile's days in order: (day, catalog snapshot at midnight, the day's clean events, release ->
    catalog snapshot at each release of the next day, the day these recommendations are served)."""
    rng = np.random.default_rng(profile.seed)
    # The release snapshots draw their sales from their own stream: the events do not depend on them.
    release_rng = np.random.default_rng([profile.seed, 2])
    world = profile_world(rng, profile)
    if profile.wide is None:
        sb_weight = np.exp(rng.normal(0, 0.7, size=len(world.sb_subclass)))
        sb_weight /= sb_weight.sum()
        sale_hours, funnel = (60, 85), Funnel()
    else:
        sb_weight, sale_hours, funnel = None, profile.wide.sale_hours, profile.wide.funnel
    styles = Styles.none()
    missions = Missions.none(profile.members)

    def launch(day: date) -> None:
        launch_releases(rng, world, styles, day, profile.new_styles_per_day, sb_weight, profile.stock_scale, sale_hours)

    # Three warm-up days fill the site before the first landed day.
    for n in range(3, 0, -1):
        launch(profile.first_day - timedelta(days=n))
    launch(profile.first_day)
    for n in range(profile.days):
        day = profile.first_day + timedelta(days=n)
        catalog = catalog_snapshot(world, styles, day)
        events = simulate_events(rng, world, styles, day, missions, funnel)
        launch(day + timedelta(days=1))
        yield day, catalog, events, release_snapshots(world, styles, day + timedelta(days=1), release_rng)


def simulate(profile: SimulationProfile, landing: Path, log=print) -> None:
    """Write the profile's landing files; a landing folder already made by the same profile is kept."""
    marker = landing / "simulation.json"
    # An unset `wide` is left out, so that the flash-sale profiles' markers stay as they were; through JSON
    # and back, so that tuples compare as the lists read from the marker.
    made_by = {name: value for name, value in asdict(profile).items() if value is not None}
    made_by |= {"last_day": str(profile.last_day), "simulator_version": SIMULATOR_VERSION}
    made_by = json.loads(json.dumps(made_by))
    if marker.exists() and json.loads(marker.read_text()) == made_by:
        log(f"landing data for profile '{profile.name}' already in {landing}")
        return
    (landing / "events").mkdir(parents=True, exist_ok=True)
    (landing / "catalog").mkdir(parents=True, exist_ok=True)
    # The malformed records draw from their own stream, so the clean events `simulate_days` yields (and the
    # tests check) are exactly the ones landed.
    rng = np.random.default_rng([profile.seed, 1])
    for day, catalog, events, releases in simulate_days(profile):
        # each file written whole, then renamed into place; the events last, as they make the day
        with written_whole(catalog_file(landing, day)) as path:
            write_catalog(catalog, path)
        for release, snapshot in releases.items():
            with written_whole(release_file(landing, day, release)) as path:
                write_catalog(snapshot, path)
        lines = corrupt(rng, to_json_lines(events), profile.malformed_share, day)
        with written_whole(events_file(landing, day)) as path:
            path.write_text("\n".join(lines) + "\n")
        log(f"simulated {day}: {len(lines):,} event records")
    marker.write_text(json.dumps(made_by))
