"""The landing zone: only documented names are days; other files are named in a warning and break nothing."""

import logging
from datetime import date

import pytest
from dagster import DagsterInstance, build_sensor_context

from reco_assets.resources.landing import LandingResource, catalog_file, events_file, written_whole
from reco_assets.sensors import landing_sensor

STRAYS = [
    "notes.txt",  # not an events file
    "20261101.jsonl",  # a basic ISO date, which date.fromisoformat reads
    "2026-W44-7.jsonl",  # an ISO week date, which date.fromisoformat reads too
    "2026-02-30.jsonl",  # no such day
    "2026-11-01.jsonl.bak",
    "2026-11-01.json",
    "2026-10-31.api-.jsonl",  # an API file without a writer
    "2026-10-31.api-a b.jsonl",  # a writer with a space
]


def land_with_strays(root) -> None:
    for day in (date(2026, 10, 30), date(2026, 10, 31)):
        for path in (events_file(root, day), catalog_file(root, day)):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("")
    for name in STRAYS:
        (root / "events" / name).write_text("{}\n")
    (root / "events" / "2026-11-02.jsonl").mkdir()  # a folder is no file
    (root / "events" / ".2026-11-01.jsonl.tmp").write_text("")  # a write in progress
    (root / "events" / "2026-10-31.api-web-1.jsonl").write_text("{}\n")  # events posted to the API: no stray


def test_only_documented_names_are_days_and_the_rest_are_named_in_a_warning(tmp_path, caplog):
    land_with_strays(tmp_path)
    with caplog.at_level(logging.WARNING, logger="reco_assets.resources.landing"):
        days = LandingResource(root=str(tmp_path)).days()
    assert days == [date(2026, 10, 30), date(2026, 10, 31)]
    (warning,) = [r.getMessage() for r in caplog.records]
    for name in [*STRAYS, "2026-11-02.jsonl"]:
        assert name in warning
    assert ".2026-11-01.jsonl.tmp" not in warning and "api-web-1" not in warning


def test_the_landing_sensor_asks_for_a_real_day_despite_stray_files(tmp_path):
    land_with_strays(tmp_path)
    landing = LandingResource(root=str(tmp_path))
    with DagsterInstance.ephemeral() as instance:
        request = landing_sensor(build_sensor_context(instance=instance, resources={"landing": landing}))
    assert request.partition_key == "2026-10-30"  # the earliest day not yet ingested


def test_a_landing_file_is_visible_whole_or_not_at_all(tmp_path):
    target = events_file(tmp_path, date(2026, 10, 31))
    landing = LandingResource(root=str(tmp_path))
    with written_whole(target) as path:
        path.write_text('{"event_id": "e1"}\n')
        assert landing.days() == [] and not target.exists()  # half written: no day yet
    assert target.read_text() == '{"event_id": "e1"}\n' and landing.days() == [date(2026, 10, 31)]

    with pytest.raises(OSError), written_whole(target) as path:
        path.write_text("a partial replacement")
        raise OSError("disk full")  # the writer fails midway
    assert target.read_text() == '{"event_id": "e1"}\n'  # the last whole file stays
    assert sorted(p.name for p in target.parent.iterdir()) == ["2026-10-31.jsonl"]  # nothing left behind
