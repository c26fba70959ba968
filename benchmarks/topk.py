"""Top-K affinities: our blocked Arrow scoring against Spark MLlib's `recommendForAllUsers`, same model.

    .venv/bin/python benchmarks/topk.py [--users 20000 --items 1000 --k 1000]

Both run in the same Spark session on the same fitted factors; prints seconds, the ratio, and whether
the two agree on each member's top 10.
"""

import argparse
import tempfile
import time

import numpy as np
from pyspark.ml.recommendation import ALS
from pyspark.sql import Window
from pyspark.sql import functions as F

from reco_assets.pipeline.affinities import top_k_affinities
from reco_assets.resources.spark import SparkResource


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=1_000)
    parser.add_argument("--ratings", type=int, default=300_000)
    parser.add_argument("--k", type=int, default=1_000)
    args = parser.parse_args()
    spark = SparkResource(checkpoint_dir=tempfile.mkdtemp()).session()
    rng = np.random.default_rng(0)
    users = rng.integers(args.users, size=args.ratings)
    items = np.minimum(rng.zipf(1.3, size=args.ratings) - 1, args.items - 1)
    ratings = (
        spark.createDataFrame(
            [(int(u), int(i), float(r)) for u, i, r in zip(users, items, rng.choice([3.0, 10.0, 40.0], args.ratings))],
            "user int, item int, rating float",
        )
        .dropDuplicates(["user", "item"])
        .cache()
    )
    model = ALS(
        rank=50,
        maxIter=10,
        regParam=0.01,
        alpha=0.05,
        implicitPrefs=True,
        seed=42,
        userCol="user",
        itemCol="item",
        ratingCol="rating",
    ).fit(ratings)

    started = time.perf_counter()
    mllib = model.recommendForAllUsers(args.k).select("user", F.explode("recommendations").alias("r"))
    mllib = mllib.select("user", "r.item", "r.rating").cache()
    mllib_rows = mllib.count()
    mllib_seconds = time.perf_counter() - started

    factors = model.userFactors.select(
        F.lit("member").alias("side"), F.col("id").cast("long"), F.col("features").alias("factors")
    )
    factors = factors.unionByName(
        model.itemFactors.select(
            F.lit("item").alias("side"), F.col("id").cast("long"), F.col("features").alias("factors")
        )
    ).cache()
    factors.count()
    candidates = [r["id"] for r in factors.where("side = 'item'").select("id").collect()]
    renamed = ratings.select(
        F.col("user").cast("long").alias("member_id"), F.col("item").cast("long").alias("subclass_brand_id"), "rating"
    )
    started = time.perf_counter()
    ours = top_k_affinities(factors, candidates, renamed, args.k).cache()
    our_rows = ours.count()
    our_seconds = time.perf_counter() - started

    top10_ours = {(r["member_id"], r["subclass_brand_id"]) for r in ours.where("rank <= 10").collect()}
    ranked = mllib.withColumn("rank", F.row_number().over(Window.partitionBy("user").orderBy(F.desc("rating"))))
    top10_mllib = {(r["user"], r["item"]) for r in ranked.where("rank <= 10").collect()}
    agreement = len(top10_ours & top10_mllib) / max(1, len(top10_mllib))
    print(f"users {args.users:,}  items {len(candidates):,}  k {args.k:,}")
    print(f"recommendForAllUsers: {mllib_seconds:7.1f} s  ({mllib_rows:,} rows)")
    print(f"blocked Arrow top-K:  {our_seconds:7.1f} s  ({our_rows:,} rows)")
    print(f"speed-up: {mllib_seconds / our_seconds:.1f}x   top-10 agreement: {agreement:.4f}")


if __name__ == "__main__":
    main()
