"""Reading a foreign CSV file strictly: a record is what the CSV format says it is (a quoted field may hold a
line break, a comma, a doubled quote), and a record that cannot be landed faithfully is rejected with the
rule it broke, never repaired, split or merged.

Rules checked while reading, first broken first: `malformed_csv` (the CSV parser's own errors: text after a
closing quote, a quote left open at the end of the file, a field beyond the parser's field size limit),
`invalid_utf8` (bytes that are not UTF-8: replacing them would merge distinct source ids), `blank_line` (a
record without any field), `wrong_field_count` (more or fewer fields than the header). The adapters then
apply `check_text` and `number` to the fields they read.
"""

import csv
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

MAX_FIELD_BYTES = 256
"""Longest source id or name, in UTF-8 bytes. A member's source id becomes the serving store's key
`s:<id>` (LMDB keys hold at most 511 bytes) and the API takes source ids of at most 256 characters."""
UNSAFE = re.compile(r"[\r\n]")
"""Characters a name of the catalog snapshot cannot hold: a snapshot record is one line (quotes, commas and
backslashes are quoted as CSV quotes them, and load as written)."""


class Rejected(Exception):
    """A record the landing zone cannot carry faithfully; `reason` names the rule it broke."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Record:
    """One CSV record of a source file: `fields` by header name, or the `reason` it cannot be read."""

    number: int
    """1 for the first record after the header."""
    line: int
    """The physical line it starts on (the header's is 1; LF, CRLF and a lone CR each end a line)."""
    text: str
    """As read, without its final line break; undecodable bytes held as surrogates (`surrogateescape`)."""
    fields: dict[str, str] | None
    reason: str | None


def read_records(path: Path, columns: Sequence[str]) -> Iterator[Record]:
    """Every record of the file after its header, which must name `columns` (once each). Streamed: memory
    holds one record (at most one field size limit of text plus a line)."""
    with path.open(newline="", encoding="utf-8", errors="surrogateescape") as handle:
        consumed: list[str] = []

        def lines() -> Iterator[str]:
            for line in handle:
                consumed.append(line)
                yield line

        reader = csv.reader(lines(), strict=True)
        try:
            header = next(reader)
        except (StopIteration, csv.Error) as error:
            raise ValueError(f"{path}: no CSV header ({error or 'empty file'})") from error
        missing = [c for c in columns if c not in header]
        if missing or len(set(header)) != len(header):
            raise ValueError(f"{path}: not this format, missing or repeated columns {missing} (header: {header})")
        number = 0
        while True:
            consumed.clear()
            line = reader.line_num + 1
            try:
                values: list[str] | None = next(reader)
                reason = None
            except StopIteration:
                return
            except csv.Error:
                values, reason = None, "malformed_csv"
            number += 1
            text = "".join(consumed).rstrip("\r\n")
            if reason is None:
                reason = _record_problem(text, values, len(header))
            fields = dict(zip(header, values)) if reason is None else None
            yield Record(number, line, text, fields, reason)


def _record_problem(text: str, values: list[str], width: int) -> str | None:
    try:
        text.encode("utf-8")  # fails exactly where the decoder kept an undecodable byte as a surrogate
    except UnicodeEncodeError:
        return "invalid_utf8"
    if not values:
        return "blank_line"
    return "wrong_field_count" if len(values) != width else None


def printable(text: str) -> str:
    """`text` with its undecodable bytes written as `\\xNN`, for the rejected file."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def check_text(row: dict[str, str], bounded: Sequence[str], names: Sequence[str]) -> None:
    """`too_long:<field>` when a `bounded` field exceeds MAX_FIELD_BYTES, then `unsafe_character:<field>`
    when one of the `names` (what the catalog snapshot holds) has a character it cannot hold."""
    for column in bounded:
        if len(row[column].encode("utf-8")) > MAX_FIELD_BYTES:
            raise Rejected(f"too_long:{column}")
    for column in names:
        if UNSAFE.search(row[column]):
            raise Rejected(f"unsafe_character:{column}")


def number(row: dict[str, str], column: str) -> float | str | None:
    """The field as a float (Python's syntax); text that is not a number is kept as text (ingestion rejects it
    as `bad_type`), an empty field is None. NaN and infinities (`nan`, `inf`, `1e400`) are `non_finite:<field>`:
    JSON cannot hold them."""
    text = row[column]
    try:
        value = float(text)
    except ValueError:
        return text or None
    if not math.isfinite(value):
        raise Rejected(f"non_finite:{column}")
    return value
