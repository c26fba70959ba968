"""One implicit-feedback ALS model per cohort (Spark MLlib), with 32-bit ids mapped inside the step."""

import math
import time
from dataclasses import dataclass

from pyspark.ml.recommendation import ALS
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

FACTORS_SCHEMA = "side string, id long, factors array<float>"


@dataclass(frozen=True)
class AlsParams:
    rank: int
    max_iter: int
    reg_param: float
    alpha: float
    item_blocks_divisor: int
    user_blocks_threshold: int
    user_blocks_divisor_small: int
    user_blocks_divisor_large: int
    checkpoint_interval: int
    seed: int


def user_blocks(members: int, params: AlsParams) -> int:
    """The reference's rule: ceil(members / divisor), a small divisor below the threshold, a large one above."""
    divisor = (
        params.user_blocks_divisor_small if members < params.user_blocks_threshold else params.user_blocks_divisor_large
    )
    return max(1, math.ceil(members / divisor))


def dense_index(ids: DataFrame, column: str) -> DataFrame:
    """`column` -> `idx`, 0..n-1 in id order: Spark ALS takes 32-bit integer ids."""
    return ids.select(column).distinct().withColumn("idx", F.row_number().over(Window.orderBy(column)) - 1)


def fit_cohort(ratings: DataFrame, params: AlsParams) -> tuple[DataFrame, dict]:
    """Fit ALS on (member_id, subclass_brand_id, rating); return factors (`side`, `id`, `factors`) and stats.

    Only positive ratings train: MLlib scales each row's regularization by its count of positive ratings,
    so a member whose groups all net to disengagement would get none and a singular system to solve.
    """
    ratings = (
        ratings.where(F.col("rating") > 0)
        .select("member_id", "subclass_brand_id", F.col("rating").cast("float"))
        .cache()
    )
    if ratings.isEmpty():
        ratings.unpersist()
        return ratings.sparkSession.createDataFrame([], FACTORS_SCHEMA), {"members": 0, "items": 0, "ratings": 0}
    members = dense_index(ratings, "member_id").cache()
    items = dense_index(ratings, "subclass_brand_id").cache()
    n_members, n_items, n_ratings = members.count(), items.count(), ratings.count()
    blocks = user_blocks(n_members, params)
    indexed = (
        ratings.join(F.broadcast(members).withColumnRenamed("idx", "user"), "member_id")
        .join(F.broadcast(items).withColumnRenamed("idx", "item"), "subclass_brand_id")
        .select("user", "item", "rating")
    )
    als = ALS(
        rank=params.rank,
        maxIter=params.max_iter,
        regParam=params.reg_param,
        alpha=params.alpha,
        implicitPrefs=True,
        numUserBlocks=blocks,
        numItemBlocks=max(1, math.ceil(n_items / params.item_blocks_divisor)),
        checkpointInterval=params.checkpoint_interval,
        seed=params.seed,
        userCol="user",
        itemCol="item",
        ratingCol="rating",
        coldStartStrategy="drop",
    )
    started = time.perf_counter()
    model = als.fit(indexed)
    member_factors = model.userFactors.join(members.withColumnRenamed("idx", "id_"), F.col("id") == F.col("id_"))
    item_factors = model.itemFactors.join(items.withColumnRenamed("idx", "id_"), F.col("id") == F.col("id_"))
    factors = member_factors.select(
        F.lit("member").alias("side"), F.col("member_id").alias("id"), "features"
    ).unionByName(item_factors.select(F.lit("item").alias("side"), F.col("subclass_brand_id").alias("id"), "features"))
    factors = factors.select("side", "id", F.col("features").alias("factors")).localCheckpoint()
    fit_seconds = time.perf_counter() - started
    stats = {
        "members": n_members,
        "items": n_items,
        "ratings": n_ratings,
        "user_blocks": blocks,
        "item_blocks": als.getNumItemBlocks(),
        "fit_seconds": round(fit_seconds, 3),
    }
    ratings.unpersist()
    return factors, stats
