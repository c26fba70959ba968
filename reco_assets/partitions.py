"""Partitions, defined once and imported everywhere as the same objects."""

import os
from datetime import date

from dagster import DailyPartitionsDefinition, MultiPartitionKey, MultiPartitionsDefinition, StaticPartitionsDefinition

from reco_assets.constants import COHORTS, PARTITIONS_START_DEFAULT, PARTITIONS_START_ENV, RELEASES

PARTITIONS_START = os.environ.get(PARTITIONS_START_ENV, PARTITIONS_START_DEFAULT)
"""First day of the daily partitions (the CLI moves it back to the first landed day of older logs)."""

daily_partitions = DailyPartitionsDefinition(start_date=PARTITIONS_START, timezone="UTC")
cohort_partitions = StaticPartitionsDefinition(list(COHORTS))
daily_cohort_partitions = MultiPartitionsDefinition({"date": daily_partitions, "cohort": cohort_partitions})
release_partitions = StaticPartitionsDefinition(list(RELEASES))
daily_release_partitions = MultiPartitionsDefinition({"date": daily_partitions, "release": release_partitions})
"""A release refresh of the cards of as-of day `date` (served the next day): its catalog snapshot, listings
and cards."""


def cohort_range_tags(day: date | str, cohorts: list[str]) -> dict[str, str]:
    """Tags of one run over the day's cohorts from the first to the last given (in the partitions' order):
    a single-run backfill over the cohort dimension, which the model assets read as `partition_keys`."""
    order = [c for c in COHORTS if c in cohorts]
    key = lambda cohort: str(MultiPartitionKey({"date": str(day), "cohort": cohort}))  # noqa: E731
    return {"dagster/asset_partition_range_start": key(order[0]), "dagster/asset_partition_range_end": key(order[-1])}
