"""Strict input: every physical line of a landing file is accepted or rejected with the first rule it breaks,
and JSON types are required as they are, never coerced.

The expected reasons come from the rule catalogue (`parse_records` and `classify_events` in
pipeline/ingestion.py), hostile lines for every rule; line counts are computed from the bytes written,
independently of Spark.
"""

import json
from datetime import date

import pytest

from reco_assets.adapters.landing import CATALOG_COLUMNS
from reco_assets.pipeline.ingestion import InputLimits, accepted_events, classify_events, rejected_records
from reco_assets.settings import RecoSettings
from reco_assets_tests.conftest import DAY, utc

LIMITS = InputLimits(max_quantity=10, max_price=500.0)
"""Small limits, so that the boundaries read plainly below."""

BASE = {
    "event_time": '"2026-10-31T10:00:00Z"',
    "member_id": "7",
    "event_type": '"product_view"',
    "style_id": "500",
    "session_id": '"s1"',
    "price": "19.99",
}
DROP = None


def rec(event_id: str, /, **raw: str | None) -> str:
    """A good record of `event_id` (landed on DAY, style 500), with the JSON text of some fields replaced by
    `raw` (DROP removes a field); a raw `event_id` replaces the id given."""
    fields = {"event_id": json.dumps(event_id), **BASE, **raw}
    return "{" + ", ".join(f'"{name}": {text}' for name, text in fields.items() if text is not DROP) + "}"


CASES = [
    # accepted: the time formats the simulator and the adapters write, an offset, types at their limits
    ("adapter time", rec("ok-adapter"), None),
    ("simulator time", rec("ok-sim", event_time='"2026-10-31T10:00:00.000000Z"', price="45.0", quantity="null"), None),
    ("offset inside the UTC day", rec("ok-offset", event_time='"2026-11-01T00:30:00+02:00"'), None),
    ("nanoseconds", rec("ok-nanos", event_time='"2026-10-31T10:00:00.123456789Z"'), None),
    ("CRLF line end", rec("ok-crlf") + "\r", None),
    ("white space around the object", " \t" + rec("ok-spaces") + "  ", None),
    ("unknown fields ignored", rec("ok-extra", campaign='"autumn"', referrer='{"page": 3}'), None),
    ("braces inside a string", rec("ok-braces", session_id='"s}{1}"'), None),
    ("quantity and price at their caps", rec("ok-caps", event_type='"purchase"', quantity="10", price="500"), None),
    ("price in exponent form", rec("ok-exp-price", price="5e2"), None),
    ("free item", rec("ok-free", price="0"), None),
    ("page view without style", rec("ok-page", event_type='"page_view"', style_id=DROP, price=DROP), None),
    (
        "page view with nulls",
        rec("ok-page-nulls", event_type='"page_view"', style_id="null", price="null", quantity="null"),
        None,
    ),
    ("largest member id", rec("ok-max-member", member_id="9223372036854775807"), None),
    ("first of a duplicated id", rec("dup"), None),
    # blank_line
    ("empty line", "", "blank_line"),
    ("spaces", "   ", "blank_line"),
    ("tab", "\t", "blank_line"),
    ("carriage return only", "\r", "blank_line"),
    ("unicode spaces", "\u00a0\u2003", "blank_line"),
    # malformed_json
    ("truncated", '{"event_id": "m-truncated", "event_time": ', "malformed_json"),
    ("single quotes", "{'event_id': 'm-quotes'}", "malformed_json"),
    ("leading zero", rec("m-zero", member_id="07"), "malformed_json"),
    ("NaN", rec("m-nan", price="NaN"), "malformed_json"),
    ("Infinity", rec("m-inf", price="Infinity"), "malformed_json"),
    ("duplicate key", rec("m-dupkey", event_type='"page_view", "event_type": "purchase"'), "malformed_json"),
    ("comma before the brace", rec("m-comma")[:-1] + ", }", "malformed_json"),
    ("raw tab in a string", rec("m-tab", session_id='"s\t1"'), "malformed_json"),
    ("raw CR in a string", rec("m-cr", session_id='"s\r1"'), "malformed_json"),
    ("byte order mark", "\ufeff" + rec("m-bom"), "malformed_json"),
    # trailing_content
    ("garbage after", rec("t-garbage") + " garbage", "trailing_content"),
    ("two objects", rec("t-two") + rec("t-two-b"), "trailing_content"),
    ("comma after", rec("t-comma") + ",", "trailing_content"),
    ("comment after", rec("t-comment") + " // note", "trailing_content"),
    ("bracket after", rec("t-bracket") + "]", "trailing_content"),
    ("brace after", rec("t-brace") + "}", "trailing_content"),
    ("second object after a comma", rec("t-second") + ', {"event_id": "x"}', "trailing_content"),
    ("null after", rec("t-null") + " null", "trailing_content"),
    ("garbage after a nested object", rec("t-nested", referrer='{"page": 3}') + " x", "trailing_content"),
    ("trailing beats missing", rec("t-first", member_id=DROP) + " x", "trailing_content"),
    # not_an_object
    ("array", "[1, 2]", "not_an_object"),
    ("array of a record", "[" + rec("n-array") + "]", "not_an_object"),
    ("number", "42", "not_an_object"),
    ("string", '"text"', "not_an_object"),
    ("null", "null", "not_an_object"),
    ("boolean", "true", "not_an_object"),
    # missing_field (absent or null)
    ("no event_id", rec("", event_id=DROP, session_id='"mf-id"'), "missing_field:event_id"),
    ("null event_id", rec("", event_id="null", session_id='"mf-null-id"'), "missing_field:event_id"),
    ("no event_time", rec("mf-time", event_time=DROP), "missing_field:event_time"),
    ("null event_time", rec("mf-null-time", event_time="null"), "missing_field:event_time"),
    ("no member_id", rec("mf-member", member_id=DROP), "missing_field:member_id"),
    ("null member_id", rec("mf-null-member", member_id="null"), "missing_field:member_id"),
    ("no event_type", rec("mf-type", event_type=DROP), "missing_field:event_type"),
    ("no session_id", rec("mf-session", session_id=DROP), "missing_field:session_id"),
    ("null session_id", rec("mf-null-session", session_id="null"), "missing_field:session_id"),
    ("item without style", rec("mf-style", style_id=DROP), "missing_field:style_id"),
    (
        "purchase with null style",
        rec("mf-null-style", event_type='"purchase"', style_id="null", quantity="1"),
        "missing_field:style_id",
    ),
    ("item without price", rec("mf-price", price=DROP), "missing_field:price"),
    ("item with null price", rec("mf-null-price", price="null"), "missing_field:price"),
    ("missing beats empty", rec("", event_id='""', member_id=DROP), "missing_field:member_id"),
    # bad_type: the JSON type, never coerced
    ("numeric event_id", rec("", event_id="123", session_id='"bt-id-number"'), "bad_type:event_id"),
    ("boolean event_id", rec("", event_id="true", session_id='"bt-id-bool"'), "bad_type:event_id"),
    ("words for a time", rec("bt-time-words", event_time='"yesterday"'), "bad_type:event_time"),
    ("epoch seconds", rec("bt-time-epoch", event_time="1793440800"), "bad_type:event_time"),
    ("date only", rec("bt-time-date", event_time='"2026-10-31"'), "bad_type:event_time"),
    ("no offset", rec("bt-time-local", event_time='"2026-10-31T10:00:00"'), "bad_type:event_time"),
    ("space for T", rec("bt-time-space", event_time='"2026-10-31 10:00:00Z"'), "bad_type:event_time"),
    ("offset without colon", rec("bt-time-basic", event_time='"2026-10-31T10:00:00+0200"'), "bad_type:event_time"),
    ("no seconds", rec("bt-time-minutes", event_time='"2026-10-31T10:00Z"'), "bad_type:event_time"),
    ("zone name", rec("bt-time-utc", event_time='"2026-10-31T10:00:00 UTC"'), "bad_type:event_time"),
    ("lower case", rec("bt-time-lower", event_time='"2026-10-31t10:00:00z"'), "bad_type:event_time"),
    ("impossible date", rec("bt-time-feb30", event_time='"2026-02-30T10:00:00Z"'), "bad_type:event_time"),
    ("member_id as a string", rec("bt-member-string", member_id='"7"'), "bad_type:member_id"),
    ("member_id as a word", rec("bt-member-word", member_id='"seven"'), "bad_type:member_id"),
    ("member_id 7.0", rec("bt-member-point-zero", member_id="7.0"), "bad_type:member_id"),
    ("member_id 7.5", rec("bt-member-fraction", member_id="7.5"), "bad_type:member_id"),
    ("member_id 7e2", rec("bt-member-exponent", member_id="7e2"), "bad_type:member_id"),
    ("member_id -7.0", rec("bt-member-negative-point", member_id="-7.0"), "bad_type:member_id"),
    ("member_id true", rec("bt-member-bool", member_id="true"), "bad_type:member_id"),
    ("member_id array", rec("bt-member-array", member_id="[7]"), "bad_type:member_id"),
    ("member_id object", rec("bt-member-object", member_id='{"id": 7}'), "bad_type:member_id"),
    ("type before event kind", rec("bt-first", member_id='"7"', event_type='"wishlist"'), "bad_type:member_id"),
    ("numeric event_type", rec("bt-type-number", event_type="1"), "bad_type:event_type"),
    ("event_type array", rec("bt-type-array", event_type='["purchase"]'), "bad_type:event_type"),
    ("style_id as a string", rec("bt-style-string", style_id='"500"'), "bad_type:style_id"),
    ("style_id 500.0", rec("bt-style-point-zero", style_id="500.0"), "bad_type:style_id"),
    ("style_id 5e2", rec("bt-style-exponent", style_id="5e2"), "bad_type:style_id"),
    ("page view with a bad style", rec("bt-page-style", event_type='"page_view"', style_id='"x"'), "bad_type:style_id"),
    ("numeric session_id", rec("bt-session-number", session_id="42"), "bad_type:session_id"),
    ("boolean session_id", rec("bt-session-bool", session_id="false"), "bad_type:session_id"),
    ("price as a string", rec("bt-price-string", price='"19.99"'), "bad_type:price"),
    ("price true", rec("bt-price-bool", price="true"), "bad_type:price"),
    ("price array", rec("bt-price-array", price="[19.99]"), "bad_type:price"),
    ("quantity as a string", rec("bt-qty-string", event_type='"purchase"', quantity='"2"'), "bad_type:quantity"),
    ("quantity 2.0", rec("bt-qty-point-zero", event_type='"purchase"', quantity="2.0"), "bad_type:quantity"),
    ("quantity 2.5", rec("bt-qty-fraction", event_type='"purchase"', quantity="2.5"), "bad_type:quantity"),
    ("quantity 2e0", rec("bt-qty-exponent", event_type='"purchase"', quantity="2e0"), "bad_type:quantity"),
    ("quantity true", rec("bt-qty-bool", event_type='"purchase"', quantity="true"), "bad_type:quantity"),
    # empty_field
    ("empty event_id", rec("", event_id='""', session_id='"ef-id"'), "empty_field:event_id"),
    ("blank event_id", rec("", event_id='"   "', session_id='"ef-id-blank"'), "empty_field:event_id"),
    ("empty event_type", rec("ef-type", event_type='""'), "empty_field:event_type"),
    ("blank event_type", rec("ef-type-blank", event_type='" "'), "empty_field:event_type"),
    ("empty session_id", rec("ef-session", session_id='""'), "empty_field:session_id"),
    ("escaped tab session_id", rec("ef-session-tab", session_id='"\\t"'), "empty_field:session_id"),
    # out_of_range of the ids
    ("member 0", rec("or-member-zero", member_id="0"), "out_of_range:member_id"),
    ("negative member", rec("or-member-negative", member_id="-7"), "out_of_range:member_id"),
    ("member beyond int64", rec("or-member-big", member_id="9223372036854775808"), "out_of_range:member_id"),
    ("member below int64", rec("or-member-small", member_id="-9223372036854775809"), "out_of_range:member_id"),
    ("style 0", rec("or-style-zero", style_id="0"), "out_of_range:style_id"),
    ("style beyond int64", rec("or-style-big", style_id="99999999999999999999"), "out_of_range:style_id"),
    # unknown_event_type
    ("unknown kind", rec("u-kind", event_type='"wishlist_share"'), "unknown_event_type"),
    ("kind in capitals", rec("u-capitals", event_type='"PURCHASE"'), "unknown_event_type"),
    # outside_day (UTC)
    ("two days early", rec("od-early", event_time='"2026-10-29T12:00:00Z"'), "outside_day"),
    ("next UTC day by its offset", rec("od-offset", event_time='"2026-10-31T23:30:00-02:00"'), "outside_day"),
    ("next midnight", rec("od-midnight", event_time='"2026-11-01T00:00:00Z"'), "outside_day"),
    ("day before price", rec("od-first", event_time='"2026-10-29T12:00:00Z"', price="-1"), "outside_day"),
    # negative_price
    ("negative price", rec("np-negative", price="-1.0"), "negative_price"),
    ("a cent below zero", rec("np-cent", price="-0.01"), "negative_price"),
    ("minus infinity", rec("np-infinite", price="-1e400"), "negative_price"),
    ("price before quantity", rec("np-first", event_type='"purchase"', price="-1", quantity="0"), "negative_price"),
    ("price before style", rec("np-before-style", style_id="999", price="-1"), "negative_price"),
    # out_of_range:price
    ("a cent above the cap", rec("op-cent", price="500.01"), "out_of_range:price"),
    ("exponent above the cap", rec("op-exponent", price="1e3"), "out_of_range:price"),
    ("beyond a double", rec("op-infinite", price="1e400"), "out_of_range:price"),
    # non_positive_quantity
    ("zero units", rec("nq-zero", event_type='"purchase"', quantity="0"), "non_positive_quantity"),
    ("negative units", rec("nq-negative", event_type='"purchase"', quantity="-2"), "non_positive_quantity"),
    # out_of_range:quantity
    ("a unit above the cap", rec("oq-above", event_type='"purchase"', quantity="11"), "out_of_range:quantity"),
    (
        "units beyond int64",
        rec("oq-big", event_type='"purchase"', quantity="9223372036854775808"),
        "out_of_range:quantity",
    ),
    # unknown_style (not in the day's catalog)
    ("style not in the catalog", rec("us-unknown", style_id="999"), "unknown_style"),
    ("largest style id", rec("us-max", style_id="9223372036854775807"), "unknown_style"),
    # duplicate_event_id
    ("same id later in the batch", rec("dup", session_id='"s2"'), "duplicate_event_id"),
    ("id accepted on another day", rec("e0"), "duplicate_event_id"),
]
assert len({line for _, line, _ in CASES}) == len(CASES), "every hostile line is told apart by its text"


def catalog_frame(spark):
    return spark.createDataFrame(
        [(DAY, 500, 12001, "women", "clothing", "dresses", "day dresses")],
        "as_of_date date, style_id long, subclass_brand_id long, division string, department string, class string, "
        "subclass string",
    )


@pytest.fixture(scope="module")
def classified(spark):
    lines = spark.createDataFrame(
        [(line, "events/2026-10-31.jsonl", DAY, n) for n, (_, line, _) in enumerate(CASES)],
        "value string, source string, landing_date date, line_no long",
    )
    before = spark.createDataFrame([("e0",)], "event_id string")
    frame = classify_events(lines, catalog_frame(spark), before, LIMITS)
    return accepted_events(frame).collect(), rejected_records(frame).collect()


@pytest.fixture(scope="module")
def reasons(classified) -> dict[str, str | None]:
    """The reason of each landed line; None for a line not rejected (which must then be accepted: see
    `test_every_line_is_accepted_or_rejected_once`)."""
    _, rejected = classified
    found = {r["record"]: r["reason"] for r in rejected}
    return {line: found.get(line) for _, line, _ in CASES}


@pytest.mark.parametrize(("line", "reason"), [(line, reason) for _, line, reason in CASES], ids=[c[0] for c in CASES])
def test_each_line_gets_the_first_rule_it_breaks(reasons, line, reason):
    assert reasons[line] == reason


def test_every_line_is_accepted_or_rejected_once(classified):
    accepted, rejected = classified
    assert len(accepted) + len(rejected) == len(CASES)
    expected = [json.loads(line)["event_id"] for _, line, reason in CASES if reason is None]
    assert sorted(r["event_id"] for r in accepted) == sorted(expected)


def test_accepted_values_keep_their_json_types(classified):
    accepted, _ = classified
    by_id = {r["event_id"]: r for r in accepted}
    caps = by_id["ok-caps"]
    assert (caps["quantity"], caps["price"], caps["member_id"], caps["style_id"]) == (10, 500.0, 7, 500)
    assert by_id["ok-offset"]["event_time"] == utc(2026, 10, 31, 22, 30).replace(tzinfo=None)
    assert by_id["ok-nanos"]["event_time"].microsecond == 123456
    assert by_id["ok-max-member"]["member_id"] == 2**63 - 1
    assert by_id["ok-sim"]["quantity"] is None and by_id["ok-sim"]["price"] == 45.0
    assert (by_id["ok-adapter"]["division"], by_id["ok-adapter"]["department"]) == ("women", "clothing")


# --- landing files: every physical line ----------------------------------------------------------


def physical_lines(content: bytes) -> list[bytes]:
    """The lines of a file as a reader of LF-terminated lines sees them: a final LF ends the last line."""
    if not content:
        return []
    lines = content.split(b"\n")
    return lines[:-1] if content.endswith(b"\n") else lines


def hostile_file(max_quantity: int) -> bytes:
    """Blank lines, a whitespace-only line, CRLF lines, a CR inside a line, trailing content, an over-cap
    quantity, and a last line without a line end."""
    return b"".join(
        [
            rec("f-first").encode() + b"\n",
            b"\n",
            b"  \t \n",
            rec("f-crlf").encode() + b"\r\n",
            b"\r\n",
            rec("f-trailing").encode() + b" trailing\n",
            rec("f-cr-a").encode() + b"\r" + rec("f-cr-b").encode() + b"\n",  # one line: CR is no line end
            rec("f-units", event_type='"purchase"', quantity=str(max_quantity + 1)).encode() + b"\n",
            b"\n\n",
            rec("f-last").encode(),
        ]
    )


EXPECTED_FILE_REASONS = {
    "blank_line": 5,
    "trailing_content": 2,
    "out_of_range:quantity": 1,
}
EXPECTED_FILE_ACCEPTED = {"f-first", "f-crlf", "f-last"}


def test_reading_keeps_every_physical_line(spark, tmp_path):
    """`_read_lines` splits at LF only, keeps blank lines, and neither adds a line after a final LF nor
    drops a last line without one."""
    from reco_assets.assets.ingestion import _read_lines

    contents = {
        "final-lf": hostile_file(10) + b"\n",
        "no-final-lf": hostile_file(10),
        "lf-only": b"\n",
        "cr-only": b"\r",
        "empty": b"",
    }
    paths = {}
    for name, content in contents.items():
        path = tmp_path / name / "2026-10-31.jsonl"
        path.parent.mkdir()
        path.write_bytes(content)
        paths[name] = path
    lines = _read_lines(spark, [str(p) for p in paths.values()]).collect()
    for name, content in contents.items():
        read = [r["value"].encode() for r in lines if r["source"].endswith(f"/{name}/2026-10-31.jsonl")]
        assert read == physical_lines(content), name
    assert {r["landing_date"] for r in lines} == {date(2026, 10, 31)}
    assert len(physical_lines(contents["no-final-lf"])) == len(physical_lines(contents["final-lf"])) == 11


def ingest(tmp_path, content: bytes, settings: RecoSettings):
    """The real `catalog` and `raw_events` assets over a landing file of DAY (style 500 in the catalog)."""
    from dagster import materialize

    from reco_assets.assets.ingestion import catalog, raw_events
    from reco_assets.resources import local_resources
    from reco_assets.resources.landing import catalog_file, events_file

    landing = tmp_path / "landing"
    events_file(landing, DAY).parent.mkdir(parents=True)
    events_file(landing, DAY).write_bytes(content)
    catalog_file(landing, DAY).parent.mkdir(parents=True)
    row = ["500", "12001", "acme", "women", "clothing", "dresses", "day dresses", "19.99"]
    row += ["2026-10-01T00:00:00Z", "2026-10-01T00:00:00Z", "2100-01-01T00:00:00Z", "10", "0"]
    catalog_file(landing, DAY).write_text(",".join(CATALOG_COLUMNS) + "\n" + ",".join(row) + "\n")
    resources = local_resources(tmp_path, settings)
    result = materialize([catalog, raw_events], resources=resources, partition_key=DAY.isoformat())
    assert result.success
    return result, resources


def test_a_landing_file_reconciles_line_for_line_through_the_asset(tmp_path):
    """The real `raw_events` asset over a hostile file: accepted + rejected = its physical lines, each
    with its reason, and the records_reconcile check passes."""
    settings = RecoSettings()
    content = hostile_file(settings.ingestion.max_quantity)
    result, resources = ingest(tmp_path, content, settings)
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"records_reconcile": True, "unique_event_ids": True, "not_empty": True}

    lake = resources["lakehouse"]
    accepted = lake.read_arrow("raw_events", f"event_date = '{DAY}'").to_pylist()
    rejected = lake.read_arrow("raw_events_rejected", f"event_date = '{DAY}'").to_pylist()
    lines = physical_lines(content)
    assert len(accepted) + len(rejected) == len(lines) == 11
    assert {r["event_id"] for r in accepted} == EXPECTED_FILE_ACCEPTED
    assert {r["department"] for r in accepted} == {"clothing"}
    counts: dict[str, int] = {}
    for r in rejected:
        counts[r["reason"]] = counts.get(r["reason"], 0) + 1
    assert counts == EXPECTED_FILE_REASONS
    assert counts["blank_line"] == sum(not line.decode().strip() for line in lines)
    assert sorted(r["record"].encode() for r in rejected) == sorted(
        line for line in lines if not any(f'"{i}"'.encode() in line for i in EXPECTED_FILE_ACCEPTED)
    )


def test_bytes_that_are_not_utf8_reject_the_line_instead_of_merging_ids(tmp_path):
    """Two event ids that differ only in undecodable bytes would read alike once replaced: both lines are
    rejected as `invalid_utf8` (stored readable), while an encoded U+FFFD is a character like any other."""
    lines = [
        rec("bad-1").encode().replace(b"bad-1", b"bad\xff"),  # the raw byte 0xFF
        rec("bad-2").encode().replace(b"bad-2", b"bad\xfe"),
        rec("bad-3").encode().replace(b"bad-3", "bad\ufffd".encode()),  # U+FFFD written as UTF-8
        b'{"event_id": "f-\xc3", "event_time": "2026-10-31T10:00:00Z"}',  # a sequence cut short
    ]
    result, resources = ingest(tmp_path, b"\n".join(lines) + b"\n", RecoSettings())
    lake = resources["lakehouse"]
    accepted = lake.read_arrow("raw_events", f"event_date = '{DAY}'").to_pylist()
    rejected = lake.read_arrow("raw_events_rejected", f"event_date = '{DAY}'").to_pylist()
    assert [r["event_id"] for r in accepted] == ["bad\ufffd"]
    assert sorted((r["reason"], r["record"]) for r in rejected) == sorted(
        ("invalid_utf8", line.decode("utf-8", "replace")) for line in lines[:2] + lines[3:]
    )
