"""Affinities: per member, the top K candidate subclass-brands, the intent boost and the per-class limit,
computed in one vectorized pass per block of members.

The three tables of the contract come out of the same pass (`rank_block`):
- `member_affinities`: the top K by prediction (the dot product of the factors), ties by group id, with
  the member's own rating of the group (0 if none);
- `boosted_affinities`: the same rows, with boost = strength x (the member's max - min prediction) on the
  groups of the member's intent subclasses, score = prediction + boost, ranked by score (ties by id);
- `diversified_affinities`: at most N groups per class in score order, ranked 1..n again.

Spark ships each task the candidate groups' factors of every cohort model and the group hierarchy (small:
groups x cohorts), and streams the members' factors, ratings and intents through it; nothing of member x
group size is shuffled, windowed or collected.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from reco_assets.constants import BROWSE_EVENTS
from reco_assets.pipeline.catalog import SUBCLASS_PATH, level_key

AFFINITIES_SCHEMA = pa.schema(
    [
        ("member_id", pa.int64()),
        ("subclass_brand_id", pa.int64()),
        ("rating", pa.float64()),
        ("prediction", pa.float64()),
        ("rank", pa.int32()),
    ]
)
BOOSTED_SCHEMA = pa.schema(
    [
        ("member_id", pa.int64()),
        ("subclass_brand_id", pa.int64()),
        ("rating", pa.float64()),
        ("prediction", pa.float64()),
        ("boost", pa.float64()),
        ("score", pa.float64()),
        ("rank", pa.int32()),
    ]
)
DIVERSIFIED_SCHEMA = pa.schema(
    [
        ("member_id", pa.int64()),
        ("subclass_brand_id", pa.int64()),
        ("class_key", pa.string()),
        ("score", pa.float64()),
        ("rank", pa.int32()),
    ]
)
OUTPUTS = {
    "member_affinities": AFFINITIES_SCHEMA,
    "boosted_affinities": BOOSTED_SCHEMA,
    "diversified_affinities": DIVERSIFIED_SCHEMA,
}
CELLS_PER_BLOCK = 4_000_000
"""Members x groups scored at once: bounds a task's memory (a few dense float arrays of this size)."""


@dataclass(frozen=True)
class RankParams:
    top_k: int
    boost_strength: float
    max_groups_per_class: int


@dataclass(frozen=True)
class Hierarchy:
    """Names behind the integer codes the ranking works with."""

    subclasses: np.ndarray  # code -> subclass key (`level_key`)
    classes: np.ndarray  # code -> class key


@dataclass(frozen=True)
class CohortItems:
    """One cohort model's candidate groups: ids (sorted), factors, and hierarchy codes."""

    ids: np.ndarray
    factors: np.ndarray
    subclass: np.ndarray
    klass: np.ndarray


def _take(matrix: np.ndarray, index: np.ndarray) -> np.ndarray:
    return np.take_along_axis(matrix, index, axis=1)


def _occurrence(codes: np.ndarray) -> np.ndarray:
    """For each cell, how many cells before it in its row hold the same code (0 for the first)."""
    n, k = codes.shape
    small = np.int16 if int(codes.max(initial=0)) < np.iinfo(np.int16).max else np.int32
    order = np.argsort(codes.astype(small), axis=1, kind="stable")  # a radix sort for 16-bit codes
    ordered = _take(codes, order)
    position = np.broadcast_to(np.arange(k), (n, k))
    starts = np.ones((n, k), dtype=bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    run_start = np.maximum.accumulate(np.where(starts, position, 0), axis=1)
    occurrence = np.empty((n, k), dtype=np.int64)
    np.put_along_axis(occurrence, order, position - run_start, axis=1)
    return occurrence


def _positions_by_id(top: np.ndarray, m: int) -> np.ndarray:
    """Per row, the positions of `top` (column indices into m items) in increasing item order: the argsort
    of each row of `top`, by scattering into the m columns rather than sorting."""
    n, k = top.shape
    slots = np.full((n, m), -1, dtype=np.int64)
    np.put_along_axis(slots, top, np.broadcast_to(np.arange(k), (n, k)), axis=1)
    return slots[slots >= 0].reshape(n, k)


def _empty() -> dict[str, pa.Table]:
    return {name: schema.empty_table() for name, schema in OUTPUTS.items()}


def rank_block(
    member_ids: np.ndarray,
    member_factors: np.ndarray,
    rated: tuple[np.ndarray, np.ndarray, np.ndarray],
    intents: tuple[np.ndarray, np.ndarray],
    items: CohortItems,
    hierarchy: Hierarchy,
    params: RankParams,
) -> dict[str, pa.Table]:
    """The three affinity tables of a block of members of one cohort.

    `rated` = (row in the block, group id, rating) of the members' ratings; `intents` = (row, subclass
    code) of their intent subclasses (already the top N browsed-not-bought ones).
    """
    n, m = len(member_ids), len(items.ids)
    k = min(params.top_k, m)
    if n == 0 or k == 0:
        return _empty()
    scores = member_factors.astype(np.float32) @ items.factors.T
    # Items are sorted by id, so a stable sort on -score breaks ties by id, at the cut too (a partial
    # sort, argpartition, keeps an arbitrary one of the groups tied at the K-th place).
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    prediction = _take(scores, top).astype(np.float64)

    own = np.zeros((n, m))
    rows, groups, values = rated
    at = np.searchsorted(items.ids, groups)
    known = at < m
    known[known] = items.ids[at[known]] == groups[known]
    own[rows[known], at[known]] = values[known]
    rating = _take(own, top)

    wanted = np.zeros((n, len(hierarchy.subclasses)), dtype=bool)
    wanted[intents[0], intents[1]] = True
    spread = prediction.max(axis=1) - prediction.min(axis=1)
    boost = np.where(wanted[np.arange(n)[:, None], items.subclass[top]], params.boost_strength * spread[:, None], 0.0)
    score = prediction + boost

    by_id = _positions_by_id(top, m)  # rank positions in group-id order
    boosted = _take(by_id, np.argsort(-_take(score, by_id), axis=1, kind="stable"))  # positions in score order
    kept = _occurrence(items.klass[_take(top, boosted)]) < params.max_groups_per_class

    member = np.repeat(member_ids.astype(np.int64), k)
    rank = np.tile(np.arange(1, k + 1, dtype=np.int32), n)
    b_items = items.ids[_take(top, boosted)]
    affinities = pa.table(
        [member, items.ids[top].ravel(), rating.ravel(), prediction.ravel(), rank], schema=AFFINITIES_SCHEMA
    )
    boosted_table = pa.table(
        [
            member,
            b_items.ravel(),
            _take(rating, boosted).ravel(),
            _take(prediction, boosted).ravel(),
            _take(boost, boosted).ravel(),
            _take(score, boosted).ravel(),
            rank,
        ],
        schema=BOOSTED_SCHEMA,
    )
    mask = kept.ravel()
    diversified_rank = np.cumsum(kept, axis=1, dtype=np.int32).ravel()[mask]
    classes = pa.DictionaryArray.from_arrays(
        pa.array(items.klass[_take(top, boosted)].ravel()[mask], pa.int32()), pa.array(hierarchy.classes)
    )
    diversified = pa.table(
        [
            member[mask],
            b_items.ravel()[mask],
            classes.cast(pa.string()),
            _take(score, boosted).ravel()[mask],
            diversified_rank,
        ],
        schema=DIVERSIFIED_SCHEMA,
    )
    return {"member_affinities": affinities, "boosted_affinities": boosted_table, "diversified_affinities": diversified}


# --- Spark: the inputs of the pass, and the pass over every cohort -------------------------------------


def intent_subclasses(events: DataFrame, top_n: int) -> DataFrame:
    """Per member, the `top_n` subclasses browsed (views, carts) but not bought in the events given, as
    `intents` (array of subclass keys, best first): by browse count, then most recent browse, then key.

    An aggregation and a sort of each member's short array, not a window over member x subclass rows.
    """
    keyed = events.where(F.col("subclass").isNotNull()).withColumn("subclass_key", level_key(SUBCLASS_PATH))
    bought = keyed.where(F.col("event_type") == "purchase").select("member_id", "subclass_key").distinct()
    browsed = (
        keyed.where(F.col("event_type").isin(*BROWSE_EVENTS))
        .groupBy("member_id", "subclass_key")
        .agg(F.count("*").alias("browses"), F.max("event_time").alias("last_browse"))
        .join(bought, ["member_id", "subclass_key"], "left_anti")
    )
    order = F.struct(
        (-F.col("browses")).alias("a"), (-F.unix_micros("last_browse")).alias("b"), F.col("subclass_key").alias("c")
    )
    return browsed.groupBy("member_id").agg(
        F.transform(F.slice(F.array_sort(F.collect_list(order)), 1, top_n), lambda x: x["c"]).alias("intents")
    )


def ranking_inputs(factors: DataFrame, ratings: DataFrame, intents: DataFrame) -> DataFrame:
    """One row per member of every model: `cohort`, `member_id`, `factors`, `rated` (their ratings) and
    `intents` (their intent subclasses)."""
    rated = ratings.groupBy("member_id").agg(
        F.collect_list(F.struct("subclass_brand_id", F.col("rating").cast("double").alias("rating"))).alias("rated")
    )
    return (
        factors.where(F.col("side") == "member")
        .select("cohort", F.col("id").alias("member_id"), "factors")
        .join(rated, "member_id", "left")
        .join(intents.select("member_id", "intents"), "member_id", "left")
    )


def cohort_items(factors: DataFrame, candidates: list[int], groups: DataFrame) -> tuple[dict, Hierarchy]:
    """The candidate groups of every cohort model, with hierarchy codes: small (groups x cohorts), shipped
    to the tasks."""
    hierarchy = groups.select("subclass_brand_id", "subclass_key", "class_key").toArrow().sort_by("subclass_brand_id")
    group_ids = hierarchy.column("subclass_brand_id").to_numpy()
    # "" stands for a missing level: a group without hierarchy is never boosted and is a class of its own
    levels = {}
    for level in ("subclass_key", "class_key"):
        names = hierarchy.column(level).fill_null("").to_numpy(zero_copy_only=False).astype(str)
        known = np.unique(np.append(names, ""))
        levels[level] = (known, np.searchsorted(known, names))
    subclasses, classes = levels["subclass_key"][0], levels["class_key"][0]
    rows = (
        factors.where((F.col("side") == "item") & F.col("id").isin(candidates))
        .select("cohort", "id", "factors")
        .toArrow()
        .sort_by([("cohort", "ascending"), ("id", "ascending")])
    )
    models = {}
    for cohort in pc.unique(rows.column("cohort")).to_pylist():
        part = rows.filter(pc.equal(rows.column("cohort"), cohort))
        ids = part.column("id").to_numpy()
        at = np.minimum(np.searchsorted(group_ids, ids), max(len(group_ids) - 1, 0))
        found = (group_ids[at] == ids) if len(group_ids) else np.zeros(len(ids), bool)
        models[cohort] = CohortItems(
            ids=ids,
            factors=_matrix(part.column("factors")),
            subclass=np.where(
                found, levels["subclass_key"][1][at] if len(group_ids) else 0, np.searchsorted(subclasses, "")
            ),
            klass=np.where(found, levels["class_key"][1][at] if len(group_ids) else 0, np.searchsorted(classes, "")),
        )
    return models, Hierarchy(subclasses=subclasses, classes=classes)


def _matrix(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A list<float> column of equal-length vectors as a 2-D float32 array."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if len(array) == 0:
        return np.empty((0, 0), np.float32)
    values = array.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
    return values.reshape(len(array), -1)


def _coo(lists: pa.Array, fields: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    """(row, field values...) of a list column (a null list counts as empty)."""
    lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy()
    rows = np.repeat(np.arange(len(lists)), lengths)
    flat = pc.list_flatten(lists)
    if not fields:
        return rows, flat
    return (rows, *(flat.field(f).to_numpy(zero_copy_only=False) for f in fields))


def rank_batches(
    batches: Iterator[pa.RecordBatch], models: dict, hierarchy: Hierarchy, params: RankParams
) -> Iterator[tuple[str, pa.Table]]:
    """The pass in a task: batches of `ranking_inputs` in, (table name, rows with `cohort`) out.
    The inputs carry a cohort each; `models` (cohort -> `CohortItems`) and `hierarchy` come from
    `cohort_items`."""
    subclass_names = pa.array(hierarchy.subclasses.tolist(), pa.string())
    for batch in batches:
        for cohort in pc.unique(batch.column("cohort")).to_pylist():
            part = batch.filter(pc.equal(batch.column("cohort"), cohort))
            items = models.get(cohort)
            if items is None:
                continue  # a model without any candidate group: nothing to rank
            step = max(1, CELLS_PER_BLOCK // max(1, len(items.ids)))
            for start in range(0, part.num_rows, step):
                block = part.slice(start, step)
                rows, groups, values = _coo(block.column("rated"), ("subclass_brand_id", "rating"))
                intent_rows, names = _coo(block.column("intents"), ())
                intent_codes = pc.fill_null(pc.index_in(names, value_set=subclass_names), -1).to_numpy()
                ok = intent_codes >= 0
                tables = rank_block(
                    block.column("member_id").to_numpy(),
                    _matrix(block.column("factors")),
                    (rows, groups.astype(np.int64), values.astype(np.float64)),
                    (intent_rows[ok], intent_codes[ok]),
                    items,
                    hierarchy,
                    params,
                )
                for name, table in tables.items():
                    yield name, table.append_column("cohort", pa.repeat(pa.scalar(cohort, pa.string()), table.num_rows))


RANKINGS_SCHEMA = pa.schema(
    [
        ("table", pa.string()),
        ("cohort", pa.string()),
        ("member_id", pa.int64()),
        ("subclass_brand_id", pa.int64()),
        ("score", pa.float64()),
        ("rank", pa.int32()),
    ]
)


def top_rankings(inputs: DataFrame, models: dict, hierarchy: Hierarchy, params: RankParams, keep: int) -> DataFrame:
    """The same pass, as a Spark frame of each table's first `keep` ranks (`table`, `cohort`, `member_id`,
    `subclass_brand_id`, `score` (the prediction in `member_affinities`), `rank`): what a backtest scores."""
    from pyspark.sql.pandas.types import from_arrow_schema

    def ranked(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for name, table in rank_batches(batches, models, hierarchy, params):
            table = table.filter(pc.less_equal(table.column("rank"), keep))
            score = table.column("prediction" if name == "member_affinities" else "score")
            yield pa.RecordBatch.from_arrays(
                [
                    pa.repeat(pa.scalar(name, pa.string()), table.num_rows),
                    table.column("cohort").combine_chunks(),
                    table.column("member_id").combine_chunks(),
                    table.column("subclass_brand_id").combine_chunks(),
                    score.combine_chunks(),
                    table.column("rank").combine_chunks(),
                ],
                schema=RANKINGS_SCHEMA,
            )

    return inputs.mapInArrow(ranked, from_arrow_schema(RANKINGS_SCHEMA))
