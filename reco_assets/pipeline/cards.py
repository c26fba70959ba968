"""Member cards: diversified affinities joined to the style listings, as product, brand and category feeds.

- products: the member's styles, group by group in affinity order and style rank inside a group; `full`
  holds at most `product_feed_max`, `card` the first `product_card_size`.
- brands / categories (= class): groups ranked by the summed score of the member's subclass-brands in them;
  groups with fewer than `group_min_styles` saleable styles are dropped; the top `group_cards` groups,
  each as a `card` (first `group_card_size` styles) and a `full` list (first `group_full_size`).
"""

from dataclasses import dataclass

from pyspark.sql import DataFrame, Window
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


@dataclass(frozen=True)
class CardLimits:
    product_feed_max: int
    product_card_size: int
    group_cards: int
    group_card_size: int
    group_full_size: int
    group_min_styles: int


def _ordered_ids(items: F.Column) -> F.Column:
    """Sort an array of (order keys..., style_id) structs and keep the distinct style ids in that order."""
    return F.array_distinct(F.transform(F.array_sort(items), lambda x: x["style_id"]))


def _styles_in_group_order() -> F.Column:
    """Aggregate: the styles of a member's subclass-brands, group by group in rank order, without repeats."""
    ordered = F.array_sort(F.collect_list(F.struct("group_rank", "styles")))
    return F.array_distinct(F.flatten(F.transform(ordered, lambda x: x["styles"])))


def _variants(rows: DataFrame, card_size: int, full_size: int) -> DataFrame:
    return rows.withColumn(
        "_variants",
        F.array(
            F.struct(F.lit("card").alias("variant"), F.slice("_styles", 1, card_size).alias("style_ids")),
            F.struct(F.lit("full").alias("variant"), F.slice("_styles", 1, full_size).alias("style_ids")),
        ),
    ).select("*", F.inline("_variants"))


def member_groups(affinities: DataFrame, listings: DataFrame) -> DataFrame:
    """Per member x subclass-brand with saleable styles: cohort, score, group rank, brand, class (name and key),
    ordered styles."""
    styles = listings.groupBy("subclass_brand_id", "brand", "class", level_key(CLASS_PATH).alias("class_key")).agg(
        _ordered_ids(F.collect_list(F.struct("rank", "style_id"))).alias("styles")
    )
    return affinities.select(
        "cohort", "member_id", "subclass_brand_id", "score", F.col("rank").alias("group_rank")
    ).join(styles, "subclass_brand_id")


def product_feed(groups: DataFrame, limits: CardLimits) -> DataFrame:
    rows = groups.groupBy("cohort", "member_id").agg(
        F.sum("score").alias("affinity"), _styles_in_group_order().alias("_styles")
    )
    return _variants(rows, limits.product_card_size, limits.product_feed_max).select(
        "cohort",
        "member_id",
        F.lit("products").alias("feed"),
        "variant",
        F.lit(1).alias("position"),
        F.lit("all").alias("group_key"),
        F.lit("Picked for you").alias("group_name"),
        "affinity",
        "style_ids",
    )


def grouped_feed(
    groups: DataFrame, feed: str, key: str, name: str, name_template: str, limits: CardLimits
) -> DataFrame:
    """Groups by `key` (brand, or the class key: class names repeat across divisions), ranked by summed
    affinity, titled from `name`; small groups, and groups without a `key` (no brand or class), dropped."""
    per_group = (
        groups.where(F.col(key).isNotNull())
        .groupBy("cohort", "member_id", F.col(key).alias("group_key"))
        .agg(F.first(name).alias("_name"), F.sum("score").alias("affinity"), _styles_in_group_order().alias("_styles"))
    )
    order = Window.partitionBy("member_id").orderBy(F.desc("affinity"), "group_key")
    ranked = (
        per_group.where(F.size("_styles") >= limits.group_min_styles)
        .withColumn("position", F.row_number().over(order))
        .where(F.col("position") <= limits.group_cards)
    )
    return _variants(ranked, limits.group_card_size, limits.group_full_size).select(
        "cohort",
        "member_id",
        F.lit(feed).alias("feed"),
        "variant",
        "position",
        "group_key",
        F.format_string(name_template, F.initcap("_name")).alias("group_name"),
        "affinity",
        "style_ids",
    )


def member_cards(affinities: DataFrame, listings: DataFrame, limits: CardLimits) -> DataFrame:
    """All three feeds, one row per member x feed x variant x group."""
    groups = member_groups(affinities, listings).cache()
    cards = (
        product_feed(groups, limits)
        .unionByName(grouped_feed(groups, "brands", "brand", "brand", "%s you might like", limits))
        .unionByName(grouped_feed(groups, "categories", "class_key", "class", "%s for you", limits))
    )
    return cards.select(*CARD_COLUMNS)


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
