"""Daily personalized recommendations for a flash-sale retailer, as a Dagster asset lakehouse."""

import warnings

from dagster import BetaWarning, PreviewWarning

# Single-run backfills and look-back windows over missing days use Dagster features marked beta/preview.
warnings.filterwarnings("ignore", category=BetaWarning)
warnings.filterwarnings("ignore", category=PreviewWarning)
# daily_job mixes range-capable ingestion with one-day assets; Dagster then runs backfills one day per run.
warnings.filterwarnings("ignore", message=".*materializes assets with varying BackfillPolicies.*")
