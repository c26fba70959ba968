"""The one Definitions object: every asset, check, job, schedule and resource of the project."""

from dagster import Definitions, in_process_executor, load_assets_from_modules

from reco_assets.assets import (
    affinities,
    cards,
    cohorts,
    evaluation,
    factorization,
    ingestion,
    listings,
    ratings,
)
from reco_assets.jobs import JOBS, SCHEDULES
from reco_assets.resources import local_resources, reco_home

ASSET_MODULES = [ingestion, ratings, cohorts, factorization, affinities, listings, evaluation, cards]


def build_definitions(resources: dict) -> Definitions:
    return Definitions(
        assets=load_assets_from_modules(ASSET_MODULES),
        jobs=JOBS,
        schedules=SCHEDULES,
        resources=resources,
        # One process per run, so one Spark session (one JVM) per run rather than one per step.
        executor=in_process_executor,
    )


defs = build_definitions(local_resources(reco_home()))
