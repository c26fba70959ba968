"""Validation of catalog and inventory snapshots (CSV), by header name.

A snapshot's columns are found by the names of its header, in any order: the same columns in another
order load the same rows. A header without one of the catalog's columns fails the step with the file and
column named; columns beyond the catalog's are ignored. Every line after the header ends in exactly one
of two tables, like the clickstream's: accepted styles, or rejected lines with the first rule they broke.
A snapshot record is one line: a quoted field cannot span lines, and the lines of one that does are all
rejected (`multiline_record`), so that no line inside it passes for a row of its own.
"""

import csv
from collections.abc import Iterable

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from reco_assets.pipeline.ingestion import BLANK, CATALOG_SCHEMA, ISO_INSTANT, InputLimits, as_read, first_failure

SNAPSHOT_FIELDS = dict(column.split() for column in CATALOG_SCHEMA.split(", "))
"""Column -> Spark type, in the order of the catalog table."""
REQUIRED = (
    "style_id",
    "subclass_brand_id",
    "division",
    "department",
    "class",
    "subclass",
    "price",
    "first_live_at",
    "live_from",
    "live_until",
    "prior_sales",
)
"""Columns that need a value. `brand` may be empty (its brand card is then skipped) and so may
`qty_on_hand` (stock unknown: available)."""
INTEGER = r"^[+-]?\d+$"
NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
NON_FINITE = r"(?i)^[+-]?(nan|inf|infinity)$"


class SnapshotHeaderError(ValueError):
    """A snapshot's header lacks a catalog column or names one twice."""


def read_header(path: str) -> list[str]:
    """The column names of a snapshot's first line (bytes that are not UTF-8 name no catalog column)."""
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        return next(csv.reader(handle), [])


def check_header(path: str, header: list[str]) -> None:
    missing = [name for name in SNAPSHOT_FIELDS if name not in header]
    if missing:
        raise SnapshotHeaderError(f"catalog snapshot {path} has no column {', '.join(missing)} (header: {header})")
    twice = sorted({name for name in header if header.count(name) > 1 and name in SNAPSHOT_FIELDS})
    if twice:
        raise SnapshotHeaderError(f"catalog snapshot {path} names column {', '.join(twice)} more than once")


LINES_SCHEMA = "value binary, source string, file_name string, line long, in_quotes boolean"


def _file_lines(batches):
    """Whole files (`value` as bytes, `source`, `file_name`) in, their lines after the header out, each with
    whether it opens a quoted field it does not close or lies inside one (CSV would read such lines as one
    record, and each of them alone could pass for a row): from a cumulative count of the quotes of the lines
    before it in its file, in numpy, where a window over the lines would shuffle and sort them all."""
    import numpy as np
    import pyarrow as pa

    for batch in batches:
        for i in range(batch.num_rows):
            cut = line_cuts(np.frombuffer(batch.column("value")[i].as_buffer(), np.uint8))
            if cut is None:
                continue
            values, quotes = cut
            opened = np.cumsum(quotes) - quotes
            n = len(values)
            yield pa.RecordBatch.from_pydict(
                {
                    "value": values,
                    "source": pa.repeat(batch.column("source")[i], n),
                    "file_name": pa.repeat(batch.column("file_name")[i], n),
                    "line": pa.array(np.arange(1, n + 1), pa.int64()),
                    "in_quotes": pa.array((opened % 2 == 1) | ((opened + quotes) % 2 == 1)),
                }
            )


def line_cuts(text):
    """A file's bytes (numpy uint8) cut at LF: the lines after the first (the header) as Arrow binary, a CR
    that ends a line dropped, with each line's count of double quotes; None when no line follows the header.
    A final LF ends the last line and opens none. In numpy over the bytes, where Arrow's split, regex and count
    kernels take several times as long per line."""
    import numpy as np
    import pyarrow as pa

    if len(text) and text[-1] == ord("\n"):
        text = text[:-1]
    breaks = np.flatnonzero(text == ord("\n"))
    if len(breaks) == 0:
        return None
    starts = breaks + 1
    ends = np.append(breaks[1:], len(text))
    ends = ends - ((ends > starts) & (text[np.maximum(ends - 1, 0)] == ord("\r")))
    # the bytes from the first line on, less the LFs between lines and the CRs dropped (a line's end, where it
    # is not the text's)
    kept = np.ones(len(text) - starts[0], bool)
    kept[breaks[1:] - starts[0]] = False
    kept[ends[ends < len(text)] - starts[0]] = False
    offsets = np.concatenate([[0], np.cumsum(ends - starts)])
    values = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), len(starts), [None, pa.py_buffer(offsets), pa.py_buffer(text[starts[0] :][kept])]
    ).cast(pa.binary())
    quotes = np.flatnonzero(text == ord('"'))
    return values, np.searchsorted(quotes, ends) - np.searchsorted(quotes, starts)


def snapshot_lines(session: SparkSession, files: list[str]) -> DataFrame:
    """Every line after the header (`value`, `source`, `file_name`, `line`: 1 for the first after the header,
    `in_quotes`: whether it opens a quoted field it does not close or lies inside one).

    A file is read whole (snapshots are small: a line per style) so that each line keeps its exact
    position; a final LF opens no extra line, and the CR of a CRLF line end is dropped. The bytes pass as
    they are (invalid UTF-8 included, which the rules reject).
    """
    whole = session.read.text(files, wholetext=True).select(
        F.col("value").cast("binary").alias("value"),
        F.col("_metadata.file_path").alias("source"),
        F.col("_metadata.file_name").alias("file_name"),
    )
    lines = whole.mapInArrow(_file_lines, LINES_SCHEMA)
    return lines.select(F.col("value").cast("string").alias("value"), "source", "file_name", "line", "in_quotes")


def classify_snapshot(lines: DataFrame, header: list[str], limits: InputLimits) -> DataFrame:
    """Lines of snapshots that share `header`, with the catalog's typed columns and `reason` (null: accepted).

    Types are strict: integers are digits, prices decimal numbers, times ISO-8601 instants with an offset
    (as for events). Inside one snapshot the first line of a style wins; later ones are `duplicate_style`,
    which `with_duplicates` (or the staging pass) marks.
    """
    fields = ", ".join(f"`_c{i}` string" for i in range(len(header))) + ", `_malformed` string"
    # RFC 4180, as Python's csv and pandas write it: a quote inside a quoted field is doubled, and a
    # backslash is a character (Spark's default escape, `\`, would swallow the quote after it)
    options = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_malformed", "escape": '"'}
    parsed = lines.select(*lines.columns, F.from_csv("value", fields, options).alias("_csv"))
    text = {name: F.col("_csv")[f"_c{header.index(name)}"] for name in SNAPSHOT_FIELDS}
    typed, rules = {}, []
    for name, spark_type in SNAPSHOT_FIELDS.items():
        value, shape, extra = text[name], _shape(spark_type), []
        if spark_type == "DOUBLE":
            number = value.try_cast("double")
            extra = [
                (value.rlike(NON_FINITE) | F.isnan(number) | (F.abs(number) == float("inf")), f"non_finite:{name}"),
                (number < 0, f"negative:{name}"),
                (number > limits.max_price, f"out_of_range:{name}"),
            ]
            well_typed = value.rlike(NUMBER) | value.rlike(NON_FINITE)
        elif shape is None:
            number, well_typed = value, F.lit(True)
        else:
            number = F.try_to_timestamp(value) if spark_type == "TIMESTAMP" else value.try_cast(spark_type.lower())
            well_typed = value.rlike(shape) & number.isNotNull()
            if spark_type == "BIGINT":
                floor = 1 if name.endswith("_id") else 0
                extra = [(number < floor, f"out_of_range:{name}")]
        typed[name] = F.when(well_typed, number)
        missing = [(value.isNull(), f"missing_field:{name}")] if name in REQUIRED else []
        rules.append((missing, [(value.isNotNull() & ~well_typed, f"bad_type:{name}")], extra))
    ordered: list[tuple[Column, str]] = [
        (F.col("value").rlike(BLANK), "blank_line"),
        (~F.is_valid_utf8("value"), "invalid_utf8"),
        (F.col("in_quotes"), "multiline_record"),
        (F.col("_csv._malformed").isNotNull(), "wrong_field_count"),
    ]
    for part in range(3):  # every missing field, then every bad type, then every range
        ordered += [rule for each in rules for rule in each[part]]
    ordered.append((typed["live_until"] < typed["live_from"], "out_of_range:live_until"))
    return parsed.select(
        *lines.columns,
        *[column.alias(name) for name, column in typed.items()],
        as_read(F.col("value")).alias("record"),
        first_failure(ordered).alias("reason"),
    )


def with_duplicates(classified: DataFrame) -> DataFrame:
    """Classified lines with `duplicate_style` marked (`duplicates_marked`), as a frame; staging marks them in
    the pass that writes the two tables (`split_on_reason`)."""
    return classified.mapInArrow(duplicates_marked, classified.schema)


def duplicates_marked(batches):
    """Classified lines in (at least `source`, `line`, `style_id`, `reason`), the same out with
    `duplicate_style` as the reason of each valid line whose style an earlier line of its file holds (valid or
    not). Each file's lines reach one task whole and in order (`snapshot_lines` reads a file in one task, and
    nothing after it moves rows), so the style ids seen so far in each file tell, where a window over (file,
    style) would shuffle and sort every line. Lines of a file that do not come in that order (a file split
    between tasks) fail the task rather than let a duplicate through."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    seen: dict[str, np.ndarray] = {}
    next_line: dict[str, int] = {}
    none = np.empty(0, np.int64)
    for batch in batches:
        files = pc.dictionary_encode(batch.column("source"))
        codes, lines = files.indices.to_numpy(zero_copy_only=False), batch.column("line").to_numpy()
        styles = batch.column("style_id")
        known = pc.is_valid(styles).to_numpy(zero_copy_only=False)
        ids = pc.fill_null(styles, 0).to_numpy()
        again = np.zeros(batch.num_rows, bool)
        for code, name in enumerate(files.dictionary.to_pylist()):
            rows = np.flatnonzero(codes == code)
            first = next_line.get(name, 1)
            if not np.array_equal(lines[rows], np.arange(first, first + len(rows))):
                raise RuntimeError(f"the lines of {name} did not reach one task whole and in order")
            next_line[name] = first + len(rows)
            rows = rows[known[rows]]
            styled = ids[rows]
            earlier = np.ones(len(rows), bool)
            earlier[np.unique(styled, return_index=True)[1]] = False  # the first line of each style in the batch
            again[rows] = earlier | np.isin(styled, seen.get(name, none))
            seen[name] = np.union1d(seen.get(name, none), styled)
        reason = batch.column("reason")
        marked = pc.if_else(pc.and_(pa.array(again), pc.is_null(reason)), pa.scalar("duplicate_style"), reason)
        yield batch.set_column(batch.schema.get_field_index("reason"), "reason", marked)


def _shape(spark_type: str) -> str | None:
    """The text an integer or time must match before it is cast (casts alone accept `7.0`, ` 7`, dates)."""
    return {"BIGINT": INTEGER, "TIMESTAMP": ISO_INSTANT}.get(spark_type)


def classify_snapshots(session: SparkSession, files: Iterable[str], limits: InputLimits) -> tuple[DataFrame, DataFrame]:
    """(every line of the snapshot files with its typed columns and `reason`, duplicates not yet marked
    (`with_duplicates`); the lines as read). Files are grouped by header (most share one), each group parsed by
    its own header's names."""
    headers = {path: read_header(path) for path in files}
    for path, header in headers.items():
        check_header(path, header)
    groups: dict[tuple[str, ...], list[str]] = {}
    for path, header in headers.items():
        groups.setdefault(tuple(header), []).append(path)
    read = [(snapshot_lines(session, paths), list(header)) for header, paths in groups.items()]
    classified = [classify_snapshot(lines, header, limits) for lines, header in read]
    return _union(classified), _union([lines for lines, _ in read])


def _union(frames: list[DataFrame]) -> DataFrame:
    union = frames[0]
    for frame in frames[1:]:
        union = union.unionByName(frame)
    return union


def accepted_styles(classified: DataFrame, keys: list[str]) -> DataFrame:
    """The accepted lines' catalog columns, then the `keys` carried along (e.g. the day)."""
    return classified.where(F.col("reason").isNull()).select(*SNAPSHOT_FIELDS, *keys)


def rejected_lines(classified: DataFrame, keys: list[str]) -> DataFrame:
    """The rejected lines as read, with their file, line number and reason, then the `keys`."""
    return classified.where(F.col("reason").isNotNull()).select("source", "line", "record", "reason", *keys)
