"""The events file's lines: one JSON object per event, and a share of malformed records for quarantine to catch."""

import json
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

MALFORMED_KINDS = (
    "invalid_json",
    "missing_member_id",
    "negative_price",
    "unknown_event_type",
    "outside_day",
    "duplicate_event_id",
    "unknown_style",
    "bad_type",
)


def _json_values(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """JSON text of each value as `DataFrame.to_json` writes it, null where missing (filled in as `null` later).

    Strings are ids and event kinds, which hold nothing JSON escapes; floats are prices, written like
    pandas does (`45.0`, `17.3`: Arrow alone would write `45`); times are ISO-8601 UTC with microseconds.
    """
    kind = column.type
    if pa.types.is_timestamp(kind):
        text = pc.cast(pc.cast(column, pa.timestamp("ms")), pa.string())  # "2026-10-31 00:00:00.000"
        text = pc.replace_substring(text, " ", "T", max_replacements=1)
        return pc.binary_join_element_wise('"', text, '000Z"', "")
    if pa.types.is_floating(kind):
        text = pc.cast(column, pa.string())
        return pc.if_else(pc.match_substring(text, "."), text, pc.binary_join_element_wise(text, ".0", ""))
    if pa.types.is_integer(kind):
        return pc.cast(column, pa.string())
    return pc.binary_join_element_wise('"', pc.cast(column, pa.string()), '"', "")


def to_json_lines(events: pd.DataFrame) -> list[str]:
    """One JSON object per event, keys in column order: the lines `to_json(orient="records", lines=True)` gave,
    built column-wise in Arrow because pandas' writer and `strftime` take seconds per million events."""
    if events.empty:
        return []
    table = pa.Table.from_pandas(events, preserve_index=False)
    parts: list = []
    for i, name in enumerate(events.columns):
        parts += [("{" if i == 0 else ",") + json.dumps(name) + ":", _json_values(table.column(name))]
    lines = pc.binary_join_element_wise(*parts, "}", "", null_handling="replace", null_replacement="null")
    return lines.to_pylist()


def corrupt(rng: np.random.Generator, lines: list[str], share: float, day: date) -> list[str]:
    """Replace a share of the records by malformed ones of every kind, so that quarantine is visible.

    Loops over the picked records only (a share of 0.2% by default), so it stays cheap at any scale.
    """
    n_bad = max(len(MALFORMED_KINDS), int(round(len(lines) * share))) if share > 0 else 0
    if len(lines) < 2 or n_bad == 0:
        return lines
    # Line 0 stays intact: the duplicate-id record copies its id.
    picks = rng.choice(np.arange(1, len(lines)), size=min(n_bad, len(lines) - 1), replace=False)
    for n, i in enumerate(sorted(picks)):
        kind = MALFORMED_KINDS[n % len(MALFORMED_KINDS)]
        record = json.loads(lines[i])
        if kind == "invalid_json":
            lines[i] = lines[i][: len(lines[i]) // 2]
            continue
        if kind == "missing_member_id":
            record.pop("member_id")
        elif kind == "negative_price":
            record["price"] = -abs(record["price"] or 9.99)
        elif kind == "unknown_event_type":
            record["event_type"] = "wishlist_share"
        elif kind == "outside_day":
            record["event_time"] = f"{day - timedelta(days=2):%Y-%m-%d}T12:00:00.000000Z"
        elif kind == "duplicate_event_id":
            record["event_id"] = json.loads(lines[0])["event_id"]
        elif kind == "unknown_style":
            record["event_type"], record["style_id"] = "product_view", 99_999_999
        elif kind == "bad_type":
            record["member_id"] = "member-" + str(record["member_id"])
        lines[i] = json.dumps(record)
    return lines
