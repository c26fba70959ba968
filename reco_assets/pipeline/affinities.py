"""Affinities: the top K candidate subclass-brands per member, then the intent boost, then diversification."""

from collections.abc import Iterator

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from reco_assets.constants import BROWSE_EVENTS

AFFINITY_SCHEMA = "member_id long, subclass_brand_id long, prediction double, rank int"


def top_k_block(
    member_ids: np.ndarray, member_factors: np.ndarray, item_ids: np.ndarray, item_factors: np.ndarray, k: int
) -> pd.DataFrame:
    """Top `k` items per member by dot product, ties broken by item id: a blocked matrix product and a
    partial sort (argpartition), which is what `recommendForAllUsers` cannot do cheaply at large k."""
    k = min(k, len(item_ids))
    if k == 0 or len(member_ids) == 0:
        return pd.DataFrame(
            {
                "member_id": pd.Series(dtype="int64"),
                "subclass_brand_id": pd.Series(dtype="int64"),
                "prediction": pd.Series(dtype="float64"),
                "rank": pd.Series(dtype="int32"),
            }
        )
    scores = member_factors @ item_factors.T
    # Items come sorted by id, so a stable sort on -score breaks ties by id.
    if k < len(item_ids):
        part = np.sort(np.argpartition(-scores, k - 1, axis=1)[:, :k], axis=1)
        within = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
        order = np.take_along_axis(part, within, axis=1)
    else:
        order = np.argsort(-scores, axis=1, kind="stable")
    top = np.take_along_axis(scores, order, axis=1)
    return pd.DataFrame(
        {
            "member_id": np.repeat(member_ids, k),
            "subclass_brand_id": item_ids[order].ravel(),
            "prediction": top.ravel().astype(np.float64),
            "rank": np.tile(np.arange(1, k + 1, dtype=np.int32), len(member_ids)),
        }
    )


def top_k_affinities(factors: DataFrame, candidates: list[int], ratings: DataFrame, k: int) -> DataFrame:
    """Per member, the top `k` of the candidate groups by predicted affinity, with the member's rating (0 if none).

    Item factors of the candidates are shipped to every task; member factors are scored in Arrow batches,
    so the work spreads over the cluster like any other Spark stage.
    """
    items = factors.where(F.col("side") == "item").where(F.col("id").isin(candidates)).orderBy("id").collect()
    item_ids = np.array([row["id"] for row in items], dtype=np.int64)
    item_matrix = (
        np.array([row["factors"] for row in items], dtype=np.float32).reshape(len(items), -1)
        if items
        else np.empty((0, 0), np.float32)
    )

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            matrix = np.stack(batch["factors"].to_numpy()).astype(np.float32) if len(batch) else np.empty((0, 0))
            yield top_k_block(batch["id"].to_numpy(), matrix, item_ids, item_matrix, k)

    members = factors.where(F.col("side") == "member").select("id", "factors")
    top = members.mapInPandas(score, AFFINITY_SCHEMA)
    rated = ratings.select("member_id", "subclass_brand_id", "rating")
    return (
        top.join(rated, ["member_id", "subclass_brand_id"], "left")
        .withColumn("rating", F.coalesce(F.col("rating").cast("double"), F.lit(0.0)))
        .select("member_id", "subclass_brand_id", "rating", "prediction", "rank")
    )


def intent_subclasses(events: DataFrame, top_n: int) -> DataFrame:
    """Per member, the `top_n` subclasses browsed (views, carts) but not bought in the events given.

    Ordered by browse count, then most recent browse, then subclass name: (`member_id`, `subclass`, `intent_rank`).
    """
    bought = events.where(F.col("event_type") == "purchase").select("member_id", "subclass").distinct()
    browsed = (
        events.where(F.col("event_type").isin(*BROWSE_EVENTS))
        .groupBy("member_id", "subclass")
        .agg(F.count("*").alias("browses"), F.max("event_time").alias("last_browse"))
        .join(bought, ["member_id", "subclass"], "left_anti")
    )
    order = Window.partitionBy("member_id").orderBy(F.desc("browses"), F.desc("last_browse"), "subclass")
    return (
        browsed.withColumn("intent_rank", F.row_number().over(order))
        .where(F.col("intent_rank") <= top_n)
        .select("member_id", "subclass", "intent_rank")
    )


def boost_affinities(affinities: DataFrame, intents: DataFrame, groups: DataFrame, strength: float) -> DataFrame:
    """Add `boost` to the groups of the member's intent subclasses and re-rank by `score`.

    boost = strength x (the member's max prediction - min prediction), so the size of a boost is relative to
    how spread the member's predictions are (they are unscaled dot products); 0 elsewhere.
    """
    member = Window.partitionBy("member_id")
    spread = F.max("prediction").over(member) - F.min("prediction").over(member)
    boosted = (
        affinities.join(groups.select("subclass_brand_id", "subclass"), "subclass_brand_id", "left")
        .join(intents.select("member_id", "subclass", F.lit(True).alias("_intent")), ["member_id", "subclass"], "left")
        .withColumn("boost", F.when(F.col("_intent"), F.lit(strength) * spread).otherwise(F.lit(0.0)))
        .withColumn("score", F.col("prediction") + F.col("boost"))
    )
    order = member.orderBy(F.desc("score"), "subclass_brand_id")
    return boosted.withColumn("rank", F.row_number().over(order)).select(
        "member_id", "subclass_brand_id", "rating", "prediction", "boost", "score", "rank"
    )


def diversify(boosted: DataFrame, groups: DataFrame, per_class: int) -> DataFrame:
    """Keep at most `per_class` groups per class per member, in score order; rank again 1..n without gaps."""
    in_class = Window.partitionBy("member_id", "class").orderBy(F.desc("score"), "subclass_brand_id")
    kept = (
        boosted.join(groups.select("subclass_brand_id", "class"), "subclass_brand_id", "left")
        .withColumn("_in_class", F.row_number().over(in_class))
        .where(F.col("_in_class") <= per_class)
    )
    order = Window.partitionBy("member_id").orderBy(F.desc("score"), "subclass_brand_id")
    return kept.withColumn("rank", F.row_number().over(order)).select(
        "member_id", "subclass_brand_id", "class", "score", "rank"
    )
