"""Style lists for a style's page: the live styles like it and those bought with it, per subclass-brand.

In a flash sale most styles are days old, too young for lists of their own; their groups are not. So a
style's lists are its group's: the listed (live, in stock) styles of the groups `group_neighbors` or
`co_purchase_rules` tie to it, each style scored

    score = the group's score / the style's rank in its group's listing (1 for the best)

so that the best style of each good group comes before the second of the best group (the same spread as
a cart's answer: `serving/baskets.py`). A group's similar groups are its session neighbours, then, up to
`neighbors_per_group`, the groups its factors are closest to (`group_similarity.py`), scored below its
weakest neighbour: sessions first, the model where they are thin. A group whose similar groups have no
listed style gets its class's most popular listed styles instead, and one without rules the styles of the
groups in most baskets: both flagged `fallback`. Lists hold `length` styles, ties by the smaller style id.
"""

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from reco_assets.pipeline.catalog import CLASS_PATH, level_key

GROUP = "subclass_brand_id"
LIST_COLUMNS = ["subclass_brand_id", "fallback", "position", "style_id", "score", "group_id"]
"""A group's list: per `subclass_brand_id`, styles at `position` 1.. with their `score` and `group_id`."""


def _ranked(rows: DataFrame, key: str, score: Column, length: int) -> DataFrame:
    """The `length` best rows per `key` by `score` (ties by the smaller style id), numbered from 1."""
    order = Window.partitionBy(key).orderBy(score.desc(), F.col("style_id"))
    return rows.withColumn("position", F.row_number().over(order)).where(F.col("position") <= length)


def spread(scored_groups: DataFrame, listings: DataFrame, length: int) -> DataFrame:
    """The list of each `subclass_brand_id` of `scored_groups` (`subclass_brand_id`, `group_id`, `score`:
    the groups it points to) over the listed styles of the groups pointed to (LIST_COLUMNS, not fallback)."""
    styles = listings.select(F.col(GROUP).alias("group_id"), "style_id", F.col("rank").alias("listing_rank"))
    rows = scored_groups.join(styles, "group_id").withColumn("score", F.col("score") / F.col("listing_rank"))
    return _ranked(rows, GROUP, F.col("score"), length).select(
        GROUP, F.lit(False).alias("fallback"), "position", "style_id", "score", "group_id"
    )


def with_fallback(lists: DataFrame, fallback: DataFrame, listings: DataFrame) -> DataFrame:
    """`lists` for every listed group: a group without a list of its own takes its `fallback` rows
    (LIST_COLUMNS), flagged."""
    groups = listings.select(GROUP).distinct()
    missing = groups.join(lists.select(GROUP).distinct(), GROUP, "left_anti")
    return lists.unionByName(missing.join(fallback, GROUP).withColumn("fallback", F.lit(True)).select(*LIST_COLUMNS))


def blended_neighbors(neighbors: DataFrame, factor_similar: DataFrame | None, per_group: int) -> DataFrame:
    """Each group's similar groups (`subclass_brand_id`, `group_id`, `score`): its session `neighbors`, then
    the groups of `factor_similar` (`subclass_brand_id`, `neighbor_id`, `cosine`) that are not among them, up
    to `per_group` in all, each scored as its cosine times the group's weakest neighbour score (its cosine
    alone for a group without neighbours)."""
    own = neighbors.select(GROUP, F.col("neighbor_id").alias("group_id"), "score")
    if factor_similar is None:
        return own
    weakest = own.groupBy(GROUP).agg(F.min("score").alias("weakest"))
    modelled = (
        factor_similar.select(GROUP, F.col("neighbor_id").alias("group_id"), "cosine")
        .join(own, [GROUP, "group_id"], "left_anti")
        .join(weakest, GROUP, "left")
        .select(GROUP, "group_id", (F.col("cosine") * F.coalesce("weakest", F.lit(1.0))).alias("score"))
    )
    order = Window.partitionBy(GROUP).orderBy("origin", F.col("score").desc(), "group_id")
    both = own.withColumn("origin", F.lit(0)).unionByName(modelled.withColumn("origin", F.lit(1)))
    return both.withColumn("n", F.row_number().over(order)).where(F.col("n") <= per_group).drop("origin", "n")


def similar_lists(listings: DataFrame, similar_groups: DataFrame, length: int) -> DataFrame:
    """Each listed group's similar styles (LIST_COLUMNS): over its `similar_groups` (`blended_neighbors`),
    else (fallback) its class's most popular listed styles, its own group's included."""
    own = spread(similar_groups, listings, length)
    popular = _class_popular(listings, length)
    return with_fallback(own, popular, listings)


def _class_popular(listings: DataFrame, length: int) -> DataFrame:
    """For every listed group, the `length` most popular (`popularity_score`) listed styles of its class."""
    # the full path (class names repeat across departments); a group without a class is a class of its own
    path = F.coalesce(level_key(CLASS_PATH), F.concat(F.lit("group:"), F.col(GROUP).cast("string")))
    styles = listings.select(
        path.alias("class_key"), "style_id", F.col(GROUP).alias("group_id"), F.col("popularity_score").alias("score")
    )
    top = _ranked(styles, "class_key", F.col("score"), length)
    groups = listings.select(GROUP, path.alias("class_key")).distinct()
    return groups.join(top, "class_key").select(*LIST_COLUMNS[:1], F.lit(True).alias("fallback"), *LIST_COLUMNS[2:])


def bought_lists(listings: DataFrame, rules: DataFrame, popular: DataFrame, length: int) -> DataFrame:
    """Each listed group's bought-together styles (LIST_COLUMNS): over the consequents of its one-group
    rules (scored by lift x confidence), else (fallback) the `popular` styles (`popular_styles`)."""
    pointed = rules.where(F.size("antecedent") == 1).select(
        F.col("antecedent")[0].alias(GROUP),
        F.col("consequent").alias("group_id"),
        (F.col("lift") * F.col("confidence")).alias("score"),
    )
    groups = listings.select(GROUP).distinct()
    return with_fallback(spread(pointed, listings, length), groups.crossJoin(popular), listings)


def popular_styles(popular_groups: DataFrame, listings: DataFrame, length: int) -> DataFrame:
    """The listed styles of `popular_groups` (`group_id`, `score`), spread as a group's list (one list:
    `subclass_brand_id` is null)."""
    pointed = popular_groups.select(F.lit(None).cast("bigint").alias(GROUP), "group_id", "score")
    return spread(pointed, listings, length).drop(GROUP)
