"""Style listings: inside each subclass-brand, the live styles ranked by one hybrid score.

score = popularity + launch + age, where (w = the `listings.style_weights` setting, ln1p = ln(1 + x)):
- popularity = w.views ln1p(views) + w.purchases ln1p(purchases) + w.conversion purchases / (views + 1)
               - w.cancellations ln1p(removes from cart), over the interaction window;
- launch     = for styles first live within `new_style_hours`: (w.first_day [first live in the last 24 h]
               + w.early_popularity ln1p(views + 5 purchases in the current sale)) x (1.5 - share of new
               styles in the group): a new style stands out more among older ones;
- age        = w.prior_sales ln1p(times on sale before) - w.days_on_site (days in the current sale)
               + w.brand_persistence (share of window days the group drew events: the brand's staying
               power in that subclass).
Ages are taken at the start of the sale window (the day, or a release's instant). Sold-out and nearly
sold-out styles (fewer than `min_qty_on_hand` units) and styles off sale in the window are dropped; the
best `styles_per_group` per group are kept (product fatigue).
"""

from datetime import datetime

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from reco_assets.pipeline.catalog import live_styles


def style_listings(
    catalog: DataFrame,
    events: DataFrame,
    window: tuple[datetime, datetime],
    window_days: int,
    weights: dict[str, float],
    min_qty: int,
    new_style_hours: int,
    styles_per_group: int,
) -> DataFrame:
    start, _ = window
    w = {k: F.lit(float(v)) for k, v in weights.items()}
    live = live_styles(catalog, window, min_qty)

    counts = (
        events.where(F.col("style_id").isNotNull())
        .join(live.select("style_id", "live_from"), "style_id")
        .groupBy("style_id")
        .agg(
            F.sum((F.col("event_type") == "product_view").cast("int")).alias("views"),
            F.sum((F.col("event_type") == "purchase").cast("int")).alias("purchases"),
            F.sum((F.col("event_type") == "remove_from_cart").cast("int")).alias("removes"),
            F.sum(
                ((F.col("event_type") == "product_view") & (F.col("event_time") >= F.col("live_from"))).cast("int")
            ).alias("sale_views"),
            F.sum(
                ((F.col("event_type") == "purchase") & (F.col("event_time") >= F.col("live_from"))).cast("int")
            ).alias("sale_purchases"),
        )
    )
    persistence = (
        events.where(F.col("subclass_brand_id").isNotNull())
        .groupBy("subclass_brand_id")
        .agg((F.countDistinct("event_date") / F.lit(float(window_days))).alias("persistence"))
    )
    hours_since_first = (F.lit(start).cast("long") - F.col("first_live_at").cast("long")) / 3600.0
    days_on_site = F.greatest(F.lit(0.0), (F.lit(start).cast("long") - F.col("live_from").cast("long")) / 86400.0)
    group = Window.partitionBy("subclass_brand_id")
    scored = (
        live.join(counts, "style_id", "left")
        .join(persistence, "subclass_brand_id", "left")
        .fillna(0, ["views", "purchases", "removes", "sale_views", "sale_purchases", "persistence"])
        .withColumn("is_new", hours_since_first < F.lit(float(new_style_hours)))
        .withColumn("new_share", F.avg(F.col("is_new").cast("double")).over(group))
        .withColumn(
            "popularity_score",
            w["views"] * F.log1p("views")
            + w["purchases"] * F.log1p("purchases")
            + w["conversion"] * F.col("purchases") / (F.col("views") + 1)
            - w["cancellations"] * F.log1p("removes"),
        )
        .withColumn(
            "launch_score",
            F.when(
                F.col("is_new"),
                (
                    w["first_day"] * (hours_since_first < 24).cast("double")
                    + w["early_popularity"] * F.log1p(F.col("sale_views") + 5 * F.col("sale_purchases"))
                )
                * (F.lit(1.5) - F.col("new_share")),
            ).otherwise(F.lit(0.0)),
        )
        .withColumn(
            "age_score",
            w["prior_sales"] * F.log1p("prior_sales")
            - w["days_on_site"] * days_on_site
            + w["brand_persistence"] * F.col("persistence"),
        )
        .withColumn("score", F.col("popularity_score") + F.col("launch_score") + F.col("age_score"))
        .withColumn("rank", F.row_number().over(group.orderBy(F.desc("score"), "style_id")))
        .where(F.col("rank") <= styles_per_group)
    )
    return scored.select(
        "subclass_brand_id",
        "style_id",
        "brand",
        "division",
        "department",
        "class",
        "subclass",
        "price",
        "live_from",
        "live_until",
        "qty_on_hand",
        "popularity_score",
        "launch_score",
        "age_score",
        "score",
        "rank",
    )
