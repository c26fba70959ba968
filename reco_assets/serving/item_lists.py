"""The item-to-item keys of a version, built in Spark and loaded from its tasks beside the members' payloads,
then checked (`store.py` names them):

    y:<style id>       -> its group id                      (every listed style)
    gs:<group id>      -> {"fallback": …, "styles": […]}   the similar styles of a style of the group
    gb:<group id>      -> {"fallback": …, "styles": […]}   the styles bought with one of the group
    gl:<group id>      -> ["<style id>", …]                 the group's listing, best first (carts' answers)
    gc:<group id>      -> <subclass key>                   the group's subclass (session re-ranking)
    ra:<antecedent>    -> [[<group id>, <score>], …]        a rule antecedent's consequents, best first
    t:<source style id> -> <style id>                       imported data only

Each list entry is `{"style_id": "…", "score": …, "group_key": "<group id>"}` (plus `style_source_id` for
imported data), ids as decimal strings. Lists are stored per group, not per style: a style's lists are its
group's (`pipeline/style_lists.py`), and the API drops the style itself at request time.
"""

from dataclasses import dataclass

import orjson
import pyarrow as pa
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from reco_assets import invariants
from reco_assets.adapters.ids import ID_MAP
from reco_assets.pipeline import stages
from reco_assets.pipeline.catalog import SUBCLASS_PATH, level_key
from reco_assets.pipeline.group_similarity import model_similarity
from reco_assets.resources.lakehouse import Lakehouse
from reco_assets.serving.loading import load
from reco_assets.serving.published import PublishedCards
from reco_assets.serving.store import (
    BASKET_FALLBACK,
    BOUGHT,
    GROUP_SUBCLASS,
    LISTED,
    RULES,
    SIMILAR,
    STYLE_GROUP,
    STYLE_SOURCE,
    ServingStore,
)
from reco_assets.settings import RecoSettings

LIST_LENGTH = 101
"""Styles stored per list: the API's largest `limit` (100), and the requested style itself."""
SIMILAR_FILL = 10
"""A listed style is filled when its similar list holds this many styles of its own (the fill measure)."""


def _text(column: str) -> Column:
    return F.col(column).cast("string")


def _pairs(key: Column, value: Column) -> tuple[Column, Column]:
    return key.cast("binary").alias("key"), value.cast("binary").alias("value")


def _entries(lists: DataFrame, style_sources: DataFrame | None) -> DataFrame:
    """`lists` (style_lists.LIST_COLUMNS) with each row's JSON entry (`entry`), source id included."""
    fields = [_text("style_id").alias("style_id"), F.col("score"), _text("group_id").alias("group_key")]
    if style_sources is not None:
        lists = lists.join(F.broadcast(style_sources), "style_id", "left")
        fields.append(F.col("style_source_id"))
    return lists.withColumn("entry", F.struct(*fields))


def list_rows(prefix: bytes, groups: DataFrame, lists: DataFrame, style_sources: DataFrame | None = None) -> DataFrame:
    """A `prefix` key per group of `groups` (`subclass_brand_id`) with its list of `lists`: an empty list,
    flagged fallback, when it has none."""
    ordered = F.array_sort(F.collect_list(F.struct("position", "entry")))
    per_group = (
        _entries(lists, style_sources)
        .groupBy("subclass_brand_id")
        .agg(F.first("fallback").alias("fallback"), F.transform(ordered, lambda x: x["entry"]).alias("styles"))
    )
    document = F.struct(
        F.coalesce("fallback", F.lit(True)).alias("fallback"),
        F.coalesce("styles", F.array().cast(per_group.schema["styles"].dataType)).alias("styles"),
    )
    rows = groups.join(per_group, "subclass_brand_id", "left")
    return rows.select(*_pairs(F.concat(F.lit(prefix.decode()), _text("subclass_brand_id")), F.to_json(document)))


def listing_rows(listings: DataFrame, style_sources: DataFrame | None = None) -> DataFrame:
    """`y:` per listed style, `gl:` and `gc:` per listed group, and for imported data `t:` per listed style."""
    styles = listings.select(
        *_pairs(F.concat(F.lit(STYLE_GROUP.decode()), _text("style_id")), _text("subclass_brand_id"))
    )
    ordered = F.array_sort(F.collect_list(F.struct("rank", _text("style_id").alias("style_id"))))
    groups = listings.groupBy("subclass_brand_id").agg(F.transform(ordered, lambda x: x["style_id"]).alias("styles"))
    listed = groups.select(*_pairs(F.concat(F.lit(LISTED.decode()), _text("subclass_brand_id")), F.to_json("styles")))
    subclasses = (
        listings.select("subclass_brand_id", level_key(SUBCLASS_PATH).alias("subclass_key"))
        .where(F.col("subclass_key").isNotNull())
        .dropDuplicates(["subclass_brand_id"])
    )
    placed = subclasses.select(
        *_pairs(F.concat(F.lit(GROUP_SUBCLASS.decode()), _text("subclass_brand_id")), F.col("subclass_key"))
    )
    rows = styles.unionByName(listed).unionByName(placed)
    if style_sources is not None:
        sources = listings.select("style_id").join(style_sources, "style_id")
        rows = rows.unionByName(
            sources.select(*_pairs(F.concat(F.lit(STYLE_SOURCE.decode()), "style_source_id"), _text("style_id")))
        )
    return rows


def rule_rows(rules: DataFrame) -> DataFrame:
    """`ra:` per antecedent of `rules`: `[[<group id>, <lift x confidence>], …]`, best first. The JSON is
    written as text: group ids are 63-bit (a double would round them) and scores are doubles."""
    key = F.array_join(F.transform("antecedent", lambda g: g.cast("string")), ",")  # as baskets.antecedent_key
    pair = F.format_string("[%d,%s]", F.col("consequent"), (F.col("lift") * F.col("confidence")).cast("string"))
    ordered = F.array_sort(F.collect_list(F.struct("rank", pair.alias("pair"))))
    per_antecedent = rules.groupBy(key.alias("antecedent")).agg(
        F.concat(F.lit("["), F.array_join(F.transform(ordered, lambda x: x["pair"]), ","), F.lit("]")).alias("to")
    )
    return per_antecedent.select(*_pairs(F.concat(F.lit(RULES.decode()), "antecedent"), F.col("to")))


def item_rows(lists, rules: DataFrame, listings: DataFrame, style_sources: DataFrame | None = None) -> DataFrame:
    """Every item-to-item key of a version but the cart fallback: from the day's `lists` (a
    `stages.StyleLists`), `rules` and `listings` (`style_sources`: `style_id` -> `style_source_id`, for
    imported data)."""
    groups = listings.select("subclass_brand_id").distinct()
    return (
        list_rows(SIMILAR, groups, lists.similar, style_sources)
        .unionByName(list_rows(BOUGHT, groups, lists.bought, style_sources))
        .unionByName(listing_rows(listings, style_sources))
        .unionByName(rule_rows(rules))
    )


def basket_fallback(popular: DataFrame, style_sources: DataFrame | None = None) -> bytes:
    """The cart's fallback document, `{"styles": [...]}`: `popular` (at most LIST_LENGTH rows) read to the
    driver."""
    entries = _entries(popular, style_sources).orderBy("position").select("entry").toArrow()
    return orjson.dumps({"styles": entries.column("entry").to_pylist()})


@dataclass(frozen=True)
class LoadedLists:
    """What loading a version's lists wrote, and its check."""

    styles: frozenset[str]
    """The listed styles (the version's styles that a later snapshot can withdraw)."""
    listed_groups: int
    violations: int
    """Malformed entries (`invariants.style_list_violations`) and listed styles or groups without keys."""
    similar_fill: float
    """The share of listed styles with SIMILAR_FILL similar styles of their own."""

    @property
    def listed_styles(self) -> int:
        return len(self.styles)


def load_lists(
    session: SparkSession,
    lakehouse: Lakehouse,
    cards: PublishedCards,
    store: ServingStore,
    version: str,
    settings: RecoSettings,
) -> LoadedLists:
    """Build the lists of the cards' listings (the day's, or its release's) from the day's `group_neighbors`
    and `co_purchase_rules`, load them into `version` from the tasks, and check them."""
    day = cards.day
    table, partition = cards.listings
    lakehouse.require(table, partition)
    lakehouse.require("group_neighbors", {"as_of_date": day})
    lakehouse.require("co_purchase_rules", {"as_of_date": day})
    listings = lakehouse.read_spark(session, table, partition=partition)
    neighbors = lakehouse.read_spark(session, "group_neighbors", partition={"as_of_date": day})
    rules = lakehouse.read_spark(session, "co_purchase_rules", partition={"as_of_date": day})
    reader = stages.Reader(session, lakehouse)
    modelled = _factor_similar(session, lakehouse, day, settings)
    lists = stages.style_lists(reader, day, listings, neighbors, rules, settings, LIST_LENGTH, modelled)
    similar, bought, popular = lists.similar.cache(), lists.bought.cache(), lists.popular.cache()
    lists = stages.StyleLists(similar, bought, popular)
    sources = _style_sources(session, lakehouse)
    load(item_rows(lists, rules, listings, sources), store, version)
    store.write(version, [(BASKET_FALLBACK, basket_fallback(popular, sources))])
    # bounded by the catalog's live styles and groups, as the version's inventory of styles is
    entries = pa.concat_tables(
        [frame.withColumn("kind", F.lit(kind)).toArrow() for kind, frame in (("similar", similar), ("bought", bought))]
    )
    for frame in (similar, bought, popular):
        frame.unpersist()
    listed = lakehouse.read_arrow(table, partition=partition, columns=["style_id", "subclass_brand_id"])
    groups = len(set(listed.column("subclass_brand_id").to_pylist()))
    missing = sum(
        abs(store.count(version, prefix) - expected)
        for prefix, expected in ((STYLE_GROUP, listed.num_rows), (SIMILAR, groups), (BOUGHT, groups), (LISTED, groups))
    )
    return LoadedLists(
        styles=frozenset(str(s) for s in listed.column("style_id").to_pylist()),
        listed_groups=groups,
        violations=invariants.style_list_violations(entries, listed, LIST_LENGTH) + missing,
        similar_fill=invariants.similar_fill(entries, listed, SIMILAR_FILL),
    )


def _factor_similar(session: SparkSession, lakehouse: Lakehouse, day, settings: RecoSettings) -> DataFrame | None:
    """The groups closest to each group by the day's factor models (`group_similarity.model_similarity`);
    None when the day has no factors (a day held back)."""
    items = lakehouse.read_arrow(
        "als_factors", f"as_of_date = '{day}' AND side = 'item'", columns=["cohort", "id", "factors"]
    )
    if items.num_rows == 0:
        return None
    chosen = settings.factor_model.engine, settings.neighbors.neighbors_per_group
    return session.createDataFrame(model_similarity(items, *chosen).to_pandas())


def _style_sources(session: SparkSession, lakehouse: Lakehouse) -> DataFrame | None:
    """`style_id` -> `style_source_id` of imported data (None for data born in the lakehouse)."""
    if lakehouse.table(ID_MAP) is None:
        return None
    id_map = lakehouse.read_spark(session, ID_MAP)
    return id_map.where(F.col("namespace") == "style").select(
        F.col("id").alias("style_id"), F.col("source_id").alias("style_source_id")
    )
