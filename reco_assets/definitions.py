"""The one Definitions object: every asset, check, job, schedule and resource of the project."""

from dagster import Definitions, in_process_executor, load_assets_from_modules

from reco_assets.assets import (
    affinities,
    cards,
    cohorts,
    evaluation,
    factorization,
    ingestion,
    item_to_item,
    listings,
    ratings,
    releases,
    serving,
)
from reco_assets.checks import CHECKS
from reco_assets.jobs import JOBS
from reco_assets.lineage import with_windows
from reco_assets.resources import local_resources, reco_home
from reco_assets.schedules import SCHEDULES
from reco_assets.sensors import SENSORS

ASSET_MODULES = [
    ingestion,
    ratings,
    cohorts,
    factorization,
    affinities,
    listings,
    item_to_item,
    evaluation,
    cards,
    releases,
    serving,
]


def build_definitions(resources: dict) -> Definitions:
    """The definitions over `resources`; the lineage's windows drawn from its `settings`."""
    return Definitions(
        assets=with_windows(load_assets_from_modules(ASSET_MODULES), resources["settings"]),
        jobs=JOBS,
        asset_checks=CHECKS,
        schedules=SCHEDULES,
        sensors=SENSORS,
        resources=resources,
        # One process per run, so one Spark session (one JVM) per run rather than one per step.
        executor=in_process_executor,
    )


defs = build_definitions(local_resources(reco_home()))
