"""The API's check of posted events against ingestion's rules, in plain Python, compared with the real Spark
rules: every hostile event below, as posted and as the API would land it, goes through `parse_records` (one
DataFrame, one run), whose reason must be the expected one and `event_reason`'s."""

import json

import pytest

from reco_assets.pipeline.ingestion import parse_records
from reco_assets.serving.event_rules import (
    WHITE_SPACE,
    BadBatch,
    Unreadable,
    event_reason,
    landing_line,
    read_batch,
)
from reco_assets_tests.conftest import DAY
from reco_assets_tests.pipeline.test_ingestion_rules import CASES as INGESTION_CASES
from reco_assets_tests.pipeline.test_ingestion_rules import DROP, LIMITS, rec


def time(event_id: str, text: str) -> str:
    return rec(event_id, event_time=json.dumps(text))


def purchase(event_id: str, quantity: str) -> str:
    return rec(event_id, event_type='"purchase"', quantity=quantity)


NINES_38 = "9" * 38
"""The largest integer Spark reads as a decimal: beyond int64, but an integer."""
NINES_39 = "9" * 39
"""Read as a double by Spark: no integer any more."""

OWN_CASES = [
    # accepted (the README's R, and types at their limits)
    ("R", rec("ok"), None),
    ("simulator time", time("ok-sim", "2026-10-31T10:00:00.000000Z"), None),
    ("time ending in an escaped LF", time("ok-lf", "2026-10-31T10:00:00Z\n"), None),
    ("time ending in an escaped CRLF", time("ok-crlf", "2026-10-31T10:00:00Z\r\n"), None),
    ("time ending in an escaped CR", time("ok-cr", "2026-10-31T10:00:00+01:00\r"), None),
    ("extra fields", rec("ok-extra", campaign='"autumn"', referrer='{"page": 3, "tags": [1, {"a": null}]}'), None),
    ("extra field with an empty name", rec("ok-empty-name", **{"": "1"}), None),
    ("names in capitals are other fields", rec("ok-caps-name", EVENT_ID='"x"', Event_Type="5"), None),
    ("an escaped name", rec("", event_id=DROP, **{"event\\u005fid": '"ok-escaped-name"'}), None),
    ("page view with nulls", rec("ok-nulls", event_type='"page_view"', style_id="null", price="null"), None),
    ("boutique view", rec("ok-boutique", event_type='"boutique_view"', style_id=DROP, price=DROP), None),
    ("null quantity", rec("ok-null-qty", quantity="null"), None),
    ("price minus zero", rec("ok-minus-zero", price="-0"), None),
    ("price minus zero point zero", rec("ok-minus-zero-point", price="-0.0"), None),
    ("price underflowing to zero", rec("ok-underflow", price="1e-400"), None),
    ("price rounding to the cap", rec("ok-round-cap", price="500.00000000000000000001"), None),
    ("style not in the catalog (unknown_style is not ours)", rec("ok-style", style_id="999"), None),
    ("unicode text", rec("ok-\u00e9\U0001f600", session_id='"s-\\ud83d\\ude00"'), None),
    ("NUL in a string", rec("", event_id='"ok-\\u0000"'), None),
    ("U+001C is no white space to Java", rec("ok-fs", session_id='"\\u001c"'), None),
    ("zero width space", rec("ok-zwsp", session_id='"\\u200b"'), None),
    ("an integer of 1000 digits outside the contract", rec("ok-long", extra="1" * 1000), None),
    ("the largest double outside the contract", rec("ok-max-double", extra="1.7976931348623157e308"), None),
    ("a deep extra field", rec("ok-deep", extra="[" * 50 + "]" * 50), None),
    # malformed_json: what Spark's parser refuses inside one event
    ("duplicate key", rec("m-dup", event_type='"page_view", "event_type": "purchase"'), "malformed_json"),
    ("same key escaped", rec("m-dup-escaped", **{"event\\u005fid": '"m2"'}), "malformed_json"),
    ("nested duplicate key", rec("m-nested-dup", extra='{"a": 1, "a": 2}'), "malformed_json"),
    ("duplicate key in an array", rec("m-array-dup", extra='[1, [{"a": 1, "a": 2}]]'), "malformed_json"),
    ("duplicate empty names", rec("m-empty-dup", extra='{"": 1, "": 2}'), "malformed_json"),
    ("lone high surrogate", rec("", event_id='"m-\\ud800"'), "malformed_json"),
    ("lone low surrogate outside the contract", rec("m-low", extra='["\\udc00x"]'), "malformed_json"),
    ("lone surrogate in a name", rec("m-name", **{"x\\ud800": "1"}), "malformed_json"),
    ("a number of 1001 digits", rec("m-long", extra="1" * 1001), "malformed_json"),
    ("a member id of 1001 digits", rec("m-long-member", member_id="1" * 1001), "malformed_json"),
    ("a fraction of 1001 digits", rec("m-long-fraction", extra="1." + "0" * 1000), "malformed_json"),
    ("an exponent past 1000 digits", rec("m-long-exponent", extra="1" * 1000 + "e1"), "malformed_json"),
    ("a lone surrogate for an event", '"\\ud800"', "malformed_json"),
    ("a number of 1001 digits for an event", "1" * 1001, "malformed_json"),
    # not_an_object
    # missing_field (absent or null), in the rules' order
    (
        "purchase with null style",
        rec("mf-null-style", event_type='"purchase"', style_id="null"),
        "missing_field:style_id",
    ),
    ("missing style beats a bad member", rec("mf-first", member_id='"7"', style_id=DROP), "missing_field:style_id"),
    ("no style on a kind in capitals", rec("mf-caps", event_type='"Purchase"', style_id=DROP), "unknown_event_type"),
    ("no style on a numeric kind", rec("mf-numeric", event_type="5", style_id=DROP), "bad_type:event_type"),
    # bad_type: the JSON type, never coerced
    ("object event_id", rec("", event_id='{"a": 1}', session_id='"bt-id-object"'), "bad_type:event_id"),
    ("space for T (README)", time("bt-time-space", "2026-10-31 10:00:00"), "bad_type:event_time"),
    ("ten fractional digits", time("bt-time-ten", "2026-10-31T10:00:00.1234567890Z"), "bad_type:event_time"),
    ("April 31", time("bt-time-apr31", "2026-04-31T10:00:00Z"), "bad_type:event_time"),
    ("February 29 of 2100", time("bt-time-2100", "2100-02-29T10:00:00Z"), "bad_type:event_time"),
    ("month 13", time("bt-time-month", "2026-13-10T10:00:00Z"), "bad_type:event_time"),
    ("hour 24", time("bt-time-hour", "2026-10-31T24:00:00Z"), "bad_type:event_time"),
    ("minute 60", time("bt-time-minute", "2026-10-31T10:60:00Z"), "bad_type:event_time"),
    ("leap second", time("bt-time-second", "2026-10-31T23:59:60Z"), "bad_type:event_time"),
    ("offset beyond 18 hours", time("bt-time-offset", "2026-10-31T10:00:00+18:01"), "bad_type:event_time"),
    ("offset minute 60", time("bt-time-offset-minute", "2026-10-31T10:00:00+05:60"), "bad_type:event_time"),
    ("ending in U+2028", time("bt-time-ls", "2026-10-31T10:00:00Z\u2028"), "bad_type:event_time"),
    ("ending in U+0085", time("bt-time-nel", "2026-10-31T10:00:00Z\u0085"), "bad_type:event_time"),
    ("ending in two LFs", time("bt-time-two-lf", "2026-10-31T10:00:00Z\n\n"), "bad_type:event_time"),
    ("ending in a space", time("bt-time-space-end", "2026-10-31T10:00:00Z "), "bad_type:event_time"),
    ("Arabic-Indic digit", time("bt-time-digit", "\u0662026-10-31T10:00:00Z"), "bad_type:event_time"),
    ("member_id true", rec("bt-member-true", member_id="true"), "bad_type:member_id"),
    ("member_id false", rec("bt-member-false", member_id="false"), "bad_type:member_id"),
    ("member_id of 39 digits", rec("bt-member-39", member_id=NINES_39), "bad_type:member_id"),
    ("member_id of minus 39 digits", rec("bt-member-minus-39", member_id="-" + NINES_39), "bad_type:member_id"),
    ("price object", rec("bt-price-object", price="{}"), "bad_type:price"),
    ("quantity of 39 digits", purchase("bt-qty-39", NINES_39), "bad_type:quantity"),
    # empty_field
    (
        "unicode spaces session_id",
        rec("ef-session-unicode", session_id='"\\u00a0\\u2003\\u3000"'),
        "empty_field:session_id",
    ),
    # out_of_range of the ids
    ("member minus 0", rec("or-member-minus-zero", member_id="-0"), "out_of_range:member_id"),
    ("member of 38 digits", rec("or-member-38", member_id=NINES_38), "out_of_range:member_id"),
    ("member of minus 38 digits", rec("or-member-minus-38", member_id="-" + NINES_38), "out_of_range:member_id"),
    ("smallest int64 style", rec("or-style-min", style_id="-9223372036854775808"), "out_of_range:style_id"),
    # unknown_event_type
    ("kind with a space", rec("u-space", event_type='" purchase"'), "unknown_event_type"),
    # outside_day (UTC)
    ("previous day by 18 hours", time("od-plus-18", "2026-10-31T10:00:00+18:00"), "outside_day"),
    ("next day by 18 hours", time("od-minus-18", "2026-10-31T10:00:00-18:00"), "outside_day"),
    ("year 0", time("od-year-0", "0000-01-01T00:00:00+01:00"), "outside_day"),
    ("into year 10000", time("od-year-10000", "9999-12-31T23:30:00-02:00"), "outside_day"),
    # negative_price
    ("a negative price on a page view", rec("np-page", event_type='"page_view"', price="-1"), "negative_price"),
    # out_of_range:price
    ("the first double above the cap", rec("op-ulp", price="500.00000000000006"), "out_of_range:price"),
    ("an integer of 39 digits", rec("op-39", price=NINES_39), "out_of_range:price"),
    ("an integer beyond a double", rec("op-400", price="1" + "0" * 400), "out_of_range:price"),
    # non_positive_quantity
    ("smallest int64 units", purchase("nq-min", "-9223372036854775808"), "non_positive_quantity"),
    # out_of_range:quantity
    ("README's units", purchase("oq-readme", "74215"), "out_of_range:quantity"),
    ("units below int64", purchase("oq-small", "-9223372036854775809"), "out_of_range:quantity"),
    ("units of 38 digits", purchase("oq-38", NINES_38), "out_of_range:quantity"),
]
LINE_RULES = {"blank_line", "invalid_utf8", "trailing_content", "unknown_style", "duplicate_event_id"}
"""Ingestion's rules of a line, a catalog or a batch: not the API's (it reads one JSON value per event)."""


def _one_event(text: str) -> bool:
    """Whether `text` can stand as one event of a batch (a truncated line breaks the whole body instead)."""
    try:
        read_batch(('{"events": [' + text + "]}").encode(), 1)
    except BadBatch:
        return False
    return True


CASES = [case for case in INGESTION_CASES if case[2] not in LINE_RULES and _one_event(case[1])] + OWN_CASES
"""Ingestion's own cases that apply to one value, then those of the API's parsing and its edges."""
assert len({text for _, text, _ in CASES}) == len(CASES), "every case is told apart by its text"

WHITE_SPACE_CANDIDATES = sorted(
    {chr(c) for c in range(0x3001) if chr(c).isspace() or WHITE_SPACE.fullmatch(chr(c))}
    | {"\x00", "\u180e", "\u200b", "\u2060", "\ufeff"}
)
"""Python's white space, Java's, and look-alikes: each as a session id, which Spark must judge as we do."""
WHITE_SPACE_CASES = [rec(f"ws-{ord(ch):04x}", session_id=json.dumps(ch)) for ch in WHITE_SPACE_CANDIDATES]

ANONYMOUS = [
    # (event, reason with anonymous=True): without a member id the other rules still apply
    (rec("anon", member_id=DROP), None),
    (rec("anon-null", member_id="null"), None),
    (rec("anon-page", member_id=DROP, event_type='"page_view"', style_id=DROP, price=DROP), None),
    (rec("anon-time", member_id=DROP, event_time='"2026-10-31"'), "bad_type:event_time"),
    (rec("anon-day", member_id=DROP, event_time='"2026-10-30T10:00:00Z"'), "outside_day"),
    (rec("anon-style", member_id=DROP, style_id=DROP), "missing_field:style_id"),
    (rec("anon-bad-member", member_id='"7"'), "bad_type:member_id"),  # a present member id is checked
    (rec("anon-zero-member", member_id="0"), "out_of_range:member_id"),
]

INFINITE_EXTRA = rec("x-infinite", extra="1e400")
"""The deliberate difference: Spark ignores the field, the API refuses what it could not land."""


def read_one(text: str) -> object:
    """One event as `read_batch` reads it."""
    (event,) = read_batch(('{"events": [' + text + "]}").encode(), 1)
    return event


def landed(event: object) -> str | None:
    """The line the API would land, for an event it accepts without anonymity; None for the others."""
    if event_reason(event, DAY, LIMITS, anonymous=False) is not None:
        return None
    return landing_line(event).decode()


@pytest.fixture(scope="module")
def spark_reasons(spark) -> dict[str, str | None]:
    """Spark's reason for each line: every event as posted and as landed, all in one run of `parse_records`."""
    texts = [text for _, text, _ in CASES] + WHITE_SPACE_CASES + [text for text, _ in ANONYMOUS] + [INFINITE_EXTRA]
    landings = [landed(read_one(text)) for text in texts] + [landing_line(read_one(t)).decode() for t, _ in ANONYMOUS]
    lines = [line for line in dict.fromkeys(texts + landings) if line is not None]
    frame = spark.createDataFrame(
        [(line, "events/2026-10-31.jsonl", DAY, n) for n, line in enumerate(lines)],
        "value string, source string, landing_date date, line_no long",
    )
    found = {r["line_no"]: r["reason"] for r in parse_records(frame, LIMITS).select("line_no", "reason").collect()}
    return {line: found[n] for n, line in enumerate(lines)}


@pytest.mark.parametrize(("text", "reason"), [(text, reason) for _, text, reason in CASES], ids=[c[0] for c in CASES])
def test_each_event_gets_the_reason_spark_gives_it(spark_reasons, text, reason):
    event = read_one(text)
    assert event_reason(event, DAY, LIMITS, anonymous=False) == reason
    assert spark_reasons[text] == reason  # the event as posted, landed as is
    if reason is None:
        assert spark_reasons[landed(event)] is None  # the line the API writes


def test_white_space_is_javas(spark_reasons):
    ours = {text: event_reason(read_one(text), DAY, LIMITS, anonymous=False) for text in WHITE_SPACE_CASES}
    assert ours == {text: spark_reasons[text] for text in WHITE_SPACE_CASES}
    assert {ours[text] for text in WHITE_SPACE_CASES} == {None, "empty_field:session_id"}


@pytest.mark.parametrize(("text", "reason"), ANONYMOUS)
def test_anonymous_events_are_accepted_and_quarantined_by_ingestion(spark_reasons, text, reason):
    event = read_one(text)
    assert event_reason(event, DAY, LIMITS) == reason
    anonymous = isinstance(event, dict) and event.get("member_id") is None
    expected = "missing_field:member_id" if anonymous else reason
    assert event_reason(event, DAY, LIMITS, anonymous=False) == spark_reasons[text] == expected
    if reason is None:
        assert spark_reasons[landing_line(event).decode()] == "missing_field:member_id"


def test_a_number_beyond_a_double_outside_the_contract_is_refused(spark_reasons):
    event = read_one(INFINITE_EXTRA)
    assert spark_reasons[INFINITE_EXTRA] is None  # ingestion ignores the field
    assert event_reason(event, DAY, LIMITS) == "out_of_range:extra"
    with pytest.raises(ValueError):
        landing_line(event)  # JSON has no infinity


def test_the_landing_line_is_the_object_as_posted():
    event = read_one(rec("\u00e9\u2028", extra='{"b": [1, 2.5, null, true]}', big="123456789012345678901234567890"))
    line = landing_line(event)
    assert (
        line
        == (
            '{"event_id":"\u00e9\u2028","event_time":"2026-10-31T10:00:00Z","member_id":7,"event_type":"product_view",'
            '"style_id":500,"session_id":"s1","price":19.99,"extra":{"b":[1,2.5,null,true]},'
            '"big":123456789012345678901234567890}'
        ).encode()
    )
    assert b"\n" not in line and json.loads(line) == event


# --- read_batch ----------------------------------------------------------------------------------


def test_a_good_batch():
    body = b' {"events": [{"member_id": 9223372036854775808, "price": 1e400}, {"price": -1e400}, 7], "x": 1}\n'
    events = read_batch(body, 3)
    assert events == [{"member_id": 2**63, "price": float("inf")}, {"price": float("-inf")}, 7]
    assert type(events[0]["member_id"]) is int
    assert read_batch(b'{"events": []}', 0) == []


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b'{"events": ["\xff"]}', "not UTF-8"),
        (b"\xef\xbb\xbf" + b'{"events": []}', "not JSON"),  # a byte-order mark
        (b"", "not JSON"),
        (b'{"events": [', "not JSON"),
        (b"{'events': []}", "not JSON"),
        (b'{"events": [NaN]}', "not JSON"),
        (b'{"events": [{"price": Infinity}]}', "not JSON"),
        (b'{"events": [{"price": -Infinity}]}', "not JSON"),
        (b'{"events": []} x', "not JSON"),
        (b'{"events": []}{"events": []}', "not JSON"),
        (b'{"events": [' + b"[" * 2000 + b"]" * 2000 + b"]}", "nested too deeply"),
        (b"[]", "not a JSON object"),
        (b'"events"', "not a JSON object"),
        (b"null", "not a JSON object"),
        (b"{}", '"events" list'),
        (b'{"events": null}', '"events" list'),
        (b'{"events": {"0": {}}}', '"events" list'),
        (b'{"Events": []}', '"events" list'),
        (b'{"events": [], "events": []}', "twice"),
        (b'{"x": 1, "events": [], "x": 2}', "twice"),
        (b'{"events": [{}, {}, {}]}', "more than 2 events"),
    ],
)
def test_a_bad_batch_fails_whole(body, why):
    with pytest.raises(BadBatch, match=why):
        read_batch(body, 2)


def test_duplicate_keys_in_one_event_fail_that_event_alone():
    good = rec("good")
    body = '{"events": [' + good + ', {"event_id": "a", "event_id": "b"}, {"x": {"y": [{"z": 1, "z": 1}]}}]}'
    events = read_batch(body.encode(), 3)
    assert isinstance(events[1], Unreadable) and isinstance(events[2], Unreadable)
    reasons = [event_reason(event, DAY, LIMITS, anonymous=False) for event in events]
    assert reasons == [None, "malformed_json", "malformed_json"]
    # duplicates nested outside the events are not the batch's to refuse
    assert read_batch(b'{"events": [], "meta": {"a": 1, "a": 2}}', 1) == []
