"""Validation of landed clickstream records and of catalog snapshots.

Every record read ends in exactly one of two tables: accepted events, or rejected records with the first
rule they broke. Late-arrival policy: a day's landing file is authoritative for that UTC day; a record
stamped outside the day is rejected (`outside_day`) and kept in quarantine, to be re-landed in its own
day's file and that day re-run.
"""

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from reco_assets.constants import EVENT_TYPES, ITEM_EVENTS

CATALOG_SCHEMA = (
    "style_id BIGINT, subclass_brand_id BIGINT, brand STRING, division STRING, department STRING, "
    "class STRING, subclass STRING, price DOUBLE, first_live_at TIMESTAMP, live_from TIMESTAMP, "
    "live_until TIMESTAMP, qty_on_hand BIGINT, prior_sales BIGINT"
)

# field -> Spark type of the accepted column
EVENT_FIELDS = {
    "event_id": "string",
    "event_time": "timestamp",
    "member_id": "bigint",
    "event_type": "string",
    "style_id": "bigint",
    "session_id": "string",
    "price": "double",
    "quantity": "int",
}
ALWAYS_REQUIRED = ("event_id", "event_time", "member_id", "event_type", "session_id")
ITEM_REQUIRED = ("style_id", "price")

ACCEPTED_COLUMNS = [
    "event_id",
    "event_time",
    "event_date",
    "member_id",
    "event_type",
    "style_id",
    "session_id",
    "price",
    "quantity",
    "subclass_brand_id",
    "division",
    "class",
    "subclass",
    "source",
]
REJECTED_COLUMNS = ["event_date", "source", "record", "reason"]


def _first_failure(rules: list[tuple[Column, Column | str]]) -> Column:
    """The reason of the first rule that fails, or null."""
    reason = F.lit(None).cast("string")
    for failed, why in reversed(rules):
        reason = F.when(failed, why if isinstance(why, Column) else F.lit(why)).otherwise(reason)
    return reason


def parse_records(lines: DataFrame) -> DataFrame:
    """Parse raw lines (`value`, `source`, `landing_date`, `line_no`) into typed fields and a reason.

    JSON is parsed leniently into VARIANT: each field's text is kept beside its typed value, so that a
    missing field and a field of the wrong type are told apart.
    """
    doc = F.try_parse_json("value")
    parsed = lines.withColumn("_doc", doc)
    for name, kind in EVENT_FIELDS.items():
        text = F.try_variant_get("_doc", f"$.{name}", "string")
        typed = F.try_variant_get("_doc", f"$.{name}", kind) if kind != "timestamp" else F.try_to_timestamp(text)
        parsed = parsed.withColumn(f"_{name}_text", text).withColumn(name, typed)

    is_item = F.col("event_type").isin(*ITEM_EVENTS)
    rules: list[tuple[Column, Column | str]] = [(F.col("_doc").isNull(), "malformed_json")]
    for name in ALWAYS_REQUIRED:
        rules.append((F.col(f"_{name}_text").isNull(), f"missing_field:{name}"))
    for name in ITEM_REQUIRED:
        rules.append((is_item & F.col(f"_{name}_text").isNull(), f"missing_field:{name}"))
    for name in EVENT_FIELDS:
        rules.append((F.col(f"_{name}_text").isNotNull() & F.col(name).isNull(), f"bad_type:{name}"))
    rules += [
        (~F.col("event_type").isin(*EVENT_TYPES), "unknown_event_type"),
        (F.to_date("event_time") != F.col("landing_date"), "outside_day"),
        (F.col("price") < 0, "negative_price"),
        (F.col("quantity") <= 0, "non_positive_quantity"),
    ]
    return parsed.withColumn("reason", _first_failure(rules))


def classify_events(lines: DataFrame, catalog: DataFrame, accepted_before: DataFrame) -> DataFrame:
    """Every landed line with its typed fields and `reason` (null when accepted).

    `catalog`: the snapshots of the landing days (`as_of_date`, `style_id` and hierarchy columns);
    `accepted_before`: `event_id`s already accepted on neighbouring days, which are rejected as duplicates.
    Inside the batch the first occurrence of an `event_id` (by file and line) wins.
    """
    parsed = parse_records(lines)
    styles = catalog.select(
        F.col("as_of_date").alias("landing_date"), "style_id", "subclass_brand_id", "division", "class", "subclass"
    )
    parsed = parsed.join(F.broadcast(styles), ["landing_date", "style_id"], "left")
    unknown_style = F.col("event_type").isin(*ITEM_EVENTS) & F.col("subclass_brand_id").isNull()
    parsed = parsed.withColumn("reason", F.coalesce("reason", F.when(unknown_style, F.lit("unknown_style"))))

    seen = accepted_before.select("event_id").distinct().withColumn("_seen", F.lit(True))
    first = Window.partitionBy("event_id").orderBy(F.col("reason").isNotNull(), "source", "line_no")
    valid = F.col("reason").isNull()
    return (
        parsed.join(seen, "event_id", "left")
        .withColumn("_occurrence", F.when(valid, F.row_number().over(first)))
        .withColumn(
            "reason",
            F.when(valid & (F.col("_seen") | (F.col("_occurrence") > 1)), F.lit("duplicate_event_id")).otherwise(
                F.col("reason")
            ),
        )
        .withColumn("event_date", F.col("landing_date"))
        .withColumn("record", F.col("value"))
    )


def accepted_events(classified: DataFrame) -> DataFrame:
    return classified.where(F.col("reason").isNull()).select(*ACCEPTED_COLUMNS)


def rejected_records(classified: DataFrame) -> DataFrame:
    return classified.where(F.col("reason").isNotNull()).select(*REJECTED_COLUMNS)
