"""Bought together: co-purchase rules over the subclass-brands of members' baskets, mined by Spark's FPGrowth.

A basket is what one member bought in one session (an invoice in the retail sample): its distinct groups,
the first `max_basket_items` bought (FPGrowth has no limit on an itemset's length, and a basket of n items
holds 2^n itemsets: the cap bounds its work). Every basket counts, single items too, so that support and
lift are over all of them:

    support(A => c) = baskets holding A and c / baskets
    confidence(A => c) = baskets holding A and c / baskets holding A
    lift(A => c) = confidence(A => c) / (baskets holding c / baskets)

A rule needs `min_baskets` baskets (FPGrowth's `minSupport` given as a count: a fraction is meaningless
across shops of different sizes, and its default 0.3 finds nothing in retail) and `min_confidence`; its
antecedent holds one or two groups (a product page, a small cart). Each antecedent keeps its
`consequents_per_antecedent` best consequents by lift x confidence, ties by the consequent's id.
"""

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from reco_assets.pipeline.neighbors import SESSION


def purchase_baskets(events: DataFrame, max_basket_items: int) -> DataFrame:
    """(member_id, session_id, items): each session's distinct purchased groups, at most the first
    `max_basket_items` bought (ties by group id)."""
    bought = (
        events.where((F.col("event_type") == "purchase") & F.col("subclass_brand_id").isNotNull())
        .groupBy(*SESSION, "subclass_brand_id")
        .agg(F.min("event_time").alias("bought_at"))
    )
    ordered = F.sort_array(F.collect_list(F.struct("bought_at", "subclass_brand_id")))
    firsts = F.slice(F.transform(ordered, lambda each: each["subclass_brand_id"]), 1, max_basket_items)
    return bought.groupBy(*SESSION).agg(firsts.alias("items"))


def co_purchase_rules(baskets: DataFrame, settings) -> DataFrame:
    """The rules of `baskets` (`purchase_baskets`): `antecedent` (sorted group ids, one or two),
    `consequent`, `rank` from 1 within the antecedent, `support`, `confidence`, `lift`, `baskets` (holding
    antecedent and consequent)."""
    from pyspark.ml.fpm import FPGrowth

    baskets = baskets.select("items").localCheckpoint()  # counted, then mined: the events are read once
    total = baskets.count()
    if total == 0:
        return baskets.sparkSession.createDataFrame([], RULES_SCHEMA)
    # a count as FPGrowth's fraction: it keeps itemsets in at least ceil(minSupport x baskets) baskets
    growth = FPGrowth(
        itemsCol="items", minSupport=(settings.min_baskets - 0.5) / total, minConfidence=settings.min_confidence
    )
    rules = growth.fit(baskets).associationRules
    order = Window.partitionBy("antecedent").orderBy((F.col("lift") * F.col("confidence")).desc(), "consequent")
    return (
        rules.where(F.size("antecedent") <= settings.max_antecedent_items)
        .select(
            F.array_sort("antecedent").alias("antecedent"),
            F.col("consequent")[0].alias("consequent"),
            "support",
            "confidence",
            "lift",
            F.round(F.col("support") * total).cast("long").alias("baskets"),
        )
        .withColumn("rank", F.row_number().over(order))
        .where(F.col("rank") <= settings.consequents_per_antecedent)
        .select("antecedent", "consequent", F.col("rank").cast("int"), "support", "confidence", "lift", "baskets")
    )


RULES_SCHEMA = (
    "antecedent array<bigint>, consequent bigint, rank int, support double, confidence double, lift double, "
    "baskets long"
)


def basket_popularity(baskets: DataFrame, groups: int | None = None) -> DataFrame:
    """The groups of `baskets` (`purchase_baskets`) by the baskets holding them, ties by the smaller id (at most
    `groups` of them): `group_id`, `score` (the baskets), `rank` from 1; the lists' fallback for a group or a
    cart without rules, and the evaluation's co-purchase popularity."""
    counts = baskets.select(F.explode("items").alias("group_id")).groupBy("group_id").agg(F.count("*").alias("n"))
    order = Window.orderBy(F.col("n").desc(), "group_id")  # one row per group: small
    ranked = counts.select(
        "group_id", F.col("n").cast("double").alias("score"), F.row_number().over(order).alias("rank")
    )
    return ranked if groups is None else ranked.where(F.col("rank") <= groups)
