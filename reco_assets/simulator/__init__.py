"""A deterministic flash-sale simulator that writes the landing files a real deployment would receive."""

from reco_assets.simulator.landing import PROFILES, SimulationProfile, simulate

__all__ = ["PROFILES", "SimulationProfile", "simulate"]
