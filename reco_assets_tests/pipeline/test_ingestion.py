import json

import pytest

from reco_assets.pipeline.ingestion import accepted_events, classify_events, rejected_records
from reco_assets.settings import RecoSettings
from reco_assets_tests.conftest import DAY

GOOD = {
    "event_id": "e1",
    "event_time": "2026-10-31T10:00:00Z",
    "member_id": 7,
    "event_type": "product_view",
    "style_id": 500,
    "session_id": "s1",
    "price": 19.99,
    "quantity": None,
}


def _line(**changes):
    record = {**GOOD, **changes}
    return json.dumps({k: v for k, v in record.items() if v != "<drop>"})


CASES = [
    (_line(), None),
    ('{"event_id": "e2", "event_time": ', "malformed_json"),
    (_line(event_id="e3", member_id="<drop>"), "missing_field:member_id"),
    (_line(event_id="e4", member_id="seven"), "bad_type:member_id"),
    (_line(event_id="e5", event_type="wishlist_share"), "unknown_event_type"),
    (_line(event_id="e6", event_time="2026-10-29T12:00:00Z"), "outside_day"),
    (_line(event_id="e7", price=-1.0), "negative_price"),
    (_line(event_id="e8", style_id=999), "unknown_style"),
    (_line(), "duplicate_event_id"),  # e1 again, later in the file
    (_line(event_id="e0"), "duplicate_event_id"),  # accepted on an earlier day
    (_line(event_id="e9", event_type="page_view", style_id=None, price=None), None),
    (_line(event_id="e10", style_id="<drop>"), "missing_field:style_id"),
    (_line(event_id="e11", event_type="purchase", quantity=0), "non_positive_quantity"),
    (_line(event_id="e12", event_time="yesterday"), "bad_type:event_time"),
]


@pytest.fixture
def validated(spark):
    lines = spark.createDataFrame(
        [(value, "events/2026-10-31.jsonl", DAY, n) for n, (value, _) in enumerate(CASES)],
        "value string, source string, landing_date date, line_no long",
    )
    catalog = spark.createDataFrame(
        [(DAY, 500, 12001, "women", "clothing", "dresses", "day dresses")],
        "as_of_date date, style_id long, subclass_brand_id long, division string, department string, class string, "
        "subclass string",
    )
    before = spark.createDataFrame([("e0",)], "event_id string")
    classified = classify_events(lines, catalog, before, RecoSettings().input_limits())
    return accepted_events(classified), rejected_records(classified)


def test_every_record_lands_once_with_the_first_rule_it_breaks(validated):
    accepted, rejected = validated
    assert sorted(r["event_id"] for r in accepted.collect()) == ["e1", "e9"]
    expected = sorted((value, reason) for value, reason in CASES if reason)
    assert sorted((r["record"], r["reason"]) for r in rejected.collect()) == expected
    assert accepted.count() + rejected.count() == len(CASES)


def test_accepted_events_are_typed_and_carry_their_group(validated):
    accepted, _ = validated
    row = next(r for r in accepted.collect() if r["event_id"] == "e1")
    hierarchy = (row["subclass_brand_id"], row["division"], row["department"], row["class"], row["subclass"])
    assert (row["member_id"], row["style_id"], row["price"], row["quantity"]) == (7, 500, 19.99, None)
    assert hierarchy == (12001, "women", "clothing", "dresses", "day dresses")
    assert row["event_date"] == DAY and row["event_time"].hour == 10


def test_an_unreadable_landing_file_fails_the_day_naming_it_and_keeps_the_last_good_version(spark, tmp_path):
    from dagster import materialize

    from reco_assets.assets.ingestion import catalog, raw_events
    from reco_assets.resources import local_resources
    from reco_assets.resources.landing import events_file
    from reco_assets.simulator import PROFILES, simulate

    simulate(PROFILES["tiny"], tmp_path / "landing", log=lambda _: None)
    resources = local_resources(tmp_path)
    day = PROFILES["tiny"].last_day.isoformat()
    assert materialize([catalog, raw_events], resources=resources, partition_key=day).success
    stored = resources["lakehouse"].read_arrow("raw_events", f"event_date = '{day}'").num_rows

    path = events_file(tmp_path / "landing", PROFILES["tiny"].last_day)
    path.unlink()
    path.mkdir()  # a directory where the file should be: cannot be read as a file
    result = materialize([catalog, raw_events], resources=resources, partition_key=day, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert str(path) in failure.event_specific_data.error.message
    assert resources["lakehouse"].read_arrow("raw_events", f"event_date = '{day}'").num_rows == stored


def test_the_apis_files_are_read_beside_the_sites_each_event_once(spark, tmp_path):
    """A day's events posted to the API (`<day>.api-<writer>.jsonl`) are ingested with the site's file: a new
    event is accepted once; one also in the site's file is the site's (the API's copy rejected as a
    duplicate); an anonymous one is quarantined; a line cut short by a crash is malformed; counts reconcile."""
    from dagster import materialize

    from reco_assets.assets.ingestion import catalog, raw_events
    from reco_assets.resources import local_resources
    from reco_assets.resources.landing import LandingResource, api_events_file, events_file
    from reco_assets.simulator import PROFILES, simulate

    simulate(PROFILES["tiny"], tmp_path / "landing", log=lambda _: None)
    day = PROFILES["tiny"].last_day
    site = events_file(tmp_path / "landing", day)
    site_lines = site.read_bytes().splitlines()
    first = json.loads(site_lines[0])
    posted = {**first, "event_id": "api-1", "session_id": "api-session"}
    anonymous = {k: v for k, v in posted.items() if k != "member_id"} | {"event_id": "api-2"}
    api_lines = [json.dumps(posted), json.dumps(first), json.dumps(anonymous), '{"event_id": "api-3", "event_t']
    api_events_file(tmp_path / "landing", day, "w1").write_text("\n".join(api_lines))  # no final LF: cut short
    assert LandingResource(root=str(tmp_path / "landing")).days()[-1] == day  # a day's file, not a stray

    resources = local_resources(tmp_path)
    assert materialize([catalog, raw_events], resources=resources, partition_key=day.isoformat()).success
    lakehouse = resources["lakehouse"]
    accepted = lakehouse.read_arrow("raw_events", f"event_date = '{day}'").to_pylist()
    rejected = lakehouse.read_arrow("raw_events_rejected", f"event_date = '{day}'").to_pylist()
    site_rejected = [r for r in rejected if r["source"].endswith(f"/{day}.jsonl")]
    from_api = sorted(r["reason"] for r in rejected if ".api-w1." in r["source"])
    assert from_api == ["duplicate_event_id", "malformed_json", "missing_field:member_id"]
    assert len(accepted) + len(site_rejected) == len(site_lines) + 1  # the site's lines, and api-1
    assert [r["source"].endswith(f"/{day}.jsonl") for r in accepted if r["event_id"] == first["event_id"]] == [True]
    assert [r["session_id"] for r in accepted if r["event_id"] == "api-1"] == ["api-session"]
