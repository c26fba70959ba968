"""Implicit ratings: event points summed per member x subclass-brand over a look-back window."""

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from reco_assets.constants import QUANTITY_EVENTS


def event_points(events: DataFrame, weights: dict[str, float]) -> DataFrame:
    """Events that carry an item signal, with their `points`: the kind's weight, per unit for purchases and
    returns (a line of 6 units bought scores 6 x 40; without a quantity, one unit)."""
    points = F.create_map(*[F.lit(x) for kind, weight in weights.items() for x in (kind, float(weight))])
    units = F.when(F.col("event_type").isin(*QUANTITY_EVENTS), F.coalesce(F.col("quantity"), F.lit(1))).otherwise(1)
    return events.where(F.col("event_type").isin(*weights)).withColumn(
        "points", points[F.col("event_type")] * units.cast("double")
    )


def implicit_ratings(events: DataFrame, weights: dict[str, float]) -> DataFrame:
    """One row per member x subclass-brand: summed points and the time of the latest event."""
    return (
        event_points(events, weights)
        .groupBy("member_id", "subclass_brand_id")
        .agg(F.sum("points").alias("rating"), F.max("event_time").alias("last_event_time"))
    )
