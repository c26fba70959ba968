"""Ingestion's rules for one posted clickstream event (`POST /v1/events`), in plain Python: the API answers
each event as ingestion would judge it once landed, and lands only the events it accepts.

The rules, their reasons and their order are those of `parse_records` (pipeline/ingestion.py, the README's
"Ingestion rules") that apply to one parsed JSON value: `malformed_json`, `not_an_object`, `missing_field`,
`bad_type`, `empty_field`, `out_of_range` of the ids, `unknown_event_type`, `outside_day`, `negative_price`,
`out_of_range:price`, `non_positive_quantity`, `out_of_range:quantity`. The others do not apply here:
`blank_line`, `invalid_utf8` and `trailing_content` are rules of a file's lines (the request body is read
strictly instead, see `read_batch`), and `unknown_style` and `duplicate_event_id` need the day's catalog and
the events of other batches, which ingestion still checks.

Two deliberate differences: an anonymous shopper's event, without `member_id`, may be accepted (it is landed,
and ingestion quarantines it as `missing_field:member_id`); and a number beyond a double (`1e400`, read as
infinite) in a field outside the contract is `out_of_range:<field>`, as its landing line could not hold it
(JSON has no infinity), where ingestion would ignore the field.

Written by hand, mirroring Spark's behaviour as tested against it (reco_assets_tests/serving/
test_event_rules.py): no JSON library checks ingestion's exact rules.
"""

import json
import math
import re
from collections.abc import Callable
from datetime import date

from reco_assets.constants import EVENT_TYPES, ITEM_EVENTS
from reco_assets.pipeline.ingestion import (
    ALWAYS_REQUIRED,
    EVENT_FIELDS,
    ID_FIELDS,
    INTEGER_FIELDS,
    ITEM_REQUIRED,
    TEXT_FIELDS,
    InputLimits,
)

MAX_LONG = 2**63 - 1
MIN_LONG = -(2**63)
DECIMAL_LIMIT = 10**38
"""An integer of more digits than a decimal's 38 is read as a double by Spark: not an integer any more."""
LONGEST_NUMBER = 1000
"""Digits of a JSON number Spark's parser reads at most (Jackson's limit): a longer one fails the line."""
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
"""Left in a string by an escape such as `"\\ud800"` without its pair: Spark's parser fails the line."""
WHITE_SPACE = re.compile(r"[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*")
"""Ingestion's `BLANK`: Java's Unicode white space, which is not Python's `isspace` (U+001C-U+001F)."""
INSTANT = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]{1,9})?"
    r"(?:Z|([+-])([0-9]{2}):([0-9]{2}))(?:\r\n|\r|\n)?"
)
"""Ingestion's `ISO_INSTANT` as Java reads it: its `$` also matches before a final line end, which Spark's
time parser then trims (other line ends, U+0085 or U+2028, match but do not parse)."""
DAYS_IN_400_YEARS = 146_097
"""The Gregorian calendar repeats every 400 years: a year of Spark's (0 to 9999) is counted as its namesake in
400 to 799, which Python's dates hold."""
LONGEST_OFFSET = 18 * 60
"""Minutes of the largest offset Spark accepts (`+18:00`)."""


class BadBatch(ValueError):
    """A request body that is not a batch of events; its message says why, shortly."""


class Unreadable(dict):
    """A JSON value ingestion's parser refuses (the line is `malformed_json`): an object naming a member twice,
    or holding at any depth a lone surrogate or a number longer than LONGEST_NUMBER digits (such a number
    reads as an empty one). Its members are kept, the last of a repeated name winning."""

    repeats_names = False


def _unreadable(value: object) -> bool:
    """Whether `value` (read by `read_batch`) holds what ingestion's parser refuses; objects were checked as
    they were read."""
    if isinstance(value, str):
        return LONE_SURROGATE.search(value) is not None
    if isinstance(value, list):
        return any(_unreadable(item) for item in value)
    return isinstance(value, Unreadable)


def _object(pairs: list[tuple[str, object]]) -> dict:
    """An object as read (`object_pairs_hook`): an `Unreadable` when ingestion's parser would refuse it."""
    names = {name for name, _ in pairs}
    if len(names) == len(pairs) and not any(_unreadable(name) or _unreadable(value) for name, value in pairs):
        return dict(pairs)
    unreadable = Unreadable(pairs)
    unreadable.repeats_names = len(names) < len(pairs)
    return unreadable


def _number(read: Callable[[str], object]) -> Callable[[str], object]:
    """A reader of JSON numbers (`parse_int`, `parse_float`) that reads one too long for Spark as unreadable,
    before Python's own limit on an integer's digits (4300) fails the whole body."""

    def parse(text: str) -> object:
        if len(text) > LONGEST_NUMBER and sum(ch.isdigit() for ch in text) > LONGEST_NUMBER:
            return Unreadable()
        return read(text)

    return parse


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def read_batch(body: bytes, max_events: int) -> list[object]:
    """The events of a request body `{"events": [...]}`, read strictly: UTF-8 JSON, one object, no name twice
    at its top, no `NaN` or `Infinity`, nothing after it, at most `max_events` events; else `BadBatch`.

    An event ingestion's parser would refuse (a name twice in it at any depth, a lone surrogate, a number of
    more than 1000 digits) is read as an `Unreadable` and is `malformed_json` to `event_reason`: it fails
    alone. Integers stay exact; `1e400` reads as infinity. A body nested deeper than Python reads (about
    1000 levels, Spark's limit too) fails whole."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadBatch("the body is not UTF-8") from None
    try:
        document = json.loads(
            text,
            object_pairs_hook=_object,
            parse_int=_number(int),
            parse_float=_number(float),
            parse_constant=_no_constant,
        )
    except RecursionError:
        raise BadBatch("the body is nested too deeply") from None
    except ValueError as error:
        raise BadBatch(f"the body is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise BadBatch("the body is not a JSON object")
    if isinstance(document, Unreadable) and document.repeats_names:
        raise BadBatch("the body names a member twice")
    events = document.get("events")
    if not isinstance(events, list):
        raise BadBatch('the body has no "events" list')
    if len(events) > max_events:
        raise BadBatch(f"more than {max_events} events")
    return events


def _utc_day(text: str) -> int | None:
    """The proleptic ordinal of the UTC day of an instant written as `ISO_INSTANT` wants, or None when
    `text` is not one or names no real instant (`2026-02-30`, hour 24, second 60, offset beyond 18:00), as
    Spark's `try_to_timestamp` reads it."""
    found = INSTANT.fullmatch(text)
    if found is None:
        return None
    year, month, day, hour, minute, second = (int(found[group]) for group in range(1, 7))
    offset = 0 if found[7] is None else int(found[8]) * 60 + int(found[9])
    if hour > 23 or minute > 59 or second > 59 or (found[7] and int(found[9]) > 59) or offset > LONGEST_OFFSET:
        return None
    try:
        local = date(year % 400 + 400, month, day).toordinal() + (year // 400 - 1) * DAYS_IN_400_YEARS
    except ValueError:
        return None
    minutes = hour * 60 + minute - (offset if found[7] == "+" else -offset)
    return local + minutes // (24 * 60)


def _double(number: int | float) -> float:
    """A JSON number as Spark compares it, as a double."""
    try:
        return float(number)
    except OverflowError:
        return math.inf if number > 0 else -math.inf


def _well_typed(name: str, value: object) -> bool:
    """Whether a present field has the JSON type ingestion requires, without coercion."""
    if name in TEXT_FIELDS:
        return isinstance(value, str)
    if name in INTEGER_FIELDS:
        return isinstance(value, int) and not isinstance(value, bool) and -DECIMAL_LIMIT < value < DECIMAL_LIMIT
    if name == "price":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, str) and _utc_day(value) is not None  # event_time


def _infinite(value: object) -> bool:
    """Whether `value` holds a number read as infinite, at any depth."""
    if isinstance(value, float):
        return math.isinf(value)
    if isinstance(value, dict):
        return any(_infinite(item) for item in value.values())
    if isinstance(value, list):
        return any(_infinite(item) for item in value)
    return False


def event_reason(record: object, day: date, limits: InputLimits, anonymous: bool = True) -> str | None:
    """The reason ingestion would reject `record` (as `read_batch` read it) landed in `day`'s file with: the
    first rule it breaks, or None when it is accepted. With `anonymous`, an event without `member_id` is
    accepted (a present one is still checked)."""
    if _unreadable(record):
        return "malformed_json"
    if not isinstance(record, dict):
        return "not_an_object"
    value = {name: record.get(name) for name in EVENT_FIELDS}  # None: absent or null
    kind = value["event_type"]
    required = [name for name in ALWAYS_REQUIRED if not (anonymous and name == "member_id")]
    required += ITEM_REQUIRED if isinstance(kind, str) and kind in ITEM_EVENTS else ()
    for name in required:
        if value[name] is None:
            return f"missing_field:{name}"
    for name in EVENT_FIELDS:
        if value[name] is not None and not _well_typed(name, value[name]):
            return f"bad_type:{name}"
    for name in TEXT_FIELDS:
        if WHITE_SPACE.fullmatch(value[name]):
            return f"empty_field:{name}"
    for name in ID_FIELDS:
        if value[name] is not None and not 0 < value[name] <= MAX_LONG:
            return f"out_of_range:{name}"
    if kind not in EVENT_TYPES:
        return "unknown_event_type"
    if _utc_day(value["event_time"]) != day.toordinal():
        return "outside_day"
    price, quantity = value["price"], value["quantity"]
    if price is not None and _double(price) < 0:
        return "negative_price"
    if price is not None and _double(price) > limits.max_price:
        return "out_of_range:price"
    if quantity is not None:
        fits = MIN_LONG <= quantity <= MAX_LONG
        if fits and quantity <= 0:
            return "non_positive_quantity"
        if not fits or quantity > limits.max_quantity:
            return "out_of_range:quantity"
    for name, field in record.items():
        if _infinite(field):  # not ingestion's: the landing line could not hold it
            return f"out_of_range:{name}"
    return None


def landing_line(record: dict) -> bytes:
    """The line an accepted event is landed as (without its line end): the object as posted, fields outside
    the contract included, as compact UTF-8 JSON."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
