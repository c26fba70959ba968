"""Validation of landed clickstream records and of catalog snapshots.

Every physical line of a landing file ends in exactly one of two tables: accepted events, or rejected
records with the first rule they broke (blank lines included). Late-arrival policy: a day's landing file is
authoritative for that UTC day; a record stamped outside the day is rejected (`outside_day`) and kept in
quarantine, to be re-landed in its own day's file and that day re-run.
"""

from dataclasses import dataclass

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
TEXT_FIELDS = ("event_id", "event_type", "session_id")
"""JSON strings with more than white space."""
INTEGER_FIELDS = ("member_id", "style_id", "quantity")
"""JSON integers: no fraction, no exponent."""
ID_FIELDS = ("member_id", "style_id")
"""Integers from 1 to 2^63 - 1."""
READ_AS = {**EVENT_FIELDS, "event_time": "string", "quantity": "bigint"}
"""What a field of the right JSON type is read as: the time is parsed from its text, the quantity is checked
against its cap before it is narrowed to an int."""

ISO_INSTANT = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$"
"""`event_time`: ISO-8601 to the second with an explicit offset, as the simulator (`2026-10-31T10:00:00.000000Z`)
and the adapters (`2026-10-31T10:00:00Z`) write it. Digits beyond the microsecond are dropped."""
BLANK = r"(?U)^\s*$"
"""Empty or white space only (Unicode white space)."""
OBJECT_START = r"^[ \t\n\r]*\{"
"""A line holding one JSON value holds an object when its first character other than JSON white space is `{`."""
FLAT_OBJECT = r"^[ \t\n\r]*\{[^}]*\}[ \t\n\r]*\z"
"""A line that parses and holds one `}`, its last character but white space: an object with nothing after it."""

API_SOURCE = r"/\d{4}-\d{2}-\d{2}\.api-[A-Za-z0-9_-]+\.jsonl$"
"""The path of a file of events posted to the API (`resources/landing.py`): read after the site's file."""

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
    "department",
    "class",
    "subclass",
    "source",
]
REJECTED_COLUMNS = ["event_date", "source", "record", "reason"]


@dataclass(frozen=True)
class InputLimits:
    """Largest plausible values (the `ingestion` settings)."""

    max_quantity: int
    max_price: float


def as_read(line: Column) -> Column:
    """A rejected line as stored: as read, but with bytes that are not UTF-8 replaced (U+FFFD), as the
    table's text must be valid for every reader. Such a line is rejected as `invalid_utf8`."""
    return F.make_valid_utf8(line)


def first_failure(rules: list[tuple[Column, Column | str]]) -> Column:
    """The reason of the first rule that fails, or null."""
    reason = F.lit(None).cast("string")
    for failed, why in reversed(rules):
        reason = F.when(failed, why if isinstance(why, Column) else F.lit(why)).otherwise(reason)
    return reason


def _one_value(line: Column) -> Column:
    """True when `line` holds one JSON value and nothing but white space after it.

    `try_parse_json` reads the first value and ignores what follows (`{..} x`, `{..}{..}` and `{..},` parse).
    The line wrapped as an array element and as an object member parses both ways only when nothing
    follows the value: a tail opening with `]` breaks the object, one opening with `}` the array, one
    opening with `,` one of them (an array wants a value next, an object `"name":`), anything else both.
    A flat object (most records) is told by a pattern, without parsing again.
    """
    as_element = F.try_parse_json(F.concat(F.lit("["), line, F.lit("]")))
    as_member = F.try_parse_json(F.concat(F.lit('{"_":'), line, F.lit("}")))
    return line.rlike(FLAT_OBJECT) | (as_element.isNotNull() & as_member.isNotNull())


def parse_records(lines: DataFrame, limits: InputLimits) -> DataFrame:
    """Parse raw lines (`value`, `source`, `landing_date`, `line_no`) into typed fields and a reason.

    Each field's JSON type is read from the VARIANT and required as is, without coercion: `"7"`, `7.0`,
    `7e0` and `true` are not the integer 7, `"19.99"` is not a price. `schema_of_variant` names the type:
    null when the field is absent, `VOID` for a JSON null (counted as absent), `STRING`, `BOOLEAN`,
    `BIGINT` (an integer within int64), `DECIMAL(p,s)` (a number with a fraction point, `7.0` included as
    `DECIMAL(1,0)`, or an integer beyond int64), `DOUBLE` (a number with an exponent, or beyond a decimal's
    38 digits), `OBJECT<..>`, `ARRAY<..>`. Fields other than the event's are ignored.
    """
    # The CR of a CRLF line end is JSON white space (and blank): it needs no stripping.
    each_field = "struct<" + ", ".join(f"{name}: variant" for name in EVENT_FIELDS) + ">"
    as_variants = F.try_variant_get("_doc", "$", each_field)  # null when the value is no object
    parsed = lines.select(*lines.columns, F.try_parse_json("value").alias("_doc"))
    parsed = parsed.select(*lines.columns, "_doc", as_variants.alias("_json"))
    kinds = [F.schema_of_variant(F.col("_json")[name]).alias(f"_{name}_kind") for name in EVENT_FIELDS]
    parsed = parsed.select(*parsed.columns, *kinds)
    kind = {name: F.col(f"_{name}_kind") for name in EVENT_FIELDS}
    read = {name: F.col("_json")[name].try_cast(spark_type) for name, spark_type in READ_AS.items()}
    present = {name: kind[name].isNotNull() & (kind[name] != "VOID") for name in EVENT_FIELDS}
    # An integer beyond int64 is a DECIMAL(p,0), and so is 7.0: only the former does not fit a bigint.
    beyond_int64 = {name: kind[name].rlike(r"^DECIMAL\(\d+,0\)$") & read[name].isNull() for name in INTEGER_FIELDS}
    is_number = kind["price"].isin("BIGINT", "DOUBLE") | kind["price"].startswith("DECIMAL")
    time_text = F.when(kind["event_time"] == "STRING", read["event_time"])
    typed = {
        **{name: F.when(kind[name] == "STRING", read[name]) for name in TEXT_FIELDS},
        "event_time": F.when(time_text.rlike(ISO_INSTANT), F.try_to_timestamp(time_text)),
        **{name: F.when(kind[name] == "BIGINT", read[name]) for name in INTEGER_FIELDS},
        "price": F.when(is_number, read["price"]),
    }
    parsed = parsed.select(*parsed.columns, *[typed[name].alias(f"_{name}") for name in EVENT_FIELDS])
    field = {name: F.col(f"_{name}") for name in EVENT_FIELDS}
    well_typed = {
        **{name: kind[name] == "STRING" for name in TEXT_FIELDS},
        "event_time": field["event_time"].isNotNull(),
        **{name: (kind[name] == "BIGINT") | beyond_int64[name] for name in INTEGER_FIELDS},
        "price": is_number,
    }

    is_item = field["event_type"].isin(*ITEM_EVENTS)
    rules: list[tuple[Column, Column | str]] = [
        (F.col("value").rlike(BLANK), "blank_line"),
        (~F.is_valid_utf8("value"), "invalid_utf8"),
        (F.col("_doc").isNull(), "malformed_json"),
        (~_one_value(F.col("value")), "trailing_content"),
        (~F.col("value").rlike(OBJECT_START), "not_an_object"),
    ]
    rules += [(~present[name], f"missing_field:{name}") for name in ALWAYS_REQUIRED]
    rules += [(is_item & ~present[name], f"missing_field:{name}") for name in ITEM_REQUIRED]
    rules += [(present[name] & ~well_typed[name], f"bad_type:{name}") for name in EVENT_FIELDS]
    rules += [(field[name].rlike(BLANK), f"empty_field:{name}") for name in TEXT_FIELDS]
    rules += [(beyond_int64[name] | (field[name] <= 0), f"out_of_range:{name}") for name in ID_FIELDS]
    rules += [
        (~field["event_type"].isin(*EVENT_TYPES), "unknown_event_type"),
        (F.to_date(field["event_time"]) != F.col("landing_date"), "outside_day"),
        (field["price"] < 0, "negative_price"),
        (field["price"] > limits.max_price, "out_of_range:price"),  # 1e400 parses as +Infinity: caught here
        (field["quantity"] <= 0, "non_positive_quantity"),
        (beyond_int64["quantity"] | (field["quantity"] > limits.max_quantity), "out_of_range:quantity"),
    ]
    # quantity was read as a bigint for its range rules; an accepted one fits an int
    accepted_types = [field[name].try_cast(spark_type).alias(name) for name, spark_type in EVENT_FIELDS.items()]
    return parsed.select(*lines.columns, *accepted_types, first_failure(rules).alias("reason"))


def classify_events(lines: DataFrame, catalog: DataFrame, accepted_before: DataFrame, limits: InputLimits) -> DataFrame:
    """Every landed line with its typed fields and `reason` (null when accepted).

    `catalog`: the snapshots of the landing days (`as_of_date`, `style_id` and hierarchy columns);
    `accepted_before`: `event_id`s already accepted on neighbouring days, which are rejected as duplicates.
    Inside the batch the first occurrence of an `event_id` (by file and line, the site's file before the API's
    files of the day) wins.
    """
    parsed = parse_records(lines, limits)
    styles = catalog.select(
        F.col("as_of_date").alias("landing_date"),
        "style_id",
        "subclass_brand_id",
        "division",
        "department",
        "class",
        "subclass",
    )
    parsed = parsed.join(F.broadcast(styles), ["landing_date", "style_id"], "left")
    unknown_style = F.col("event_type").isin(*ITEM_EVENTS) & F.col("subclass_brand_id").isNull()
    parsed = parsed.withColumn("reason", F.coalesce("reason", F.when(unknown_style, F.lit("unknown_style"))))

    seen = accepted_before.select("event_id").distinct().withColumn("_seen", F.lit(True))
    posted = F.col("source").rlike(API_SOURCE)
    first = Window.partitionBy("event_id").orderBy(F.col("reason").isNotNull(), posted, "source", "line_no")
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
        .withColumn("record", as_read(F.col("value")))
    )


def accepted_events(classified: DataFrame) -> DataFrame:
    return classified.where(F.col("reason").isNull()).select(*ACCEPTED_COLUMNS)


def rejected_records(classified: DataFrame) -> DataFrame:
    return classified.where(F.col("reason").isNotNull()).select(*REJECTED_COLUMNS)


def split_on_reason(accepted: tuple[str, list[str]], rejected: tuple[str, list[str]], mark=None):
    """The task half of staging one classification as its two tables in one pass (`Lakehouse.stage`'s
    transform): the rows without a `reason` as the columns of `accepted` = (table, columns), the others as
    those of `rejected`; `mark` (batches in, batches out) first sets reasons that take the rows before into
    account (a snapshot's duplicates)."""
    import pyarrow.compute as pc

    def split(batches):
        for batch in batches if mark is None else mark(batches):
            valid = pc.is_null(batch.column("reason"))
            yield accepted[0], batch.filter(valid).select(accepted[1])
            yield rejected[0], batch.filter(pc.invert(valid)).select(rejected[1])

    return split
