"""Member cards: diversified affinities joined to the style listings, as product, brand and category feeds.

- products: the member's styles, group by group in affinity order and style rank inside a group; `full`
  holds at most `product_feed_max`, `card` the first `product_card_size`; affinity: the summed score of the
  member's subclass-brands with listed styles.
- brands / categories (= class): groups ranked by the summed score of the member's subclass-brands in them
  (ties by key); groups without a key (no brand or class) or with fewer than `group_min_styles` listed styles
  are dropped; the top `group_cards` groups, each as a `card` (first `group_card_size` styles) and a `full`
  list (first `group_full_size`), titled from the brand or class name (Spark's `initcap`).
A list holds each style once, where it first comes.

How: the listings are small (groups x ~15 styles), so they are collected once on the driver as one row per
listed group (`listed_groups`: its ordered styles, brand, class key and card titles, computed by Spark) and
shipped to the tasks. The members' rows meet them in a broadcast join (no shuffle) and narrow down to
(cohort, member, score, rank, listed group). A member's rows may come from several input splits (Spark may
split a file of `diversified_affinities`), so these narrow rows go through one hash exchange by member, the
only one, and a sort within each partition (local) makes each member's rows contiguous. `mapInArrow` then
builds the cards of a block of whole members at a time with numpy, as the ranking pass ranks them: no Spark
window, aggregate or explode of member x group or member x style rows, and only the chosen groups' styles
are ever listed. A member's feeds are per (cohort, member), as a member has one cohort on a day; a score sum
is taken in the member's group order.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from reco_assets.pipeline.catalog import CLASS_PATH, level_key

CARD_COLUMNS = [
    "cohort",
    "member_id",
    "feed",
    "variant",
    "position",
    "group_key",
    "group_name",
    "affinity",
    "style_ids",
]
CARDS_SCHEMA = pa.schema(
    [
        ("cohort", pa.string()),
        ("member_id", pa.int64()),
        ("feed", pa.string()),
        ("variant", pa.string()),
        ("position", pa.int32()),
        ("group_key", pa.string()),
        ("group_name", pa.string()),
        ("affinity", pa.float64()),
        ("style_ids", pa.list_(pa.int64())),
    ]
)
FEEDS = ("products", "brands", "categories")
GROUPED = {"brands": ("brand", "brand_title"), "categories": ("class_key", "class_title")}
"""A grouped feed's key and title columns in `listed_groups`."""
LISTED_COLUMNS = ["entry", "subclass_brand_id", "brand", "class", "class_key", "styles", "brand_title", "class_title"]
ROWS_PER_BLOCK = 200_000
"""Member x group rows built at once: bounds a task's memory (a few arrays of this size times ~15 styles)."""


@dataclass(frozen=True)
class CardLimits:
    product_feed_max: int
    product_card_size: int
    group_cards: int
    group_card_size: int
    group_full_size: int
    group_min_styles: int


# --- the listed groups, on the driver --------------------------------------------------------------------


def listed_groups(listings: DataFrame) -> pa.Table:
    """One row per listed group (subclass-brand, brand, class): its distinct styles by rank (then id), the
    key of its class, and its brand and category card titles. `entry` numbers the rows in the order of their
    style lists (Spark's array order), the order in which a member's groups of equal rank are joined."""
    styles = F.array_distinct(
        F.transform(F.array_sort(F.collect_list(F.struct("rank", "style_id"))), lambda x: x["style_id"])
    )
    table = (
        listings.groupBy("subclass_brand_id", "brand", "class", level_key(CLASS_PATH).alias("class_key"))
        .agg(styles.alias("styles"))
        .select(
            "*",
            F.format_string("%s you might like", F.initcap("brand")).alias("brand_title"),
            F.format_string("%s for you", F.initcap("class")).alias("class_title"),
        )
        .orderBy("styles", "subclass_brand_id", "brand", "class")
        .toArrow()
    )
    entry = pa.array(np.arange(table.num_rows, dtype=np.int32))
    return table.add_column(0, "entry", entry).select(LISTED_COLUMNS)


def _joined(affinities: DataFrame, listed: pa.Table) -> DataFrame:
    groups = affinities.sparkSession.createDataFrame(listed)
    return affinities.select(
        "cohort", "member_id", "subclass_brand_id", "score", F.col("rank").alias("group_rank")
    ).join(F.broadcast(groups), "subclass_brand_id")


@dataclass(frozen=True)
class Keys:
    """A grouped feed's keys: code per listed group (-1: none), and per code the key and the card title."""

    code: np.ndarray
    keys: pa.Array
    titles: pa.Array


@dataclass(frozen=True)
class Listed:
    """`listed_groups` as arrays, indexed by `entry`: what the tasks get."""

    offsets: np.ndarray  # entry -> its styles are styles[offsets[entry]:offsets[entry + 1]]
    styles: np.ndarray
    disjoint: bool  # no style in two groups (as the catalog has each style once): no list needs a dedup
    keys: dict[str, Keys]


def _keys(table: pa.Table, key: str, title: str) -> Keys:
    values = table.column(key).to_numpy(zero_copy_only=False)
    present = table.column(key).is_valid().to_numpy(zero_copy_only=False)
    names = np.unique(values[present].astype(str))  # code point order: Spark's order of strings
    code = np.full(len(values), -1, dtype=np.int64)
    code[present] = np.searchsorted(names, values[present].astype(str))
    _, first = np.unique(code[present], return_index=True)  # a key's title: its first group's (all are equal)
    titles = table.column(title).combine_chunks().take(pa.array(np.flatnonzero(present)[first]))
    return Keys(code, pa.array(names.tolist(), pa.string()), titles)


def _listed(table: pa.Table) -> Listed:
    table = table.sort_by("entry")
    lengths = pc.list_value_length(table.column("styles")).to_numpy()
    styles = pc.list_flatten(table.column("styles")).to_numpy().astype(np.int64)
    return Listed(
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        styles=styles,
        disjoint=len(np.unique(styles)) == len(styles),
        keys={feed: _keys(table, key, title) for feed, (key, title) in GROUPED.items()},
    )


# --- a block of members, in a task -----------------------------------------------------------------------


def _starts(*columns: np.ndarray) -> np.ndarray:
    """Where each run of equal consecutive values (of all `columns` together) starts."""
    change = np.zeros(len(columns[0]), dtype=bool)
    change[:1] = True
    for column in columns:
        change[1:] |= column[1:] != column[:-1]
    return np.flatnonzero(change)


def _run_of(starts: np.ndarray, n: int) -> np.ndarray:
    return np.repeat(np.arange(len(starts)), np.diff(np.append(starts, n)))


def _within(lengths: np.ndarray) -> np.ndarray:
    """0, 1, ... inside each of consecutive segments of these `lengths`."""
    return np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)


def _styles(starts: np.ndarray, entry: np.ndarray, listed: Listed, limit: int):
    """The distinct styles of each run of rows (their groups' styles in row order, each style where it first
    comes): (the first `limit` of each run flat, their count per run, the count of all per run)."""
    run = _run_of(starts, len(entry))
    length = np.diff(listed.offsets)[entry]
    take = length
    if listed.disjoint:  # the styles of a run past its first `limit` are not needed
        ahead = np.cumsum(length) - length
        take = np.clip(limit - (ahead - ahead[starts][run]), 0, length)
    cell_row = np.repeat(np.arange(len(entry)), take)
    values = listed.styles[listed.offsets[entry][cell_row] + _within(take)]
    if listed.disjoint:
        return values, np.add.reduceat(take, starts), np.add.reduceat(length, starts)
    cell_run = run[cell_row]
    order = np.lexsort((values, cell_run))  # stable: a style's first cell in its run comes first
    first = np.ones(len(values), dtype=bool)
    first[order[1:]] = (values[order[1:]] != values[order[:-1]]) | (cell_run[order[1:]] != cell_run[order[:-1]])
    values, cell_run = values[first], cell_run[first]
    total = np.bincount(cell_run, minlength=len(starts))
    kept = np.arange(len(values)) - (np.cumsum(total) - total)[cell_run] < limit
    return values[kept], np.minimum(total, limit), total


def _distinct_counts(starts: np.ndarray, entry: np.ndarray, listed: Listed) -> np.ndarray:
    """The number of distinct styles of each run of rows."""
    if listed.disjoint:
        return np.add.reduceat(np.diff(listed.offsets)[entry], starts)
    return _styles(starts, entry, listed, 0)[2]


def _runs_rows(starts: np.ndarray, n: int, chosen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the rows of the `chosen` runs, run after run in that order; where each run starts among them)."""
    lengths = np.diff(np.append(starts, n))[chosen]
    return np.repeat(starts[chosen], lengths) + _within(lengths), np.cumsum(lengths) - lengths


def _variants(
    columns: dict, values: np.ndarray, lengths: np.ndarray, sizes: dict[str, int]
) -> Iterator[pa.RecordBatch]:
    """The rows of one feed, once per variant with its lists cut to the variant's size."""
    n = len(lengths)
    at = _within(lengths)
    for variant, size in sizes.items():
        cut = np.minimum(lengths, size)
        offsets = np.concatenate([[0], np.cumsum(cut)]).astype(np.int32)
        lists = pa.ListArray.from_arrays(pa.array(offsets), pa.array(values[at < size], pa.int64()))
        yield pa.RecordBatch.from_arrays(
            [
                columns["cohort"],
                pa.array(columns["member_id"], pa.int64()),
                pa.repeat(pa.scalar(columns["feed"], pa.string()), n),
                pa.repeat(pa.scalar(variant, pa.string()), n),
                pa.array(columns["position"], pa.int32()),
                columns["group_key"],
                columns["group_name"],
                pa.array(columns["affinity"], pa.float64()),
                lists,
            ],
            schema=CARDS_SCHEMA,
        )


def _positions(runs: np.ndarray) -> np.ndarray:
    """1, 2, ... inside each run of equal consecutive values."""
    starts = _starts(runs)
    return np.arange(len(runs)) - starts[_run_of(starts, len(runs))] + 1


def _grouped(unit_member, unit_cohort, rows, keys: Keys, feed: str, listed: Listed, limits: CardLimits):
    """A brand or category feed of a block: `rows` = (member index, score, entry) in the members' group
    order. The groups are ranked first; only the chosen ones get their styles listed."""
    unit, score, entry = rows
    code = keys.code[entry]
    has = code >= 0
    if not has.any():
        return
    order = np.lexsort((code[has], unit[has]))  # stable: the group order stays inside a (member, key)
    unit, score, entry, code = unit[has][order], score[has][order], entry[has][order], code[has][order]
    starts = _starts(unit, code)
    affinity = np.add.reduceat(score, starts)
    group_unit, group_code = unit[starts], code[starts]
    ranked = np.lexsort((group_code, -affinity, group_unit))
    ranked = ranked[_distinct_counts(starts, entry, listed)[ranked] >= limits.group_min_styles]
    position = _positions(group_unit[ranked])
    chosen, position = ranked[position <= limits.group_cards], position[position <= limits.group_cards]
    picked, picked_starts = _runs_rows(starts, len(entry), chosen)
    size = max(limits.group_card_size, limits.group_full_size)
    values, lengths, _ = _styles(picked_starts, entry[picked], listed, size)
    codes = pa.array(group_code[chosen])
    columns = {
        "cohort": unit_cohort.take(pa.array(group_unit[chosen])),
        "member_id": unit_member[group_unit[chosen]],
        "feed": feed,
        "position": position,
        "group_key": keys.keys.take(codes),
        "group_name": keys.titles.take(codes),
        "affinity": affinity[chosen],
    }
    yield from _variants(columns, values, lengths, {"card": limits.group_card_size, "full": limits.group_full_size})


def card_block(block: pa.Table, listed: Listed, limits: CardLimits, feeds: tuple[str, ...]) -> Iterator[pa.RecordBatch]:
    """The cards of a block of whole members: rows (`cohort`, `member_id`, `score`, `group_rank`, `entry`)."""
    cohorts = block.column("cohort").combine_chunks().dictionary_encode()
    cohort_code = cohorts.indices.to_numpy(zero_copy_only=False)
    member = block.column("member_id").to_numpy()
    group_rank = block.column("group_rank").to_numpy()
    entry = block.column("entry").to_numpy().astype(np.int64)
    order = np.lexsort((entry, group_rank, member, cohort_code))
    cohort_code, member, entry = cohort_code[order], member[order], entry[order]
    score = block.column("score").to_numpy()[order]
    starts = _starts(cohort_code, member)
    unit = _run_of(starts, len(member))
    unit_member, unit_cohort = member[starts], cohorts.dictionary.take(pa.array(cohort_code[starts]))
    for feed in feeds:
        if feed == "products":
            limit = max(limits.product_card_size, limits.product_feed_max)
            values, lengths, _ = _styles(starts, entry, listed, limit)
            columns = {
                "cohort": unit_cohort,
                "member_id": unit_member,
                "feed": feed,
                "position": np.ones(len(starts), dtype=np.int32),
                "group_key": pa.repeat(pa.scalar("all", pa.string()), len(starts)),
                "group_name": pa.repeat(pa.scalar("Picked for you", pa.string()), len(starts)),
                "affinity": np.add.reduceat(score, starts),
            }
            sizes = {"card": limits.product_card_size, "full": limits.product_feed_max}
            yield from _variants(columns, values, lengths, sizes)
        else:
            yield from _grouped(unit_member, unit_cohort, (unit, score, entry), listed.keys[feed], feed, listed, limits)


def card_batches(
    batches: Iterator[pa.RecordBatch], listed: Listed, limits: CardLimits, feeds: tuple[str, ...]
) -> Iterator[pa.RecordBatch]:
    """The pass in a task: batches of member x group rows in, sorted by member, cards out; rows are held
    until a block of `ROWS_PER_BLOCK` is complete, the last member's rows carried to the next block."""
    held: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        held.append(batch)
        count += batch.num_rows
        if count < ROWS_PER_BLOCK:
            continue
        table = pa.Table.from_batches(held)
        last = table.slice(count - 1)
        same = pc.and_(
            pc.equal(table.column("cohort"), last.column("cohort")[0]),
            pc.equal(table.column("member_id"), last.column("member_id")[0]),
        )
        cut = count - pc.sum(same).as_py()
        if cut == 0:
            continue
        yield from card_block(table.slice(0, cut), listed, limits, feeds)
        held, count = table.slice(cut).to_batches(), count - cut
    if count:
        yield from card_block(pa.Table.from_batches(held), listed, limits, feeds)


def _cards(groups: DataFrame, listed: pa.Table, limits: CardLimits, feeds: tuple[str, ...]) -> DataFrame:
    """The `feeds` of the members of `groups` (`member_groups` rows), built per block of members."""
    from pyspark.sql.pandas.types import from_arrow_schema

    shipped = _listed(listed)
    rows = (
        groups.select("cohort", "member_id", "score", "group_rank", "entry")
        .repartition("cohort", "member_id")
        .sortWithinPartitions("cohort", "member_id")
    )
    return rows.mapInArrow(
        lambda batches: card_batches(batches, shipped, limits, feeds), from_arrow_schema(CARDS_SCHEMA)
    )


# --- the public frames -------------------------------------------------------------------------------------


def member_groups(affinities: DataFrame, listings: DataFrame) -> DataFrame:
    """Per member x subclass-brand with listed styles: cohort, score, group rank, and its `listed_groups` row
    (brand, class name and key, ordered styles, `entry`). A broadcast join of the small listed groups."""
    return _joined(affinities, listed_groups(listings))


def product_feed(groups: DataFrame, limits: CardLimits) -> DataFrame:
    """The product feed (both variants) of the members of `groups` (`member_groups` rows). The listed groups
    are read back from `groups` (a small aggregate: a row per listed group and task)."""
    listed = groups.select(*LISTED_COLUMNS).dropDuplicates(["entry"]).toArrow()
    return _cards(groups, listed, limits, ("products",))


def member_cards(affinities: DataFrame, listings: DataFrame, limits: CardLimits) -> DataFrame:
    """All three feeds, one row per member x feed x variant x group."""
    listed = listed_groups(listings)
    return _cards(_joined(affinities, listed), listed, limits, FEEDS)


def with_source_ids(cards: DataFrame, id_map: DataFrame) -> DataFrame:
    """Cards of imported data with the source's ids beside the lakehouse's: `member_source_id` and
    `style_source_ids` (same order as `style_ids`), from the `id_map` table of the import."""
    members = id_map.where(F.col("namespace") == "member").select(
        F.col("id").alias("member_id"), F.col("source_id").alias("member_source_id")
    )
    styles = id_map.where(F.col("namespace") == "style").select(
        F.col("id").alias("_style"), F.col("source_id").alias("_source")
    )
    keys = ["member_id", "feed", "variant", "position", "group_key"]
    sources = (
        cards.select(*keys, F.posexplode("style_ids").alias("_at", "_style"))
        .join(F.broadcast(styles), "_style", "left")
        .groupBy(*keys)
        .agg(F.array_sort(F.collect_list(F.struct("_at", "_source"))).alias("_pairs"))
        .select(*keys, F.transform("_pairs", lambda x: x["_source"]).alias("style_source_ids"))
    )
    return cards.join(F.broadcast(members), "member_id", "left").join(sources, keys, "left")
