"""Factor models of the cohorts (implicit-feedback ALS, or the softmax choice model), every cohort's model
fitted in one Spark job.

A cohort's model is fitted on its own members' ratings (scope `cohort`, the reference design), or is its
members' share of one model fitted on every member's ratings (scope `global`): each cohort then gets its
members' factors and the factors of every group anyone rated, so what reads a cohort's model is the same.
A global model with `implicit` is one task holding every positive rating (about 30 bytes each in Arrow and
the sparse matrix: 2 million members with 15 ratings each take about 1 GB); beyond one worker's memory,
`mllib` distributes the fit.

The default engine, `softmax` (`pipeline/softmax.py`), fits another model on the same ratings, each model
in one task as `implicit` does: a softmax choice of the next group, whose factors are read the same way.

Two engines give the same (ALS) model:
- `implicit`: the `implicit` library's CPU conjugate-gradient ALS, one cohort per Spark task
  (`groupBy("cohort").applyInArrow`). A cohort's ratings fit in one task's memory up to millions of rows.
- `mllib`: Spark MLlib's ALS (the reference's engine), fitted cohort after cohort, each fit distributed:
  the choice for a cohort too large for one executor.

What `implicit` is given so that it solves MLlib's problem: MLlib's confidence is c = 1 + alpha * r for an
observed rating and 1 for the rest, with preference 1 where r > 0; `implicit` takes the matrix values as
the confidence of observed cells (1 elsewhere, preference 1 where stored), so it is fed 1 + alpha * r with
its own alpha at 1. What differs: MLlib scales a row's regularization by its count of ratings
(ALS-WR, lambda * n_u), `implicit` applies one lambda to every row, and no transformation of the data
recovers the per-row penalty. Each `implicit` model therefore gets lambda times its (cohort's, or everyone's) mean
count of ratings per member: the ALS-WR penalty of its average member. That keeps one setting meaningful
from cohorts of a hundred members to cohorts of a hundred thousand, whose densities differ; its value is
still tuned for this engine (`factor_model.reg_param` of `implicit`), apart from MLlib's. Only positive
ratings train, for both.
"""

import math
import os
import time

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from reco_assets.settings import FactorModelSettings, ImplicitAls, MllibAls

FACTORS_SCHEMA = pa.schema(
    [
        ("cohort", pa.string()),
        ("side", pa.string()),
        ("id", pa.int64()),
        ("factors", pa.list_(pa.float32())),
        ("fit_seconds", pa.float64()),
    ]
)
"""A fitted model: `member` and `item` (subclass-brand) factor rows of each cohort; the fit's wall time."""


def positive(ratings: DataFrame) -> DataFrame:
    """The training cells: positive ratings as float."""
    return ratings.where(F.col("rating") > 0).select(
        "cohort", "member_id", "subclass_brand_id", F.col("rating").cast("float").alias("rating")
    )


def fit_implicit(members: np.ndarray, items: np.ndarray, ratings: np.ndarray, params: ImplicitAls):
    """One cohort's ALS with `implicit`: (member ids, member factors, item ids, item factors), ids sorted."""
    import scipy.sparse as sp
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    member_ids, rows = np.unique(members, return_inverse=True)
    item_ids, cols = np.unique(items, return_inverse=True)
    confidence = sp.csr_matrix(
        (1.0 + params.alpha * ratings.astype(np.float32), (rows, cols)), shape=(len(member_ids), len(item_ids))
    )
    model = AlternatingLeastSquares(
        factors=params.rank,
        regularization=params.reg_param * len(ratings) / max(len(member_ids), 1),
        alpha=1.0,
        iterations=params.max_iter,
        num_threads=params.num_threads,
        use_cg=params.conjugate_gradient,
        random_state=params.seed,
        calculate_training_loss=False,
    )
    # implicit parallelizes over rows itself; a multi-threaded BLAS under it would oversubscribe the cores
    with threadpool_limits(1, "blas"):
        model.fit(confidence, show_progress=False)
    return member_ids, model.user_factors, item_ids, model.item_factors


def factor_rows(cohort: str, member_ids, member_factors, item_ids, item_factors, seconds: float) -> pa.Table:
    """A fitted model as rows of `FACTORS_SCHEMA`."""
    ids = np.concatenate([member_ids, item_ids]).astype(np.int64)
    matrix = np.concatenate([member_factors, item_factors]).astype(np.float32)
    rank = matrix.shape[1] if matrix.ndim == 2 else 0
    factors = pa.ListArray.from_arrays(
        pa.array(np.arange(len(ids) + 1, dtype=np.int32) * rank), pa.array(matrix.ravel())
    )
    return pa.table(
        {
            "cohort": pa.repeat(pa.scalar(cohort, pa.string()), len(ids)),
            "side": pa.concat_arrays(
                [pa.repeat(pa.scalar("member"), len(member_ids)), pa.repeat(pa.scalar("item"), len(item_ids))]
            ),
            "id": ids,
            "factors": factors.cast(pa.list_(pa.float32())),
            "fit_seconds": pa.array(np.full(len(ids), seconds), pa.float64()),
        },
        schema=FACTORS_SCHEMA,
    )


def _model(table: pa.Table) -> tuple | None:
    """Factor rows of one model (FACTORS_SCHEMA) as `fit_softmax` returns a model, ids sorted; None if empty."""
    if table.num_rows == 0:
        return None
    side = table.column("side").to_numpy(zero_copy_only=False)
    ids = table.column("id").to_numpy()
    factors = table.column("factors").combine_chunks()
    width = len(factors[0])
    matrix = factors.flatten().to_numpy().reshape(-1, width)
    model = []
    for name in ("member", "item"):
        rows = np.flatnonzero(side == name)
        rows = rows[np.argsort(ids[rows], kind="stable")]
        model += [ids[rows], matrix[rows]]
    return tuple(model)


def _fit_group(table: pa.Table, params: FactorModelSettings, start: pa.Table | None = None) -> pa.Table:
    """The task of one cohort: its positive ratings (and an earlier model's factor rows, `start`, for a warm
    softmax fit) in, its factor rows out."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    started = time.perf_counter()
    columns = (table.column(c).to_numpy() for c in ("member_id", "subclass_brand_id", "rating"))
    if params.engine == "softmax":
        from threadpoolctl import threadpool_limits

        from reco_assets.pipeline.softmax import fit_softmax

        # its work is BLAS products: on the task's threads (every core it may use for a global model's only task)
        with threadpool_limits(params.num_threads or len(os.sched_getaffinity(0)), "blas"):
            fitted = fit_softmax(*columns, params, _model(start) if start is not None else None)
    else:
        fitted = fit_implicit(*columns, params)
    return factor_rows(table.column("cohort")[0].as_py(), *fitted, time.perf_counter() - started)


GLOBAL = "global"
"""The cohort label of a model fitted on every member."""


def fit_cohorts(ratings: DataFrame, params: FactorModelSettings, start: DataFrame | None = None) -> DataFrame:
    """Factors of every cohort in `ratings` (`cohort`, `member_id`, `subclass_brand_id`, `rating`), fitted
    per cohort or as one global model shared out to the cohorts (`params.scope`); from `start`, earlier
    factors of the same settings (FACTORS_SCHEMA rows as this returns them), when given."""
    if params.scope == "cohort":
        return fit_models(ratings, params, start)
    if start is not None:  # the global model these rows share out: each member once, each group in every cohort
        start = start.dropDuplicates(["side", "id"]).withColumn("cohort", F.lit(GLOBAL))
    # fitted once (the frame feeds both sides of the share-out), as the only task of its job: on every core
    # of its executor (0 threads: `implicit`'s own rule, the task's CPUs for `softmax`), not the one of a task
    # among several
    whole = params if params.engine == "mllib" else params.model_copy(update={"num_threads": 0})
    fitted = fit_models(ratings.withColumn("cohort", F.lit(GLOBAL)), whole, start).localCheckpoint()
    # kept too: the share-out reads the members' cohorts twice, and the ratings are read for them only once
    members = ratings.where(F.col("rating") > 0).select("member_id", "cohort").distinct().localCheckpoint()
    return shared_out(fitted, members)


def shared_out(fitted: DataFrame, members: DataFrame) -> DataFrame:
    """One model's factors as every cohort's model: each member's row under their `cohort` (of `members`),
    every item row under each of those cohorts (groups x cohorts rows: small)."""
    cohorts = F.broadcast(members.select("cohort").distinct())
    items = fitted.where(F.col("side") == "item").drop("cohort").crossJoin(cohorts)
    member_cohort = members.withColumnRenamed("member_id", "id")
    own = fitted.where(F.col("side") == "member").drop("cohort").join(member_cohort, "id")
    return items.unionByName(own).select(*FACTORS_SCHEMA.names)


def fit_models(ratings: DataFrame, params: FactorModelSettings, start: DataFrame | None = None) -> DataFrame:
    """One model per `cohort` of `ratings`, with the configured engine; a softmax model from the rows of
    `start` under its label, when given (each task gets its cohort's ratings and earlier factors together)."""
    if params.engine == "mllib":
        return fit_mllib(ratings, params)
    from pyspark.sql.pandas.types import from_arrow_schema

    schema = from_arrow_schema(FACTORS_SCHEMA)
    rated = positive(ratings).groupBy("cohort")
    if start is None or params.engine != "softmax" or params.warm_iterations == 0:

        def fit(table: pa.Table) -> pa.Table:  # typed: Spark infers the UDF kind from the hints
            return _fit_group(table, params)

        return rated.applyInArrow(fit, schema)

    def fit_warm(table: pa.Table, earlier: pa.Table) -> pa.Table:
        if table.num_rows == 0:  # a label of the earlier model only: no model now
            return FACTORS_SCHEMA.empty_table()
        return _fit_group(table, params, earlier)

    earlier = start.select(*FACTORS_SCHEMA.names).groupBy("cohort")
    return rated.cogroup(earlier).applyInArrow(fit_warm, schema)


# --- the reference engine: Spark MLlib ----------------------------------------------------------------


def user_blocks(members: int, params: MllibAls) -> int:
    """The reference's rule: ceil(members / divisor), a small divisor below the threshold, a large one above."""
    divisor = (
        params.user_blocks_divisor_small if members < params.user_blocks_threshold else params.user_blocks_divisor_large
    )
    return max(1, math.ceil(members / divisor))


def dense_index(ids: DataFrame, column: str) -> DataFrame:
    """`column` -> `idx`, 0..n-1 in id order: Spark ALS takes 32-bit integer ids."""
    return ids.select(column).distinct().withColumn("idx", F.row_number().over(Window.orderBy(column)) - 1)


def fit_mllib(ratings: DataFrame, params: MllibAls) -> DataFrame:
    """MLlib ALS per cohort, one distributed fit after the other (the cohorts' sizes are collected, not rows)."""
    from functools import reduce

    from pyspark.ml.recommendation import ALS

    train = positive(ratings).cache()
    sizes = {
        row["cohort"]: (row["members"], row["items"])
        for row in train.groupBy("cohort")
        .agg(F.countDistinct("member_id").alias("members"), F.countDistinct("subclass_brand_id").alias("items"))
        .collect()
    }
    fitted = []
    for cohort, (n_members, n_items) in sorted(sizes.items()):
        cells = train.where(F.col("cohort") == cohort)
        members = dense_index(cells, "member_id").cache()
        items = dense_index(cells, "subclass_brand_id").cache()
        indexed = (
            cells.join(F.broadcast(members).withColumnRenamed("idx", "user"), "member_id")
            .join(F.broadcast(items).withColumnRenamed("idx", "item"), "subclass_brand_id")
            .select("user", "item", "rating")
        )
        als = ALS(
            rank=params.rank,
            maxIter=params.max_iter,
            regParam=params.reg_param,
            alpha=params.alpha,
            implicitPrefs=True,
            numUserBlocks=user_blocks(n_members, params),
            numItemBlocks=max(1, math.ceil(n_items / params.item_blocks_divisor)),
            checkpointInterval=params.checkpoint_interval,
            seed=params.seed,
            userCol="user",
            itemCol="item",
            ratingCol="rating",
        )
        started = time.perf_counter()
        model = als.fit(indexed)
        side = [
            (model.userFactors, members, "member_id", "member"),
            (model.itemFactors, items, "subclass_brand_id", "item"),
        ]
        rows = reduce(
            DataFrame.unionByName,
            [
                factors.join(index.withColumnRenamed("idx", "id_"), F.col("id") == F.col("id_")).select(
                    F.lit(cohort).alias("cohort"),
                    F.lit(name).alias("side"),
                    F.col(column).alias("id"),
                    F.col("features").alias("factors"),
                )
                for factors, index, column, name in side
            ],
        ).localCheckpoint()
        fitted.append(rows.withColumn("fit_seconds", F.lit(time.perf_counter() - started)))
    train.unpersist()
    if not fitted:
        from pyspark.sql.pandas.types import from_arrow_schema

        return ratings.sparkSession.createDataFrame([], from_arrow_schema(FACTORS_SCHEMA))
    return reduce(DataFrame.unionByName, fitted)
