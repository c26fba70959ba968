"""Implicit ratings: event points summed per member x subclass-brand over a look-back window."""

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def event_points(events: DataFrame, weights: dict[str, float]) -> DataFrame:
    """Events that carry an item signal, with their `points`."""
    points = F.create_map(*[F.lit(x) for kind, weight in weights.items() for x in (kind, float(weight))])
    return events.where(F.col("event_type").isin(*weights)).withColumn("points", points[F.col("event_type")])


def implicit_ratings(events: DataFrame, weights: dict[str, float]) -> DataFrame:
    """One row per member x subclass-brand: summed points and the time of the latest event."""
    return (
        event_points(events, weights)
        .groupBy("member_id", "subclass_brand_id")
        .agg(F.sum("points").alias("rating"), F.max("event_time").alias("last_event_time"))
    )
