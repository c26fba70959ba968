"""`python -m reco_assets import`: stream foreign files into the landing zone, then save the id mapping."""

import csv
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from reco_assets.adapters import online_retail, opencdp
from reco_assets.adapters.ids import IdMap
from reco_assets.adapters.landing import EventFiles, ObservedCatalog
from reco_assets.resources.lakehouse import Lakehouse

FORMATS = {"opencdp": opencdp, "online-retail": online_retail}
PROGRESS_EVERY = 100_000


@dataclass
class ImportReport:
    rows: int = 0
    kinds: Counter = field(default_factory=Counter)
    unparsed_times: int = 0
    days: dict[date, int] = field(default_factory=dict)
    products: int = 0
    ids: int = 0


def _rows(path: Path, columns: list[str]) -> Iterator[tuple[str, dict]]:
    """(raw line, fields) per data row; the header must name the format's columns."""
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        header = next(csv.reader([handle.readline()]))
        missing = [c for c in columns if c not in header]
        if missing:
            raise ValueError(f"{path}: not this format, missing columns {missing} (header: {header})")
        for line in handle:
            if line.strip():
                values = next(csv.reader([line]))
                yield line.rstrip("\r\n"), dict(zip(header, values, strict=False))


def import_files(
    fmt: str, files: list[Path], landing: Path, lakehouse: Lakehouse, log: Callable[[str], None] = print
) -> ImportReport:
    """Write every row as a landing record of its UTC day, the catalog snapshots and `id_map`."""
    adapter, ids, catalog, out = FORMATS[fmt], IdMap(), ObservedCatalog(), EventFiles(landing)
    report, pending, last_day = ImportReport(), [], None
    try:
        for path in files:
            for at, record in adapter.records(_rows(path, adapter.COLUMNS), ids, catalog):
                report.rows += 1
                report.kinds[record["event_type"]] += 1
                if at is None:
                    report.unparsed_times += 1
                    if last_day is None:
                        pending.append(record)  # lands with the first day read
                        continue
                else:
                    last_day = at.date()
                out.write(last_day, record)
                for early in pending:
                    out.write(last_day, early)
                pending.clear()
                if report.rows % PROGRESS_EVERY == 0:
                    log(f"  {report.rows:,} rows, {len(out.counts)} days, {len(catalog.products):,} products")
        if pending:
            raise ValueError(f"no row of {[str(f) for f in files]} has a readable time: nothing to land")
        # days without a row (a closed shop, a gap in the log) land as empty days, so that a range of days
        # has every file the ingestion of that range reads
        first, last = min(out.counts), max(out.counts)
        for n in range((last - first).days + 1):
            out.touch(first + timedelta(days=n))
    finally:
        out.close()
    report.days = dict(sorted(out.counts.items()))
    catalog.write_snapshots(landing, list(report.days))
    report.products = len(catalog.products)
    report.ids = ids.save(lakehouse)
    return report
