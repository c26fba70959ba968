"""Deleting the files no version of the retention reads: partitions replaced before it began, and files no
version ever referenced (staged by a write whose task or driver was killed before its commit).

delta-rs's vacuum does both in its `full` mode: it deletes the files whose removal from the table is older than
the retention, and the files of the table's folder that no action of its log names, last modified before the
retention began (so a write in progress keeps its files). Its default (`lite`) mode leaves the latter.
"""

from collections.abc import Mapping

import pyarrow.fs as pafs
from deltalake import DeltaTable

from reco_assets.resources.delta_files import filesystem


def folders(root: str, storage_options: Mapping[str, str] | None) -> list[str]:
    """Names of the folders under `root`: one per table, and any other."""
    fs, base = filesystem(root, storage_options)
    found = fs.get_file_info(pafs.FileSelector(base, allow_not_found=True))
    return sorted(info.base_name for info in found if info.type == pafs.FileType.Directory)


def vacuum_table(table: DeltaTable, retention_hours: int) -> list[str]:
    """Delete the table's files that no version of the last `retention_hours` reads; their paths, relative to
    the table's folder. A retention shorter than the table's own (a week unless configured) is honoured."""
    deleted = table.vacuum(retention_hours=retention_hours, dry_run=False, enforce_retention_duration=False, full=True)
    return sorted(deleted)
