"""`python -m reco_assets import`: stream foreign files into the landing zone, then save the id mapping.

Every record of a source file is either landed (imported) or rejected: records = imported + rejected, per
file. A record the landing zone cannot carry faithfully is rejected here with its rule (`source.py`, the
adapters) and written to `<landing>/rejected/<source file stem>.jsonl`; a record ingestion has a rule for (no
member, a negative price, ...) is landed as read and quarantined by ingestion. Nothing is visible before
the whole import succeeded: the events, the catalog snapshots and the rejected files are written under
hidden names, `id_map` gains the new mappings, then the files are renamed into place.
"""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from reco_assets.adapters import online_retail, opencdp
from reco_assets.adapters.ids import IdMap
from reco_assets.adapters.landing import EventFiles, ObservedCatalog, StagedFiles, rejected_file, rejection
from reco_assets.adapters.source import Rejected, read_records
from reco_assets.pipeline.ingestion import InputLimits
from reco_assets.resources.lakehouse import Lakehouse
from reco_assets.settings import RecoSettings

FORMATS = {"opencdp": opencdp, "online-retail": online_retail}
PROGRESS_EVERY = 100_000


@dataclass
class FileReport:
    """What became of one source file's records: `records` = `imported` + the sum of `rejected`."""

    path: Path
    rejected_file: Path
    records: int = 0
    imported: int = 0
    rejected: Counter = field(default_factory=Counter)
    """Records per reason."""


@dataclass
class ImportReport:
    files: list[FileReport]
    kinds: Counter = field(default_factory=Counter)
    unparsed_times: int = 0
    days: dict[date, int] = field(default_factory=dict)
    products: int = 0
    ids: int = 0
    """Mappings added to `id_map`."""

    @property
    def records(self) -> int:
        return sum(f.records for f in self.files)

    @property
    def imported(self) -> int:
        return sum(f.imported for f in self.files)

    @property
    def rejected(self) -> Counter:
        return sum((f.rejected for f in self.files), Counter())


class _Landing:
    """Places each landed record in its UTC day; a record without a readable time goes to the day of the
    record before it (before the first readable time: the first day read)."""

    def __init__(self, landing: Path) -> None:
        self.events, self.pending, self.last_day = EventFiles(landing), [], None

    def land(self, at: datetime | None, record: dict) -> None:
        if at is None and self.last_day is None:
            self.pending.append(record)
            return
        if at is not None:
            self.last_day = at.date()
        self.events.write(self.last_day, record)
        for early in self.pending:
            self.events.write(self.last_day, early)
        self.pending.clear()


def import_files(
    fmt: str,
    files: list[Path],
    landing: Path,
    lakehouse: Lakehouse,
    log: Callable[[str], None] = print,
    limits: InputLimits | None = None,
) -> ImportReport:
    """Land every record as a landing record of its UTC day or reject it, write the catalog snapshots and
    add the new ids to `id_map`; `limits`: the prices the catalog takes (default: `RecoSettings`')."""
    adapter = FORMATS[fmt]
    ids, catalog = IdMap(), ObservedCatalog((limits or RecoSettings().input_limits()).max_price)
    convert = adapter.reader(ids, catalog)
    report = ImportReport([FileReport(path, rejected_file(landing, path)) for path in files])
    named = Counter(f.rejected_file for f in report.files)
    if max(named.values(), default=0) > 1:
        raise ValueError(f"two source files share a name, so would their rejected files: {named.most_common(1)}")
    out, rejects, snapshots = _Landing(landing), StagedFiles(), StagedFiles()
    try:
        for counts in report.files:
            rejected = rejects.open(counts.rejected_file)
            for record in read_records(counts.path, adapter.COLUMNS):
                counts.records += 1
                try:
                    if record.reason:
                        raise Rejected(record.reason)
                    at, landed = convert(record.text, record.fields)
                except Rejected as rule:
                    counts.rejected[rule.reason] += 1
                    rejected.write(rejection(counts.path, record, rule.reason))
                    continue
                counts.imported += 1
                report.kinds[landed["event_type"]] += 1
                if at is None:
                    report.unparsed_times += 1
                out.land(at, landed)
                if counts.records % PROGRESS_EVERY == 0:
                    log(f"  {counts.path.name}: {counts.records:,} records, {len(catalog.products):,} products")
        if out.pending:
            raise ValueError(f"no record of {[str(f) for f in files]} has a readable time: nothing to land")
        days = out.events.counts
        if days:
            # days without a record (a closed shop, a gap in the log) land as empty days, so that a range of days
            # has every file the ingestion of that range reads
            first, last = min(days), max(days)
            for n in range((last - first).days + 1):
                out.events.touch(first + timedelta(days=n))
        report.days = dict(sorted(days.items()))
        catalog.write_snapshots(snapshots, landing, list(report.days))
        report.products = len(catalog.products)
        report.ids = ids.save(lakehouse)
        # a day is listed by its events file: that goes last, once its snapshot is in place
        for staged in (rejects, snapshots, out.events.staged):
            staged.publish()
    finally:
        for staged in (rejects, snapshots, out.events.staged):
            staged.discard()
    return report
