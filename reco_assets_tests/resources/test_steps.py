"""Tables a step publishes together are read together: a step killed between two commits is never read torn."""

import subprocess
import sys
import textwrap
from datetime import date

import pyarrow as pa
import pytest

from reco_assets.assets.common import publish
from reco_assets.resources.lakehouse import Lakehouse, MissingPartition
from reco_assets.resources.steps import seal

DAY = date(2026, 10, 31)

WRITE_STEP = textwrap.dedent(
    """
    import os, signal, sys
    from datetime import date
    import pyarrow as pa
    from reco_assets.resources.lakehouse import Lakehouse
    from reco_assets.resources.steps import seal

    lake, day, value, die = Lakehouse(root=sys.argv[1]), date(2026, 10, 31), float(sys.argv[2]), sys.argv[3] == "die"
    frame = lambda column: pa.table({"cohort": ["all"], column: [value], "as_of_date": [day]})
    lake.write_partition("offline_evaluation", frame("value"), {"as_of_date": day})
    if die:  # killed between the step's two commits
        os.kill(os.getpid(), signal.SIGKILL)
    lake.write_partition("ranking_champions", frame("ndcg"), {"as_of_date": day})
    seal(lake, [("offline_evaluation", {"as_of_date": day}), ("ranking_champions", {"as_of_date": day})])
    """
)


def run_step(root, value: float, die: bool) -> int:
    done = subprocess.run([sys.executable, "-c", WRITE_STEP, str(root), str(value), "die" if die else "live"])
    return done.returncode


def read(lake: Lakehouse, table: str, column: str) -> list[float]:
    return lake.read_arrow(table, columns=[column], partition={"as_of_date": DAY}).column(column).to_pylist()


def test_a_step_killed_between_its_commits_is_not_read_until_it_runs_again(tmp_path):
    lake = Lakehouse(root=str(tmp_path))
    assert run_step(tmp_path, 0.25, die=False) == 0
    assert read(lake, "offline_evaluation", "value") == read(lake, "ranking_champions", "ndcg") == [0.25]

    assert run_step(tmp_path, 0.5, die=True) == -9  # the evaluation is new, the champions old
    assert lake.table("offline_evaluation").to_pyarrow_table().column("value").to_pylist() == [0.5]
    with pytest.raises(MissingPartition, match="did not finish publishing its tables together"):
        read(lake, "offline_evaluation", "value")
    assert read(lake, "ranking_champions", "ndcg") == [0.25]  # untouched by the killed step: as last sealed

    assert run_step(tmp_path, 0.75, die=False) == 0  # run again: both new, both readable
    assert read(lake, "offline_evaluation", "value") == read(lake, "ranking_champions", "ndcg") == [0.75]


def test_accepted_and_rejected_records_staged_by_spark_are_sealed_only_once_both_are_committed(spark, tmp_path):
    lake = Lakehouse(root=str(tmp_path))
    partitions = {"event_date": [DAY]}

    def stage(table: str, ids: list[str]):
        frame = spark.createDataFrame([(i, DAY) for i in ids], "event_id string, event_date date")
        return lake.stage(frame, table, partitions)

    list(publish([stage("raw_events", ["a", "b"]), stage("raw_events_rejected", ["x"])], []))
    assert sorted(lake.read_arrow("raw_events", partition=partitions).column("event_id").to_pylist()) == ["a", "b"]

    accepted, rejected = stage("raw_events", ["c"]), stage("raw_events_rejected", ["y", "z"])
    accepted.commit()  # the process dies here, before the rejected records and the seal
    with pytest.raises(MissingPartition, match=r"'raw_events'.*event_date.*2026-10-31"):
        lake.read_arrow("raw_events", partition=partitions)
    assert lake.read_arrow("raw_events_rejected", partition=partitions).column("event_id").to_pylist() == ["x"]

    rejected.commit()
    seal(lake, [("raw_events", partitions), ("raw_events_rejected", partitions)])
    assert lake.read_arrow("raw_events", partition=partitions).column("event_id").to_pylist() == ["c"]
    assert sorted(lake.read_arrow("raw_events_rejected", partition=partitions).column("event_id").to_pylist()) == [
        "y",
        "z",
    ]


def test_tables_outside_any_step_need_no_seal(tmp_path):
    lake = Lakehouse(root=str(tmp_path))
    lake.write_partition("style_listings", pa.table({"style_id": [1], "as_of_date": [DAY]}), {"as_of_date": DAY})
    assert lake.read_arrow("style_listings", partition={"as_of_date": DAY}).num_rows == 1
