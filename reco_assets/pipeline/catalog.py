"""What is on sale: the day's live styles, the candidate groups, and the group hierarchy."""

from datetime import date, datetime, time, timedelta, timezone

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC day as [start, end)."""
    start = datetime.combine(day, time(0), tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


def live_styles(catalog: DataFrame, day: date, min_qty: int) -> DataFrame:
    """Styles on sale at some time of the day with at least `min_qty` units on hand.

    An unknown stock (`qty_on_hand` null: sources without inventory, such as imported event logs) counts
    as available: nothing is declared sold out without evidence.
    """
    start, end = day_bounds(day)
    in_stock = F.coalesce(F.col("qty_on_hand") >= min_qty, F.lit(True))
    return catalog.where((F.col("live_from") < F.lit(end)) & (F.col("live_until") > F.lit(start)) & in_stock)


def candidate_groups(catalog: DataFrame, day: date, horizon_hours: int) -> list[int]:
    """Subclass-brands with a style on sale during the day or going live within `horizon_hours` after it."""
    start, end = day_bounds(day)
    horizon = end + timedelta(hours=horizon_hours)
    rows = (
        catalog.where((F.col("live_from") < F.lit(horizon)) & (F.col("live_until") > F.lit(start)))
        .select("subclass_brand_id")
        .distinct()
        .collect()
    )
    return sorted(row["subclass_brand_id"] for row in rows)


def group_hierarchy(catalog: DataFrame) -> DataFrame:
    """One row per subclass-brand: brand, division, class, subclass."""
    return catalog.select("subclass_brand_id", "brand", "division", "class", "subclass").dropDuplicates(
        ["subclass_brand_id"]
    )
