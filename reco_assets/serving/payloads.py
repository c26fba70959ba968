"""The day's cards as one JSON document per member, built in Spark (never on the driver).

A payload (the API's `Payload` schema) holds every feed and both variants of each group:

    {"member_id": "8102", "member_source_id": "...", "as_of_date": "2026-10-31", "version": "...",
     "source": "member_cards", "cohort": "women_3", "fallback": false,
     "ranking": {"method": "blend", "versus": "no_boost", "margin": 0.0071, "margin_ci": [0.0052, 0.0093]},
     "feeds": {"products":   [{"position": 1, "group_key": "all", "group_name": "Picked for you",
                               "affinity": 3.2, "card": ["17", ...], "full": ["17", ...]}],
               "brands":     [... up to `group_cards` groups ...],
               "categories": [...]}}

`ranking` names the method the cohort's lists were ranked by (its champion, `ranking_champions`) and, when
it is the champion, its NDCG@10 margin over the runner-up with the 95 % interval. Ids are
decimal strings: the lakehouse's ids are 63-bit and a JavaScript number keeps 53 bits. Imported
data adds `member_source_id` and, per group, `card_source_ids` / `full_source_ids` (same order as the ids).
"""

import pyarrow as pa
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from reco_assets.serving.store import MEMBER, SOURCE

FEEDS = ("products", "brands", "categories")
ENTRY = ["position", "group_key", "group_name", "affinity"]
LOAD_SCHEMA = pa.schema([("key", pa.binary()), ("value", pa.binary())])
RANKING_TYPE = "struct<method:string,versus:string,margin:double,margin_ci:array<double>>"
POPULAR_GROUP = {"position": 1, "group_key": "popular", "group_name": "Popular today", "affinity": None}


def _as_text(column: str) -> Column:
    return F.transform(F.col(column), lambda x: x.cast("string"))


def _variant(variant: str, column: str) -> Column:
    return F.first(F.when(F.col("variant") == variant, _as_text(column)), ignorenulls=True)


def member_payloads(
    cards: DataFrame, as_of_date: str, version: str, source: str, rankings: dict[str, dict] | None = None
) -> DataFrame:
    """One row per member: `member_id`, `member_source_id` (null unless imported), `payload` (JSON text).
    `rankings`: cohort -> its `ranking` in the payload (`method`, and `versus`, `margin`, `margin_ci` when
    known)."""
    imported = "style_source_ids" in cards.columns
    lists = [_variant("card", "style_ids").alias("card"), _variant("full", "style_ids").alias("full")]
    if imported:
        lists += [
            _variant("card", "style_source_ids").alias("card_source_ids"),
            _variant("full", "style_source_ids").alias("full_source_ids"),
        ]
    member = ["member_id", "cohort"] + (["member_source_id"] if imported else [])
    groups = cards.groupBy(*member, "feed", *ENTRY).agg(*lists)
    entry = F.struct(*ENTRY, "card", "full", *(["card_source_ids", "full_source_ids"] if imported else []))
    per_member = groups.groupBy(*member).agg(
        *(F.array_sort(F.collect_list(F.when(F.col("feed") == feed, entry))).alias(feed) for feed in FEEDS)
    )
    document = F.struct(
        F.col("member_id").cast("string").alias("member_id"),
        (F.col("member_source_id") if imported else F.lit(None).cast("string")).alias("member_source_id"),
        F.lit(as_of_date).alias("as_of_date"),
        F.lit(version).alias("version"),
        F.lit(source).alias("source"),
        "cohort",
        F.lit(False).alias("fallback"),
        F.struct(*FEEDS).alias("feeds"),
        _ranking(rankings or {}).alias("ranking"),
    )
    # to_json leaves null fields out: `member_source_id` and the source id lists appear for imported data only
    return per_member.select(
        "member_id",
        (F.col("member_source_id") if imported else F.lit(None).cast("string")).alias("member_source_id"),
        F.to_json(document).alias("payload"),
    )


def _ranking(rankings: dict[str, dict]) -> Column:
    """The cohort's `ranking` struct (null fields are left out of the JSON)."""
    if not rankings:
        return F.lit(None).cast(RANKING_TYPE)

    def entry(ranking: dict) -> Column:
        ci = ranking.get("margin_ci")
        return F.struct(
            F.lit(ranking["method"]).alias("method"),
            F.lit(ranking.get("versus")).cast("string").alias("versus"),
            F.lit(ranking.get("margin")).cast("double").alias("margin"),
            (F.array(*(F.lit(float(x)) for x in ci)) if ci else F.lit(None).cast("array<double>")).alias("margin_ci"),
        )

    return F.create_map(*(x for cohort, r in sorted(rankings.items()) for x in (F.lit(cohort), entry(r))))[
        F.col("cohort")
    ]


def store_rows(payloads: DataFrame) -> DataFrame:
    """The key/value pairs loaded into the store: `m:<member id>` -> payload, and for imported data
    `s:<source member id>` -> member id (answering by source id costs one more lookup)."""
    by_member = payloads.select(
        F.concat(F.lit(MEMBER.decode()), F.col("member_id").cast("string")).cast("binary").alias("key"),
        F.col("payload").cast("binary").alias("value"),
    )
    by_source = payloads.where(F.col("member_source_id").isNotNull()).select(
        F.concat(F.lit(SOURCE.decode()), "member_source_id").cast("binary").alias("key"),
        F.col("member_id").cast("string").cast("binary").alias("value"),
    )
    return by_member.unionByName(by_source)


def carded_styles(cards: DataFrame) -> DataFrame:
    """The distinct style ids of the cards (at most the catalog's styles), as text."""
    styles = cards.select(F.explode("style_ids").alias("style_id")).distinct()
    return styles.select(F.col("style_id").cast("string").alias("style_id"))


def fallback_payload(
    styles: list[str], source_ids: list[str] | None, card_size: int, as_of_date: str, version: str, source: str
) -> dict:
    """The payload of a member without one: the day's most popular styles as the product feed, flagged."""
    group = dict(POPULAR_GROUP, card=styles[:card_size], full=styles)
    if source_ids is not None:
        group |= {"card_source_ids": source_ids[:card_size], "full_source_ids": source_ids}
    return {
        "member_id": None,
        "as_of_date": as_of_date,
        "version": version,
        "source": source,
        "cohort": None,
        "fallback": True,
        "feeds": {"products": [group], "brands": [], "categories": []},
    }
