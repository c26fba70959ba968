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

from collections.abc import Collection, Iterator
from dataclasses import dataclass, replace
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from reco_assets.constants import BROWSE_EVENTS
from reco_assets.pipeline.catalog import SUBCLASS_PATH, day_bounds, level_key
from reco_assets.pipeline.methods import (
    DIVERSIFIED,
    FEATURES,
    MODEL,
    BlockSignals,
    Method,
    Popularity,
    feature,
    method_scores,
)

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
    purchase_points: float = 40.0  # a purchase's points in a rating (the blend's repeat propensity)
    keep: int | None = None  # ranks of each table emitted (None: all); a backtest scores the first few only


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
    popularity: Popularity | None = None  # needed by the blend and the baselines


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


def _top_set(values: np.ndarray, count: int) -> np.ndarray:
    """Per row, which columns hold the `count` largest values, ties at the cut going to the smaller column (the
    first `count` of a stable argsort of -values, as a set): a partial selection, linear in the columns."""
    # the count-th smallest of -values: selecting from the top end instead is several times slower when a block
    # of -inf (the groups outside the top K) ends right below the cut
    threshold = -np.partition(-values, count - 1, axis=1)[:, count - 1 : count]  # each row's count-th largest
    above, tied = values > threshold, values == threshold
    need = count - above.sum(axis=1)
    crowded = np.flatnonzero(tied.sum(axis=1) > need)  # more ties at the cut than places: the smaller columns
    if len(crowded):
        tied[crowded] &= np.cumsum(tied[crowded], axis=1) <= need[crowded, None]
    return above | tied


def _best(values: np.ndarray, count: int) -> np.ndarray:
    """Per row, the columns of the `count` largest values, best first, ties by column: the first `count` of a
    stable argsort of -values, by a partial selection and a sort of the chosen only. Columns are groups in id
    order, so ties go to the smaller id, at the cut too."""
    n, m = values.shape
    if count >= m:
        return np.argsort(-values, axis=1, kind="stable")
    if count <= 0:
        return np.empty((n, 0), dtype=np.int64)
    columns = np.nonzero(_top_set(values, count))[1].reshape(n, count)  # in column order, as the stable sort
    return _take(columns, np.argsort(-_take(values, columns), axis=1, kind="stable"))


def _empty() -> dict[str, pa.Table]:
    return {name: schema.empty_table() for name, schema in OUTPUTS.items()}


def _class_limited(ranked: np.ndarray, items: CohortItems, hierarchy: Hierarchy, limit: int | None) -> np.ndarray:
    """Which cells of `ranked` (column indices, best first) the limit of `limit` groups per class keeps."""
    if limit is None or not len(hierarchy.classes):
        return np.ones(ranked.shape, dtype=bool)
    klass = items.klass[ranked]
    # groups without a class (imported logs without categories) are not limited
    return (_occurrence(klass) < limit) | (hierarchy.classes == "")[klass]


def _thinned(
    values: np.ndarray,
    ranked: np.ndarray,
    kept: np.ndarray,
    keep: int,
    items: CohortItems,
    hierarchy: Hierarchy,
    limit: int | None,
) -> np.ndarray:
    """The rows whose first `ranked` columns keep fewer than `keep` groups while a candidate beyond them
    could still be kept: one of a class that has not reached its limit in them (or without a class)."""
    n = len(values)
    lacking = kept.sum(axis=1) < keep
    if limit is None or not lacking.any():
        return np.flatnonzero(lacking)
    classes = max(len(hierarchy.classes), 1)
    cells = (np.arange(n)[:, None] * classes + items.klass[ranked]).ravel()
    full = np.bincount(cells, minlength=n * classes).reshape(n, classes) >= limit
    if len(hierarchy.classes):
        full[:, hierarchy.classes == ""] = False
    beyond = np.isfinite(values)
    np.put_along_axis(beyond, ranked, False, axis=1)
    open_ = beyond & ~full[:, items.klass]
    return np.flatnonzero(lacking & open_.any(axis=1))


def _diversified(
    member: np.ndarray,
    values: np.ndarray,
    k: int,
    items: CohortItems,
    hierarchy: Hierarchy,
    limit: int | None,
    keep: int | None = None,
) -> pa.Table:
    """Rows of a ranking: the best `k` columns of `values` (n x m, -inf where not a candidate) in order, at
    most `limit` groups per class when a limit is given, ranked 1.. again; the first `keep` ranks only when
    given. Only as deep a list as the first `keep` ranks need is sorted: four times `keep` first, then four
    times deeper again (up to the whole `k`) for the members whose first ranks the class limit thins below
    `keep`, until none is."""
    depth = k if keep is None else min(k, 4 * keep)
    rows, deep = np.arange(len(member)), values
    parts = []
    while True:
        ranked = _best(deep, depth)
        kept = _class_limited(ranked, items, hierarchy, limit)
        short = np.empty(0, dtype=np.int64)
        if depth < k:
            short = _thinned(deep, ranked, kept, keep, items, hierarchy, limit)
        done = np.setdiff1d(np.arange(len(rows)), short, assume_unique=True)
        parts.append((rows[done], ranked[done], kept[done]))
        if not len(short):
            break
        rows, deep, depth = rows[short], deep[short], min(k, 4 * depth)  # the short rows, sorted deeper
    columns = []
    for rows, chosen, mask in parts:
        rank = np.cumsum(mask, axis=1, dtype=np.int32)
        if keep is not None:
            mask = mask & (rank <= keep)
        at = np.nonzero(mask)
        columns.append((rows[at[0]], chosen[at], rank[at]))
    row = np.concatenate([c[0] for c in columns])
    order = np.argsort(row, kind="stable")  # member by member, rank by rank, as the input's rows
    row, column, rank = (np.concatenate([c[i] for c in columns])[order] for i in range(3))
    klass = items.klass[column]
    classes = pa.DictionaryArray.from_arrays(pa.array(klass, pa.int32()), pa.array(hierarchy.classes))
    return pa.table(
        [member[row], items.ids[column], classes.cast(pa.string()), values[row, column].astype(np.float64), rank],
        schema=DIVERSIFIED_SCHEMA,
    )


def rank_block(
    member_ids: np.ndarray,
    member_factors: np.ndarray,
    rated: tuple[np.ndarray, ...],
    intents: tuple[np.ndarray, np.ndarray],
    items: CohortItems,
    hierarchy: Hierarchy,
    params: RankParams,
    methods: tuple[Method, ...] = (MODEL,),
    relevant: tuple[np.ndarray, np.ndarray] | None = None,
    tables: Collection[str] | None = None,
) -> dict[str, pa.Table]:
    """The affinity tables of a block of members of one cohort.

    `rated` = (row in the block, group id, rating[, days since the last event on it]) of the members'
    ratings; `intents` = (row, subclass code) of their intent subclasses (already the top N browsed-not-bought
    ones). `member_affinities` and `boosted_affinities` are the model's; `diversified_affinities` is the
    ranking of `methods[0]`, and every other method's ranking comes under its name. With `relevant` = (row,
    group id) of what the members did next, `blend_samples` holds the blend's features of a sample of pairs
    (`sample_pairs`). With `tables`, `member_affinities` and `boosted_affinities` are built only when named
    there (a backtest reads the rankings of the methods).

    Every list is sorted only as deep as it is emitted (`keep`): the top K is a set (its spread and its
    membership come from a partial selection), so a member's cost is linear in the groups, not K log K. A
    method that ranks every member alike (the popularity baselines) is ranked once for the block.
    """
    n, m = len(member_ids), len(items.ids)
    k = min(params.top_k, m)
    if n == 0 or k == 0:
        return _empty()
    emit = k if params.keep is None else min(k, params.keep)
    scores = member_factors.astype(np.float32) @ items.factors.T
    prediction = scores.astype(np.float64)
    if k < m:  # the top K: everything above the K-th prediction, and the smaller ids of those tied with it
        top_k = _top_set(scores, k)
        lowest = np.where(top_k, prediction, np.inf).min(axis=1)
    else:
        top_k, lowest = np.ones((n, m), dtype=bool), prediction.min(axis=1)

    own, age = np.zeros((n, m)), np.full((n, m), np.inf)
    rows, groups, values = rated[:3]
    at = np.searchsorted(items.ids, groups)
    known = at < m
    known[known] = items.ids[at[known]] == groups[known]
    own[rows[known], at[known]] = values[known]
    if len(rated) > 3:
        age[rows[known], at[known]] = np.nan_to_num(rated[3][known], nan=np.inf)

    wanted = np.zeros((n, len(hierarchy.subclasses)), dtype=bool)
    wanted[intents[0], intents[1]] = True
    in_intent = wanted[:, items.subclass]
    spread = prediction.max(axis=1) - lowest
    boost = np.where(in_intent & top_k, params.boost_strength * spread[:, None], 0.0)
    score = np.where(top_k, prediction + boost, -np.inf)

    member = member_ids.astype(np.int64)
    emitted = np.repeat(member, emit)
    rank = np.tile(np.arange(1, emit + 1, dtype=np.int32), n)
    out = {}
    if tables is None or "member_affinities" in tables:
        top = _best(scores, emit)
        out["member_affinities"] = pa.table(
            [emitted, items.ids[top].ravel(), _take(own, top).ravel(), _take(prediction, top).ravel(), rank],
            schema=AFFINITIES_SCHEMA,
        )
    if tables is None or "boosted_affinities" in tables:
        shown = _best(score, emit)
        out["boosted_affinities"] = pa.table(
            [
                emitted,
                items.ids[shown].ravel(),
                _take(own, shown).ravel(),
                _take(prediction, shown).ravel(),
                _take(boost, shown).ravel(),
                _take(score, shown).ravel(),
                rank,
            ],
            schema=BOOSTED_SCHEMA,
        )
    rated_cells = (rows[known], at[known])
    signals = BlockSignals(scores, own, age, in_intent, items.popularity, params.purchase_points, rated_cells)
    for position, method in enumerate(methods):
        if method.name in ("model", "no_boost"):
            # the model's list is the top K in boosted order; `no_boost` the same in prediction order
            chosen = score if method.name == "model" else np.where(top_k, prediction, -np.inf)
            limit = params.max_groups_per_class
        else:
            chosen = method_scores(method, signals)
            if method.name == "blend":  # positive, in the same order: the brand and category cards sum scores
                chosen = np.exp(chosen - chosen.max(axis=1, keepdims=True))
            chosen = np.asarray(chosen, np.float64)
            limit = params.max_groups_per_class if method.name in DIVERSIFIED else None
        if len(chosen) == 1:  # one list for every member of the block
            table = _for_each(member, _diversified(member[:1], chosen, k, items, hierarchy, limit, params.keep))
        else:
            table = _diversified(member, chosen, k, items, hierarchy, limit, params.keep)
        out["diversified_affinities" if position == 0 else method.name] = table
    if relevant is not None:
        out["blend_samples"] = sample_pairs(member_ids, signals, relevant, items.ids)
    return out


def _for_each(member: np.ndarray, ranking: pa.Table) -> pa.Table:
    """One member's ranking repeated for every member of `member`, member by member."""
    rows = ranking.take(np.tile(np.arange(ranking.num_rows), len(member)))
    return rows.set_column(0, "member_id", pa.array(np.repeat(member, ranking.num_rows)))


SAMPLED_NEGATIVES = 100


def _pair_hash(member_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """A fixed pseudo-random 64-bit number per (member, group) (splitmix64's finaliser): the same whatever
    block or task the member is ranked in, so the samples do not depend on how Spark splits the input."""
    with np.errstate(over="ignore"):
        x = member_ids.astype(np.uint64)[:, None] * np.uint64(0x9E3779B97F4A7C15) + ids.astype(np.uint64)[None, :]
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x


def sample_pairs(
    member_ids: np.ndarray, signals: BlockSignals, relevant: tuple[np.ndarray, np.ndarray], ids: np.ndarray
) -> pa.Table:
    """The blend's training rows of a block: for each member with a relevant group, every relevant group
    (`label` true) and about `SAMPLED_NEGATIVES` other groups drawn uniformly (by a hash of the pair), with
    their `FEATURES`. Uniform negatives keep the fitted weights those of all pairs (only the intercept
    moves, and the blend has none); negatives chosen by a feature would bias its weight down."""
    n, m = signals.prediction.shape
    positive = np.zeros((n, m), dtype=bool)
    rows, groups = relevant
    at = np.minimum(np.searchsorted(ids, groups), m - 1)
    known = ids[at] == groups
    positive[rows[known], at[known]] = True
    labelled = np.flatnonzero(positive.any(axis=1))  # members without a relevant group give no rows
    keep = positive.copy()
    keep[labelled] |= _pair_hash(member_ids[labelled], ids) % np.uint64(m) < np.uint64(SAMPLED_NEGATIVES)
    r, c = np.nonzero(keep)
    columns = {"member_id": member_ids.astype(np.int64)[r], "subclass_brand_id": ids[c], "label": positive[r, c]}
    for name in FEATURES:
        columns[name] = feature(name, signals, (r, c)).astype(np.float64)
    return pa.table(columns)


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


def ranking_inputs(factors: DataFrame, ratings: DataFrame, intents: DataFrame, as_of: date | None = None) -> DataFrame:
    """One row per member of every model: `cohort`, `member_id`, `factors`, `rated` (their ratings, with the
    days from their last event on the group to the end of `as_of` when given) and `intents` (their intent
    subclasses)."""
    fields = [F.col("subclass_brand_id"), F.col("rating").cast("double").alias("rating")]
    if as_of is not None:
        _, end = day_bounds(as_of)
        age = (F.lit(end.timestamp()) - F.col("last_event_time").cast("double")) / 86400.0
        fields.append(age.alias("age_days"))
    rated = ratings.groupBy("member_id").agg(F.collect_list(F.struct(*fields)).alias("rated"))
    return (
        factors.where(F.col("side") == "member")
        .select("cohort", F.col("id").alias("member_id"), "factors")
        .join(rated, "member_id", "left")
        .join(intents.select("member_id", "intents"), "member_id", "left")
    )


def recent_buyers(events: DataFrame, cohorts: DataFrame, kinds: list[str]) -> DataFrame:
    """Distinct members per (`cohort`, `subclass_brand_id`) who did one of `kinds` in the events given (the
    popularity of the baselines and of the blend): small, groups x cohorts."""
    return (
        events.where(F.col("event_type").isin(*kinds) & F.col("subclass_brand_id").isNotNull())
        .select("member_id", "subclass_brand_id")
        .distinct()
        .join(cohorts.select("member_id", "cohort"), "member_id")
        .groupBy("cohort", "subclass_brand_id")
        .agg(F.count("*").alias("members"))
    )


def _popularity(ids: np.ndarray, cohort: str, buyers: pa.Table, sizes: dict[str, int]) -> Popularity:
    """The counts of `recent_buyers` aligned with a model's ids (a model labelled with no cohort, such as an
    evaluation's ablation, counts everyone)."""
    frame = buyers.to_pandas()
    overall = frame.groupby("subclass_brand_id")["members"].sum()
    own = overall if cohort not in sizes else frame[frame["cohort"] == cohort].set_index("subclass_brand_id")["members"]
    total = sum(sizes.values())
    return Popularity(
        cohort_counts=own.reindex(ids, fill_value=0).to_numpy(dtype=np.float64),
        cohort_members=sizes.get(cohort, total),
        counts=overall.reindex(ids, fill_value=0).to_numpy(dtype=np.float64),
        members=total,
    )


def cohort_items(
    factors: DataFrame,
    candidates: list[int],
    groups: DataFrame,
    popularity: tuple[DataFrame, DataFrame] | None = None,
) -> tuple[dict, Hierarchy]:
    """The candidate groups of every cohort model, with hierarchy codes: small (groups x cohorts), shipped
    to the tasks. `popularity` = (`recent_buyers`, the members' `cohort`s), which the blend and the baselines
    need."""
    hierarchy = groups.select("subclass_brand_id", "subclass_key", "class_key").toArrow().sort_by("subclass_brand_id")
    group_ids = hierarchy.column("subclass_brand_id").to_numpy()
    # "" stands for a missing level: a group without hierarchy is never boosted nor limited per class
    levels = {}
    for level in ("subclass_key", "class_key"):
        names = hierarchy.column(level).fill_null("").to_numpy(zero_copy_only=False).astype(str)
        known = np.unique(np.append(names, ""))
        levels[level] = (known, np.searchsorted(known, names))
    subclasses, classes = levels["subclass_key"][0], levels["class_key"][0]
    # the candidates are picked in Arrow: a Spark filter on tens of thousands of literals takes seconds to plan
    rows = factors.where(F.col("side") == "item").select("cohort", "id", "factors").toArrow()
    rows = rows.filter(pc.is_in(rows.column("id"), pa.array(candidates, pa.int64())))
    rows = rows.sort_by([("cohort", "ascending"), ("id", "ascending")])
    if popularity is not None:
        buyers = popularity[0].toArrow()
        sizes = {r["cohort"]: r["count"] for r in popularity[1].groupBy("cohort").count().collect()}
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
            popularity=None if popularity is None else _popularity(ids, cohort, buyers, sizes),
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


def in_member_order(inputs: DataFrame) -> DataFrame:
    """The pass's inputs sorted by cohort and member within each Spark partition. A member's float32 scores
    come from a matrix product over their block, and BLAS may sum a row differently with its place in the
    block; the joins upstream hand over rows in any order, so without this a re-run could move a score by an
    ulp, and with it the blend's fitted weights and every blended score. A local sort: no shuffle."""
    return inputs.sortWithinPartitions("cohort", "member_id")


def rank_batches(
    batches: Iterator[pa.RecordBatch],
    models: dict,
    hierarchy: Hierarchy,
    params: RankParams,
    methods: dict[str, tuple[Method, ...]] | None = None,
    tables: Collection[str] | None = None,
) -> Iterator[tuple[str, pa.Table]]:
    """The pass in a task: batches of `ranking_inputs` in, (table name, rows with `cohort`) out.
    The inputs carry a cohort each; `models` (cohort -> `CohortItems`) and `hierarchy` come from
    `cohort_items`; `methods` (cohort -> methods, the model's by default) says how each cohort is ranked:
    `diversified_affinities`, which gets a `method` column, holds the first one's ranking. Inputs with a
    `relevant` column (group ids) also yield `blend_samples`. `tables`: as `rank_block`'s."""
    subclass_names = pa.array(hierarchy.subclasses.tolist(), pa.string())
    for batch in batches:
        for cohort in pc.unique(batch.column("cohort")).to_pylist():
            part = batch.filter(pc.equal(batch.column("cohort"), cohort))
            items = models.get(cohort)
            if items is None:
                continue  # a model without any candidate group: nothing to rank
            chosen = (methods or {}).get(cohort, (MODEL,))
            step = max(1, CELLS_PER_BLOCK // max(1, len(items.ids)))
            for start in range(0, part.num_rows, step):
                block = part.slice(start, step)
                rated_fields = ("subclass_brand_id", "rating")
                if "age_days" in [f.name for f in block.schema.field("rated").type.value_type]:
                    rated_fields += ("age_days",)
                rows, groups, *values = _coo(block.column("rated"), rated_fields)
                intent_rows, names = _coo(block.column("intents"), ())
                intent_codes = pc.fill_null(pc.index_in(names, value_set=subclass_names), -1).to_numpy()
                ok = intent_codes >= 0
                relevant = None
                if "relevant" in block.schema.names:
                    relevant_rows, relevant_ids = _coo(block.column("relevant"), ())
                    relevant = (relevant_rows, relevant_ids.to_numpy(zero_copy_only=False).astype(np.int64))
                tables = rank_block(
                    block.column("member_id").to_numpy(),
                    _matrix(block.column("factors")),
                    (rows, groups.astype(np.int64), *(v.astype(np.float64) for v in values)),
                    (intent_rows[ok], intent_codes[ok]),
                    items,
                    hierarchy,
                    params,
                    chosen,
                    relevant,
                    tables,
                )
                for name, table in tables.items():
                    if name == "diversified_affinities":
                        table = table.append_column("method", pa.repeat(pa.scalar(chosen[0].name), table.num_rows))
                    yield name, table.append_column("cohort", pa.repeat(pa.scalar(cohort, pa.string()), table.num_rows))


RANKINGS_SCHEMA = pa.schema(
    [
        ("table", pa.string()),
        ("cohort", pa.string()),
        ("member_id", pa.int64()),
        ("subclass_brand_id", pa.int64()),
        ("score", pa.float64()),
        ("rank", pa.int32()),
        ("label", pa.bool_()),  # blend_samples rows only
        ("features", pa.list_(pa.float64())),  # blend_samples rows only: `FEATURES`, in order
    ]
)


def _ranking_rows(name: str, table: pa.Table, keep: int) -> pa.RecordBatch:
    """A table of the pass as `RANKINGS_SCHEMA` rows: its first `keep` ranks, or every blend sample."""
    if name == "blend_samples":
        n = table.num_rows
        values = np.column_stack([table.column(f).to_numpy() for f in FEATURES]).ravel() if n else np.empty(0)
        offsets = pa.array(np.arange(0, n * len(FEATURES) + 1, len(FEATURES), dtype=np.int32))
        score, rank = pa.nulls(n, pa.float64()), pa.nulls(n, pa.int32())
        label, features = table.column("label").combine_chunks(), pa.ListArray.from_arrays(offsets, values)
    else:
        table = table.filter(pc.less_equal(table.column("rank"), keep))
        n = table.num_rows
        score = table.column("prediction" if name == "member_affinities" else "score").combine_chunks()
        rank = table.column("rank").combine_chunks()
        label, features = pa.nulls(n, pa.bool_()), pa.nulls(n, pa.list_(pa.float64()))
    return pa.RecordBatch.from_arrays(
        [
            pa.repeat(pa.scalar(name, pa.string()), n),
            table.column("cohort").combine_chunks(),
            table.column("member_id").combine_chunks(),
            table.column("subclass_brand_id").combine_chunks(),
            score,
            rank,
            label,
            features,
        ],
        schema=RANKINGS_SCHEMA,
    )


def top_rankings(
    inputs: DataFrame,
    models: dict,
    hierarchy: Hierarchy,
    params: RankParams,
    keep: int,
    methods: dict[str, tuple[Method, ...]] | None = None,
    tables: list[str] | None = None,
) -> DataFrame:
    """The same pass, as a Spark frame of the first `keep` ranks of each table (of `tables`, default all):
    `table`, `cohort`, `member_id`, `subclass_brand_id`, `score` (the prediction in `member_affinities`),
    `rank`; what a backtest scores.
    The rankings of `methods` after the first come as tables named after them. Inputs with a `relevant`
    column also give the blend's training rows, in the same pass, as table `blend_samples` (`label` and
    `features` set, `score` and `rank` null)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    first = replace(params, keep=keep)  # the tables are built with their first ranks only

    def ranked(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for name, table in rank_batches(batches, models, hierarchy, first, methods, tables):
            if tables is None or name in tables or name == "blend_samples":
                yield _ranking_rows(name, table, keep)

    return in_member_order(inputs).mapInArrow(ranked, from_arrow_schema(RANKINGS_SCHEMA))
