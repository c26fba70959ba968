"""Profiles of the simulator and the landing layout it writes: one events file and one catalog per day."""

import json
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from reco_assets.resources.landing import catalog_file, events_file
from reco_assets.simulator.days import (
    Missions,
    Styles,
    catalog_snapshot,
    corrupt,
    launch_releases,
    simulate_events,
    to_json_lines,
)
from reco_assets.simulator.world import build_world


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

    @property
    def first_day(self) -> date:
        return self.last_day - timedelta(days=self.days - 1)


SIMULATOR_VERSION = 2
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
}


def simulate(profile: SimulationProfile, landing: Path, log=print) -> None:
    """Write the profile's landing files; a landing folder already made by the same profile is kept."""
    marker = landing / "simulation.json"
    made_by = asdict(profile) | {"last_day": str(profile.last_day), "simulator_version": SIMULATOR_VERSION}
    if marker.exists() and json.loads(marker.read_text()) == made_by:
        log(f"landing data for profile '{profile.name}' already in {landing}")
        return
    rng = np.random.default_rng(profile.seed)
    world = build_world(rng, profile.members, profile.brands)
    sb_weight = np.exp(rng.normal(0, 0.7, size=len(world.sb_subclass)))
    sb_weight /= sb_weight.sum()
    styles = Styles()
    missions = Missions.none(profile.members)
    (landing / "events").mkdir(parents=True, exist_ok=True)
    (landing / "catalog").mkdir(parents=True, exist_ok=True)
    # Three warm-up days fill the site before the first landed day.
    for day in (profile.first_day - timedelta(days=3 - i) for i in range(3)):
        launch_releases(rng, world, styles, day, profile.new_styles_per_day, sb_weight)
    for n in range(profile.days):
        day = profile.first_day + timedelta(days=n)
        launch_releases(rng, world, styles, day, profile.new_styles_per_day, sb_weight)
        catalog_snapshot(world, styles, day).to_csv(
            catalog_file(landing, day), index=False, date_format="%Y-%m-%dT%H:%M:%SZ"
        )
        events = simulate_events(rng, world, styles, day, missions)
        lines = corrupt(rng, to_json_lines(events), profile.malformed_share, day)
        events_file(landing, day).write_text("\n".join(lines) + "\n")
        log(f"simulated {day}: {len(lines):,} event records")
    marker.write_text(json.dumps(made_by))
