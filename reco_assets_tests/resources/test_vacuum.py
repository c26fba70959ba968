"""Vacuum over real tables written by the Lakehouse (Spark's tasks and delta-rs), with time moved back by
ageing files (`os.utime`) and the timestamps of commits rather than by waiting."""

import json
import os
import time
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from reco_assets.cli import main
from reco_assets.definitions import defs
from reco_assets.jobs import vacuum_job
from reco_assets.resources.lakehouse import Lakehouse
from reco_assets.schedules import vacuum_schedule
from reco_assets.settings import RecoSettings

DAY = date(2026, 10, 31)
RETENTION = 24
OLD = 48
"""Hours ago the old writes happened: beyond the retention."""


def _age_file(path: Path, hours: float) -> None:
    then = time.time() - hours * 3600
    os.utime(path, (then, then))


def _age_commit(table: Path, version: int, hours: float) -> None:
    """Move a commit `hours` back: its timestamps, the files it added and the commit file itself."""
    millis = int((time.time() - hours * 3600) * 1000)
    commit = table / "_delta_log" / f"{version:020d}.json"
    actions = [json.loads(line) for line in commit.read_text().splitlines()]
    for action in actions:
        for kind, key in (("commitInfo", "timestamp"), ("add", "modificationTime"), ("remove", "deletionTimestamp")):
            if kind in action:
                action[kind][key] = millis
    commit.write_text("".join(json.dumps(action) + "\n" for action in actions))
    _age_file(commit, hours)
    for path in _paths(DeltaTable(str(table), version=version)):
        _age_file(table / path, hours)


def _paths(delta: DeltaTable) -> set[str]:
    """A version's files, relative to the table's folder (as on disk)."""
    root = delta.table_uri.removeprefix("file://").rstrip("/") + "/"
    return {uri.removeprefix(root) for uri in delta.file_uris()}


def _on_disk(table: Path) -> set[str]:
    return {str(p.relative_to(table)) for p in table.rglob("*.parquet") if "_delta_log" not in p.parts}


def _rows(spark, cohort: str, values: list[int]):
    return spark.createDataFrame([(DAY, cohort, x) for x in values], "as_of_date date, cohort string, x long")


def _x(delta: DeltaTable) -> list[int]:
    return sorted(delta.to_pyarrow_table().column("x").to_pylist())


def test_vacuum_deletes_what_no_version_of_the_retention_reads_and_keeps_the_rest(spark, tmp_path):
    lake = Lakehouse(root=str(tmp_path))
    table = tmp_path / "t"
    partition = {"as_of_date": DAY, "cohort": "men 1"}  # a value the folder names escape
    for values in ([1, 2], [3], [4, 5]):  # written, then replaced twice: versions 0, 1, 2
        lake.stage(_rows(spark, "men 1", values), "t", partition).commit()
    first, second, third = (_paths(DeltaTable(str(table), version=v)) for v in range(3))
    _age_commit(table, 0, OLD)
    _age_commit(table, 1, OLD)  # the first files left the table before the retention, the second within it
    # a write killed after its tasks (a file per partition, one of them empty), long ago, and one running now
    killed = lake.stage(_rows(spark, "men 1", [8]), "t", {"as_of_date": DAY, "cohort": ["men 1", "kids 2"]})
    running = lake.stage(_rows(spark, "men 1", [9]), "t", partition)
    for f in killed.files:
        _age_file(table / f["path"], OLD)
    stray = table / "as_of_date=2026-10-31" / "stray.parquet"
    pq.write_table(pa.table({"x": [7]}), stray)
    _age_file(stray, OLD)
    # a second table, written by delta-rs: its first partition file left the table before the retention
    day = pa.table({"as_of_date": pa.array([DAY], pa.date32()), "y": [1]})
    for _ in range(2):
        lake.write_partition("u", day, {"as_of_date": DAY})
    replaced = _paths(DeltaTable(lake.uri("u"), version=0))
    _age_commit(tmp_path / "u", 0, OLD)
    _age_commit(tmp_path / "u", 1, OLD)
    (tmp_path / "not_a_table").mkdir()
    before = _on_disk(table)

    deleted = lake.vacuum(RETENTION)

    expected = first | {f["path"] for f in killed.files} | {"as_of_date=2026-10-31/stray.parquet"}
    assert deleted == {"t": sorted(expected), "u": sorted(replaced)}
    assert _on_disk(table) == before - expected
    assert second | third | {f["path"] for f in running.files} <= _on_disk(table)
    assert _x(DeltaTable(str(table), version=1)) == [3]  # within the retention: still loads
    assert _x(DeltaTable(str(table), version=2)) == _x(DeltaTable(str(table))) == [4, 5]
    assert sorted(DeltaTable(lake.uri("u")).to_pyarrow_table().column("y").to_pylist()) == [1]
    running.commit()  # the write in progress still publishes
    assert _x(DeltaTable(str(table))) == [9]


def _replaced_long_ago(spark, lake: Lakehouse) -> set[str]:
    """A table whose partition was replaced before the retention: the replaced files."""
    table = Path(lake.root) / "t"
    lake.stage(_rows(spark, "a", [1]), "t", {"as_of_date": DAY, "cohort": "a"}).commit()
    old = _paths(DeltaTable(str(table)))
    lake.stage(_rows(spark, "a", [2]), "t", {"as_of_date": DAY, "cohort": "a"}).commit()
    _age_commit(table, 0, OLD)
    _age_commit(table, 1, OLD)
    return old


def test_the_weekly_vacuum_job_deletes_with_the_retention_setting(spark, tmp_path):
    lake = Lakehouse(root=str(tmp_path))
    old = _replaced_long_ago(spark, lake)
    kept = vacuum_job.execute_in_process(resources={"lakehouse": lake, "settings": RecoSettings()})
    assert kept.success and old <= _on_disk(tmp_path / "t")  # 48 h old: within the default week
    result = vacuum_job.execute_in_process(
        resources={
            "lakehouse": lake,
            "settings": RecoSettings().changed({"lakehouse.vacuum_retention_hours": RETENTION}),
        }
    )
    assert result.success and not old & _on_disk(tmp_path / "t")
    assert _x(DeltaTable(lake.uri("t"))) == [2]
    assert defs.resolve_job_def("vacuum_job").executor_def.name == "in_process"
    assert vacuum_schedule.cron_schedule == "0 4 * * 0" and vacuum_schedule.execution_timezone == "America/New_York"
    assert vacuum_schedule.job_name == "vacuum_job"


def test_the_vacuum_command_prints_what_it_deleted(spark, tmp_path, capsys):
    old = _replaced_long_ago(spark, Lakehouse(root=str(tmp_path / "lakehouse")))
    with pytest.raises(SystemExit) as exit_code:
        main(["vacuum", "--home", str(tmp_path), "--retention-hours", str(RETENTION)])
    assert exit_code.value.code == 0
    out = capsys.readouterr().out
    assert "t: 1 deleted" in out and all(path in out for path in old)
    assert not old & _on_disk(tmp_path / "lakehouse" / "t")
