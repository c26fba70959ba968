"""Daily personalized recommendations for a flash-sale retailer, as a Dagster asset lakehouse."""

import warnings

from dagster import BetaWarning, PreviewWarning

# Single-run backfills and look-back windows over missing days use Dagster features marked beta/preview.
warnings.filterwarnings("ignore", category=BetaWarning)
warnings.filterwarnings("ignore", category=PreviewWarning)
