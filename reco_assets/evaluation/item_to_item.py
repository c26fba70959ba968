"""The item-to-item tables set against baselines at rolling origins, as rows of `offline_evaluation`.

An origin o is a training day: every list is built from the events up to and including o (the stages the
assets run for o, or a baseline over a window ending on o) and scored against day o + 1 alone.

- **Similar items** (level `similar_items`), next-item prediction. The targets are, on o + 1, each member's
  consecutive product events (`PRODUCT_EVENTS`, in `event_time` order, ties by `event_id`; other kinds are
  skipped) on two styles of different groups: the list of the first one's group should hold the second's.
  Methods, each a ranked list of other groups per source group: `model`, the similar groups as served (the
  neighbours of `stages.neighbors` completed by the origin's factor models, `style_lists.blended_neighbors`);
  `session_neighbors`, the neighbours alone (what the factor models add); `popularity`, the groups most
  carted or bought (add-to-cart and purchase events counted) over the `evaluation.popularity_window_days` up
  to o, the source group left out; `co_occurrence`, the groups sharing the most sessions with the source
  group over that window (sessions of more than `CO_OCCURRENCE_MAX_SESSION_GROUPS` groups dropped), ties by
  the smaller id.
- **Bought together** (level `bought_together`), basket completion. The holdout baskets are the purchase
  baskets of o + 1 (`rules.purchase_baskets`: a session's distinct groups in the order first bought, a tie
  in time by the group id) holding two groups or more: the last group bought is held out, the others are the
  cart. Methods: `model`, the rules of o (`stages.rules`) merged as the API merges them for a cart
  (`serving/baskets.py`, here in Spark: `complementary_groups`); `co_purchase_popularity`, the groups in the
  most baskets of the rules' window up to o, the cart's left out.

Each target scores hit rate and MRR at `K` (a target without a list scores 0). A figure averages the targets
of every origin, with a 95 % bootstrap interval over members: a member's targets at every origin are
resampled together, with the same resamples for every method (`report.member_weights`).
"""

from datetime import date, timedelta

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from reco_assets.evaluation.backtest import ABLATION
from reco_assets.evaluation.metrics import mean_intervals
from reco_assets.evaluation.report import member_weights
from reco_assets.pipeline import stages
from reco_assets.pipeline.group_similarity import model_similarity
from reco_assets.pipeline.neighbors import SESSION, co_occurrence, session_groups
from reco_assets.pipeline.rules import basket_popularity, purchase_baskets
from reco_assets.pipeline.style_lists import blended_neighbors
from reco_assets.resources.lakehouse import Lakehouse
from reco_assets.serving.baskets import PAIR_GROUPS
from reco_assets.settings import RecoSettings

K = 10
"""The depth scored: a page's or a cart's strip of ten."""
SIMILAR_ITEMS, BOUGHT_TOGETHER = "similar_items", "bought_together"
MODEL = "model"
SESSION_NEIGHBORS = "session_neighbors"
SIMILAR_METHODS = (MODEL, SESSION_NEIGHBORS, "popularity", "co_occurrence")
BASKET_METHODS = (MODEL, "co_purchase_popularity")
PRODUCT_EVENTS = ("product_view", "add_to_cart", "still_want_it", "purchase")
"""The events on a product page: a view, a cart (or its sold-out `still_want_it`), a purchase."""
POPULAR_EVENTS = ("add_to_cart", "purchase")
CO_OCCURRENCE_MAX_SESSION_GROUPS = 50
WHOLE_BASKET = 2**31 - 1
"""A holdout basket keeps every group it bought: the last one bought is held out whatever the basket's size."""
COLUMNS = ["level", "segment", "method", "metric", "k", "value", "ci_low", "ci_high", "members", "targets"]


# --- similar items -------------------------------------------------------------------------------------


def next_item_targets(events: DataFrame) -> DataFrame:
    """(member_id, source, target): every step of a member's product events (`PRODUCT_EVENTS` with a style and
    a group, in `event_time` order, ties by `event_id`) from a style of one group to a style of another."""
    product = events.where(
        F.col("event_type").isin(*PRODUCT_EVENTS)
        & F.col("style_id").isNotNull()
        & F.col("subclass_brand_id").isNotNull()
    )
    order = Window.partitionBy("member_id").orderBy("event_time", "event_id")
    steps = product.select(
        "member_id",
        F.lag("subclass_brand_id").over(order).alias("source"),
        F.col("subclass_brand_id").alias("target"),
    )
    return steps.where(F.col("source").isNotNull() & (F.col("source") != F.col("target")))


def popular_groups(events: DataFrame) -> DataFrame:
    """(subclass_brand_id, rank from 1): the groups carted or bought in `events`, by their count of add-to-cart
    and purchase events, ties by the smaller id."""
    counts = (
        events.where(F.col("event_type").isin(*POPULAR_EVENTS) & F.col("subclass_brand_id").isNotNull())
        .groupBy("subclass_brand_id")
        .agg(F.count("*").alias("events"))
    )
    order = Window.orderBy(F.col("events").desc(), "subclass_brand_id")  # one row per group: small
    return counts.select("subclass_brand_id", F.row_number().over(order).alias("rank"))


def popularity_lists(popular: DataFrame, sources: DataFrame) -> DataFrame:
    """(subclass_brand_id, neighbor_id, rank): for each group of `sources` (subclass_brand_id), the `K` most
    `popular` (`popular_groups`) other groups."""
    top = popular.where(F.col("rank") <= K + 1).select(
        F.col("subclass_brand_id").alias("neighbor_id"), F.col("rank").alias("popular_rank")
    )
    listed = sources.crossJoin(F.broadcast(top)).where(F.col("subclass_brand_id") != F.col("neighbor_id"))
    order = Window.partitionBy("subclass_brand_id").orderBy("popular_rank")
    return listed.withColumn("rank", F.row_number().over(order)).where(F.col("rank") <= K).drop("popular_rank")


def co_occurrence_lists(events: DataFrame) -> DataFrame:
    """(subclass_brand_id, neighbor_id, rank): each group's `K` groups in the most sessions with it (product
    events; sessions of more than `CO_OCCURRENCE_MAX_SESSION_GROUPS` groups dropped), ties by the smaller id."""
    sessions = session_groups(events, dict.fromkeys(PRODUCT_EVENTS, 1.0), CO_OCCURRENCE_MAX_SESSION_GROUPS)
    order = Window.partitionBy("subclass_brand_id").orderBy(F.col("co_sessions").desc(), "neighbor_id")
    return (
        co_occurrence(sessions)
        .withColumn("rank", F.row_number().over(order))
        .where(F.col("rank") <= K)
        .select("subclass_brand_id", "neighbor_id", "rank")
    )


def similar_lists(
    reader: stages.Reader,
    origin: date,
    settings: RecoSettings,
    sources: DataFrame,
    factor_similar: DataFrame | None = None,
) -> dict[str, DataFrame]:
    """Method -> (subclass_brand_id, neighbor_id, rank up to `K`): the lists of `SIMILAR_METHODS` as of `origin`,
    from the events through it and the origin's `factor_similar` (`group_similarity`; None: the neighbours
    alone); the popularity lists for the groups of `sources` (subclass_brand_id)."""
    window = reader.events(origin, settings.evaluation.popularity_window_days)
    neighbours = stages.neighbors(reader, origin, settings).cache()
    served = blended_neighbors(neighbours, factor_similar, settings.neighbors.neighbors_per_group)
    order = Window.partitionBy("subclass_brand_id").orderBy(F.col("score").desc(), "group_id")
    ranked = served.withColumn("rank", F.row_number().over(order)).where(F.col("rank") <= K)
    return {
        MODEL: ranked.select("subclass_brand_id", F.col("group_id").alias("neighbor_id"), "rank"),
        SESSION_NEIGHBORS: neighbours.where(F.col("rank") <= K).select("subclass_brand_id", "neighbor_id", "rank"),
        "popularity": popularity_lists(popular_groups(window), sources),
        "co_occurrence": co_occurrence_lists(window),
    }


def similar_item_hits(
    reader: stages.Reader, origin: date, settings: RecoSettings, factor_similar: DataFrame | None = None
) -> pd.DataFrame:
    """One row per next-item target of the day after `origin`: member_id, source, target, and per method of
    `SIMILAR_METHODS` the target's rank in the source's list (NaN: not in it)."""
    targets = next_item_targets(reader.events(origin + timedelta(days=1), 1)).localCheckpoint()
    sources = targets.select(F.col("source").alias("subclass_brand_id")).distinct()
    lists = {
        method: ranked.select(
            F.col("subclass_brand_id").alias("source"),
            F.col("neighbor_id").alias("target"),
            F.col("rank").alias(method),
        )
        for method, ranked in similar_lists(reader, origin, settings, sources, factor_similar).items()
    }
    return _ranked(targets, lists, ["source", "target"])


# --- bought together -----------------------------------------------------------------------------------


def holdout_baskets(events: DataFrame) -> DataFrame:
    """(member_id, session_id, cart, held_out): each purchase basket of `events` holding two groups or more,
    its last group bought held out and the others, in the order bought, its cart."""
    baskets = purchase_baskets(events, WHOLE_BASKET).where(F.size("items") >= 2)
    return baskets.select(
        *SESSION,
        F.slice("items", F.lit(1), F.size("items") - 1).alias("cart"),
        F.element_at("items", -1).alias("held_out"),
    )


def _antecedents(groups: Column) -> Column:
    """The antecedents a cart's distinct `groups` (in cart order) match, as `baskets.antecedents`: each group,
    then each pair of the first `PAIR_GROUPS`, sorted."""
    firsts = F.slice(groups, 1, PAIR_GROUPS)
    pairs = F.transform(
        firsts, lambda first, at: F.transform(F.slice(firsts, at + 2, PAIR_GROUPS), lambda then: F.array(first, then))
    )
    return F.concat(F.transform(groups, lambda group: F.array(group)), F.flatten(pairs))


def complementary_groups(carts: DataFrame, rules: DataFrame, keys: list[str]) -> DataFrame:
    """The groups proposed for each cart of `carts` (`keys` and `cart`: its groups in cart order) by `rules`
    (`antecedent` sorted, `consequent`, `confidence`, `lift`), as `baskets.complementary_groups` proposes them
    at request time: (`keys`, consequent, score, rank from 1), the score the best lift x confidence over the
    matched antecedents, the cart's own groups left out, ties by the smaller id."""
    matched = carts.select(
        *keys,
        F.col("cart"),
        F.explode(F.transform(_antecedents(F.array_distinct("cart")), lambda key: F.array_sort(key))).alias(
            "antecedent"
        ),
    )
    scored = rules.select("antecedent", "consequent", (F.col("lift") * F.col("confidence")).alias("score"))
    best = (
        matched.join(scored, "antecedent")
        .where(~F.array_contains("cart", F.col("consequent")))
        .groupBy(*keys, "consequent")
        .agg(F.max("score").alias("score"))
    )
    order = Window.partitionBy(*keys).orderBy(F.col("score").desc(), "consequent")
    return best.withColumn("rank", F.row_number().over(order))


def popularity_completions(carts: DataFrame, popular: DataFrame, keys: list[str]) -> DataFrame:
    """(`keys`, consequent, rank up to `K`): for each cart of `carts` (`keys`, `cart`), the `K` most `popular`
    (`rules.basket_popularity`) groups not in it."""
    longest = carts.agg(F.max(F.size("cart")).alias("longest"))
    top = popular.crossJoin(longest).where(F.col("rank") <= K + F.col("longest"))
    listed = carts.crossJoin(
        F.broadcast(top.select(F.col("group_id").alias("consequent"), F.col("rank").alias("popular_rank")))
    ).where(~F.array_contains("cart", F.col("consequent")))
    order = Window.partitionBy(*keys).orderBy("popular_rank")
    return (
        listed.withColumn("rank", F.row_number().over(order))
        .where(F.col("rank") <= K)
        .select(*keys, "consequent", "rank")
    )


def basket_lists(reader: stages.Reader, origin: date, settings: RecoSettings, carts: DataFrame) -> dict[str, DataFrame]:
    """Method -> (member_id, session_id, consequent, rank up to `K`): the completions of `BASKET_METHODS` as of
    `origin` for each cart of `carts` (member_id, session_id, cart), from the events through `origin`."""
    chosen = settings.rules
    mined = purchase_baskets(reader.events(origin, chosen.window_days), chosen.max_basket_items)
    proposed = complementary_groups(carts, stages.rules(reader, origin, settings), SESSION)
    return {
        MODEL: proposed.where(F.col("rank") <= K).select(*SESSION, "consequent", "rank"),
        "co_purchase_popularity": popularity_completions(carts, basket_popularity(mined), SESSION),
    }


def bought_together_hits(reader: stages.Reader, origin: date, settings: RecoSettings) -> pd.DataFrame:
    """One row per holdout basket of the day after `origin`: member_id, held_out, cart_groups, and per method of
    `BASKET_METHODS` the held-out group's rank in the cart's completions (NaN: not in them)."""
    baskets = holdout_baskets(reader.events(origin + timedelta(days=1), 1)).localCheckpoint()
    lists = {
        method: ranked.select(*SESSION, F.col("consequent").alias("held_out"), F.col("rank").alias(method))
        for method, ranked in basket_lists(reader, origin, settings, baskets).items()
    }
    targets = baskets.withColumn("cart_groups", F.size("cart")).drop("cart")
    return _ranked(targets, lists, [*SESSION, "held_out"]).drop(columns="session_id")


def _ranked(targets: DataFrame, lists: dict[str, DataFrame], on: list[str]) -> pd.DataFrame:
    """`targets` with one column per method of `lists` (the `on` columns and the method's rank), on the
    driver: the per-target hit table."""
    for ranks in lists.values():
        targets = targets.join(ranks, on, "left")
    table = targets.toPandas()
    return table.astype({method: "float64" for method in lists})


# --- the rows of `offline_evaluation` ------------------------------------------------------------------


def evaluation_reader(session: SparkSession, lakehouse: Lakehouse, first: date, last: date, settings) -> stages.Reader:
    """A keeping reader over the events every window of origins from `first` to `last` (training days; their
    test windows included) reads: release it when done."""
    reach = max(settings.neighbors.window_days, settings.rules.window_days, settings.evaluation.popularity_window_days)
    reader = stages.Reader(session, lakehouse, keep=True, strict=False)
    end = last + timedelta(days=settings.evaluation.holdout_days)
    reader.events(end, (end - first).days + reach)
    return reader


def hit_tables(
    session: SparkSession,
    lakehouse: Lakehouse,
    origins: list[date],
    settings: RecoSettings,
    factor_similar: dict[date, DataFrame | None] | None = None,
    reader: stages.Reader | None = None,
) -> dict[str, pd.DataFrame]:
    """Level -> the per-target hit tables (`similar_item_hits`, `bought_together_hits`) of every origin, with
    `origin`: its position in `origins`; `factor_similar`: the origins' factor similarities (missing: none).
    `reader`: a keeping reader covering the origins' windows (`evaluation_reader`), else one made and released
    here."""
    own = reader is None
    reader = evaluation_reader(session, lakehouse, min(origins), max(origins), settings) if own else reader
    tables: dict[str, list[pd.DataFrame]] = {SIMILAR_ITEMS: [], BOUGHT_TOGETHER: []}
    try:
        for position, origin in enumerate(origins):
            modelled = (factor_similar or {}).get(origin)
            hits = similar_item_hits(reader, origin, settings, modelled)
            tables[SIMILAR_ITEMS].append(hits.assign(origin=position))
            tables[BOUGHT_TOGETHER].append(bought_together_hits(reader, origin, settings).assign(origin=position))
    finally:  # the process's Spark session outlives a failed evaluation: its kept events must not
        if own:
            reader.release()
    return {level: pd.concat(frames, ignore_index=True) for level, frames in tables.items()}


def per_target(hits: pd.DataFrame, methods: tuple[str, ...], k: int = K) -> pd.DataFrame:
    """(method, metric) -> each target's hit rate and reciprocal rank at `k` (0 without a hit)."""
    out = {}
    for method in methods:
        rank = hits[method].to_numpy(dtype=float)
        hit = np.nan_to_num(rank, nan=np.inf) <= k
        out[(method, "hit_rate")] = hit.astype(float)
        out[(method, "mrr")] = np.where(hit, 1.0 / np.where(hit, rank, 1.0), 0.0)
    return pd.DataFrame(out, index=hits.index)


def level_rows(
    level: str,
    hits: pd.DataFrame,
    methods: tuple[str, ...],
    settings: RecoSettings,
    k: int = K,
    segment: str = "all",
) -> pd.DataFrame:
    """The rows of one level and `segment` (`COLUMNS`): per method, its hit rate and MRR at `k` over the
    targets of `hits` with their 95 % bootstrap intervals; `members` the members scored, summed over the
    origins."""
    if hits.empty:
        return pd.DataFrame(columns=COLUMNS)
    hits = hits.reset_index(drop=True)
    weights = member_weights(hits["member_id"], settings.evaluation.bootstrap_draws, settings.evaluation.seed)
    values = mean_intervals(per_target(hits, methods, k), weights)
    members = len(hits[["origin", "member_id"]].drop_duplicates())
    return pd.DataFrame(
        [
            (level, segment, method, metric, k, value, low, high, members, len(hits))
            for (method, metric), (value, low, high) in values.items()
        ],
        columns=COLUMNS,
    )


def item_to_item_rows(
    session: SparkSession,
    lakehouse: Lakehouse,
    origins: list[date],
    settings: RecoSettings,
    factor_similar: dict[date, DataFrame | None] | None = None,
    reader: stages.Reader | None = None,
) -> pd.DataFrame:
    """The item-to-item rows of `offline_evaluation` (`COLUMNS`) over the `origins` (training days, each scored
    on the day after it, with the factor similarity of its models where `factor_similar` has it): levels
    `similar_items` and `bought_together`, segment `all`. `reader`: as `hit_tables`."""
    tables = hit_tables(session, lakehouse, origins, settings, factor_similar, reader)
    methods = {SIMILAR_ITEMS: SIMILAR_METHODS, BOUGHT_TOGETHER: BASKET_METHODS}
    parts = [level_rows(level, hits, methods[level], settings) for level, hits in tables.items() if not hits.empty]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)


def origin_similarity(session: SparkSession, backtest, settings: RecoSettings) -> DataFrame | None:
    """The factor similarity of the models an origin ranked with (the pipeline's, not the scope ablation's):
    the similar groups its day would have served are completed by it. None when it fitted nothing."""
    if backtest.factors is None:
        return None
    items = backtest.factors.where((F.col("side") == "item") & ~F.col("cohort").startswith(ABLATION))
    table = items.select("cohort", "id", "factors").toArrow()  # groups x cohorts rows
    chosen = settings.factor_model.engine, settings.neighbors.neighbors_per_group
    return session.createDataFrame(model_similarity(table, *chosen).to_pandas())
