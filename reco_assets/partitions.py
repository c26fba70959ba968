"""Partitions, defined once and imported everywhere as the same objects."""

import os

from dagster import DailyPartitionsDefinition, MultiPartitionsDefinition, StaticPartitionsDefinition

from reco_assets.constants import COHORTS

PARTITIONS_START = os.environ.get("RECO_PARTITIONS_START", "2026-01-01")
"""First day of the daily partitions; set RECO_PARTITIONS_START for event logs that start earlier."""

daily_partitions = DailyPartitionsDefinition(start_date=PARTITIONS_START, timezone="UTC")
cohort_partitions = StaticPartitionsDefinition(list(COHORTS))
daily_cohort_partitions = MultiPartitionsDefinition({"date": daily_partitions, "cohort": cohort_partitions})
