"""Member cohorts: dominant division x spend bucket by the 90th percentile of purchase prices.

Spend buckets are cut at the quantiles of the buyers' P90 purchase price, so that the buckets hold
near-equal numbers of buyers. Fallback for members who never bought in the window: the same percentile
of the prices of the styles they engaged with (views, carts, still-want-it) places them against the
buyers' cut points; `spend_basis` says which one was used.

Division values are matched to the five cohort divisions ignoring case and surrounding spaces, through
the `cohorts.division_aliases` setting for other spellings ("Womens", "Ladies"); events of any other division value
do not vote, and a member without a vote in a known division gets the first division (Women), as the
reference's default. Every cohort key is thus one of `COHORTS`: one a partition runs.
"""

from collections.abc import Mapping

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from reco_assets.constants import DIVISIONS
from reco_assets.pipeline.ratings import event_points


def spend_cut_points(p90: DataFrame, buckets: int, accuracy: int = 10_000) -> list[float]:
    """The `buckets - 1` inner quantiles of the buyers' spend values."""
    probabilities = [i / buckets for i in range(1, buckets)]
    row = p90.agg(F.percentile_approx("spend", probabilities, accuracy).alias("cuts")).first()
    return list(row["cuts"] or [])


def bucket_of(value: F.Column, cuts: list[float]) -> F.Column:
    """1-based bucket of `value`: 1 + the number of cut points strictly below it."""
    return F.lit(1) + sum((value > F.lit(float(c))).cast("int") for c in cuts) if cuts else F.lit(1)


def cohort_division(division: F.Column, aliases: Mapping[str, str]) -> F.Column:
    """The cohort division (one of `DIVISIONS`) of a hierarchy's division value, or null when unknown."""
    known = {d: d for d in DIVISIONS} | {name.strip().lower(): target for name, target in aliases.items()}
    lookup = F.create_map(*[F.lit(x) for pair in known.items() for x in pair])
    return F.try_element_at(lookup, F.lower(F.trim(division)))


def member_cohorts(
    events: DataFrame,
    ratings: DataFrame,
    weights: dict[str, float],
    buckets: int,
    percentile: float,
    division_aliases: Mapping[str, str],
) -> DataFrame:
    """Exactly one row per member with a rating: `cohort`, `division_affinity`, `spend_bucket`, P90."""
    members = ratings.select("member_id").distinct()
    scored = event_points(events, weights).join(members, "member_id", "left_semi")

    division_points = (
        scored.withColumn("division", cohort_division(F.col("division"), division_aliases))
        .where(F.col("division").isNotNull())
        .groupBy("member_id", "division")
        .agg(F.sum("points").alias("points"))
    )
    order = F.array_position(F.array(*[F.lit(d) for d in DIVISIONS]), F.col("division"))
    dominant = (
        division_points.withColumn(
            "_n", F.row_number().over(Window.partitionBy("member_id").orderBy(F.desc("points"), order))
        )
        .where("_n = 1")
        .select("member_id", F.col("division").alias("division_affinity"))
    )

    purchases = scored.where(F.col("event_type") == "purchase")
    p90 = purchases.groupBy("member_id").agg(F.percentile("price", percentile).alias("p90_purchase_price"))
    browse = (
        scored.where(F.col("event_type") != "purchase")
        .groupBy("member_id")
        .agg(F.percentile("price", percentile).alias("p90_browse_price"))
    )
    cuts = spend_cut_points(p90.select(F.col("p90_purchase_price").alias("spend")), buckets)

    spend = F.coalesce("p90_purchase_price", "p90_browse_price", F.lit(0.0))
    return (
        members.join(dominant, "member_id", "left")
        .join(p90, "member_id", "left")
        .join(browse, "member_id", "left")
        .withColumn("division_affinity", F.coalesce("division_affinity", F.lit(DIVISIONS[0])))
        .withColumn("spend_bucket", bucket_of(spend, cuts))
        .withColumn("spend_basis", F.when(F.col("p90_purchase_price").isNotNull(), "purchases").otherwise("browsing"))
        .withColumn("cohort", F.concat_ws("_", "division_affinity", F.col("spend_bucket").cast("string")))
        .select("member_id", "cohort", "division_affinity", "spend_bucket", "p90_purchase_price", "spend_basis")
    )
