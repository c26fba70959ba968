"""Tables a step publishes together become visible together to the project's reads.

delta-rs commits one table at a time: a step that publishes several tables (accepted and rejected
records, the evaluation and its champions, the three affinity tables) makes several commits, and a crash
between two of them would leave one table new and the other old. So a step seals its partitions last:
one append to the `_steps` table records, per table and partition, a fingerprint of the partition's files
after the step's commits. Every read of an upstream partition of such a table (`Lakehouse.require`) checks
that the partition's current files are the ones a finished step sealed; a partition written by a step
that did not finish fails the read with the table and partition named, until the step is run again.

An outside Delta reader does not consult `_steps`: between a step's commits it may see one table of the
step new and another old. Such readers should read a day only after its run succeeded (Dagster's
materializations), or check `_steps` the same way.
"""

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa
from deltalake import write_deltalake

from reco_assets.resources.delta_files import in_partitions

if TYPE_CHECKING:
    from reco_assets.resources.lakehouse import Lakehouse, Partitions

STEPS_TABLE = "_steps"
SCHEMA = pa.schema(
    [
        ("table", pa.string()),
        ("partition", pa.string()),
        ("fingerprint", pa.string()),
        ("step", pa.string()),
        ("sealed_at", pa.timestamp("us", tz="UTC")),
    ]
)
STEPS = (
    ("catalog", "catalog_rejected"),
    ("raw_events", "raw_events_rejected"),
    ("offline_evaluation", "ranking_champions"),
    ("member_affinities", "boosted_affinities", "diversified_affinities"),
    ("release_catalog", "release_catalog_rejected"),
)
"""The tables each step publishes together."""
SEALED = {table for step in STEPS for table in step}


def fingerprints(lakehouse: "Lakehouse", table: str, partitions: "Partitions") -> dict[str, str]:
    """Per partition of `table` within `partitions` (keyed by all its partition columns, as JSON), a hash of
    the files the current version holds for it."""
    delta = lakehouse.table(table)
    if delta is None:
        return {}
    chosen = in_partitions(pa.table(delta.get_add_actions(flatten=True)), partitions)
    columns = [c for c in chosen.column_names if c.startswith("partition.")]
    files: dict[str, list[str]] = {}
    keys = chosen.select(columns).cast(pa.schema([(c, pa.string()) for c in columns])).to_pylist()
    for key, path in zip(keys, chosen.column("path").to_pylist()):
        name = json.dumps({c.removeprefix("partition."): v for c, v in key.items()}, sort_keys=True)
        files.setdefault(name, []).append(path)
    return {name: hashlib.sha256("\n".join(sorted(paths)).encode()).hexdigest() for name, paths in files.items()}


def seal(lakehouse: "Lakehouse", writes: Sequence[tuple[str, "Partitions"]]) -> None:
    """Record that one step finished publishing the partitions of `writes` (table, partitions): one append,
    the step's last commit."""
    step = "+".join(sorted({table for table, _ in writes}))
    now = datetime.now(timezone.utc)
    rows = [
        {"table": table, "partition": name, "fingerprint": print_, "step": step, "sealed_at": now}
        for table, partitions in writes
        for name, print_ in fingerprints(lakehouse, table, partitions).items()
    ]
    write_deltalake(
        lakehouse.uri(STEPS_TABLE),
        pa.Table.from_pylist(rows, schema=SCHEMA),
        mode="append",
        storage_options=lakehouse.storage_options or None,
    )


def unsealed(lakehouse: "Lakehouse", table: str, partitions: "Partitions") -> list[str]:
    """Partitions of `table` within `partitions` whose current files no finished step sealed."""
    if table not in SEALED:
        return []
    current = fingerprints(lakehouse, table, partitions)
    sealed: Mapping[str, str] = {}
    steps = lakehouse.dataset(STEPS_TABLE) if current else None  # None: no step sealed anything yet
    if steps is not None:
        with duckdb.connect() as con:
            con.register("steps", steps)
            found = con.execute(
                'SELECT "partition", arg_max(fingerprint, sealed_at) FROM steps WHERE "table" = ? GROUP BY ALL',
                [table],
            ).fetchall()
        sealed = dict(found)
    return sorted(name for name, print_ in current.items() if sealed.get(name) != print_)
