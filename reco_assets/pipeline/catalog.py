"""What is on sale: the day's live styles, the candidate groups, and the group hierarchy."""

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from reco_assets.constants import RETAIL_TIMEZONE

EASTERN = ZoneInfo(RETAIL_TIMEZONE)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC day as [start, end)."""
    start = datetime.combine(day, time(0), tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


def release_instant(day: date, release: str) -> datetime:
    """When a release refreshing the cards of as-of day `day` happens: `release` (HHMM, US Eastern wall
    clock) on the next day, the day those cards are served (in UTC)."""
    local = datetime.combine(day + timedelta(days=1), time(int(release[:2]), int(release[2:])), tzinfo=EASTERN)
    return local.astimezone(timezone.utc)


def sale_window(day: date, release: str | None = None) -> tuple[datetime, datetime]:
    """When styles must be on sale to be listed: during the day for the day's batch, at the release's
    instant (a one-second window) for a release refresh."""
    if release is None:
        return day_bounds(day)
    at = release_instant(day, release)
    return at, at + timedelta(seconds=1)


def live_styles(catalog: DataFrame, window: tuple[datetime, datetime], min_qty: int) -> DataFrame:
    """Styles on sale at some time of the window [start, end) with at least `min_qty` units on hand.

    An unknown stock (`qty_on_hand` null: sources without inventory, such as imported event logs) counts
    as available: nothing is declared sold out without evidence.
    """
    start, end = window
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


CLASS_PATH = ("division", "department", "class")
SUBCLASS_PATH = (*CLASS_PATH, "subclass")


def level_key(path: tuple[str, ...]) -> Column:
    """The key of a hierarchy level: its full path from the division, as JSON text (e.g.
    `["men","tops","Tees"]`), since names repeat across divisions (men's and women's "Tees"). Null when the
    level itself has no name: such a group is never boosted and is a class of its own."""
    parts = F.array(*[F.coalesce(F.col(level), F.lit("")) for level in path])
    return F.when(F.col(path[-1]).isNotNull(), F.to_json(parts))


def group_hierarchy(catalog: DataFrame) -> DataFrame:
    """One row per subclass-brand: brand, division, class, subclass and the keys of its class and subclass."""
    return (
        catalog.select("subclass_brand_id", "brand", *SUBCLASS_PATH)
        .dropDuplicates(["subclass_brand_id"])
        .withColumn("class_key", level_key(CLASS_PATH))
        .withColumn("subclass_key", level_key(SUBCLASS_PATH))
    )
