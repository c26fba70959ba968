"""What an import writes: daily JSON-lines event files, streamed, daily catalog snapshots of what was seen, and
the records it rejected.

Every file is written whole under a hidden name beside its own and renamed into place at the end of a
successful import (`StagedFiles`): a reader (the landing sensor, `LandingResource.days`) sees a day complete
or not at all, and a failed import shows nothing it wrote.
"""

import csv
import json
import os
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TextIO

from reco_assets.adapters.source import Record, printable
from reco_assets.pipeline.ingestion import CATALOG_SCHEMA
from reco_assets.resources.landing import catalog_file, events_file, hidden

CATALOG_COLUMNS = [column.split()[0] for column in CATALOG_SCHEMA.split(", ")]
"""The landed catalog's columns, as ingestion reads them."""
ALWAYS_LIVE = "2100-01-01T00:00:00Z"
"""Imported products stay on sale: event logs say when a product was first seen, not when it went off sale."""


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class StagedFiles:
    """Files written under hidden names (`hidden`), then made visible together: `publish` renames each into
    place with `os.replace`, `discard` removes what was not published.

    On an object store a single PUT is already whole (and a rename is a copy): there each file must be put
    only once it is complete, after the import succeeded; the protocol, write whole then make visible, holds
    the same. A crash before `publish` leaves hidden `.tmp` files that nothing reads.
    """

    def __init__(self) -> None:
        self.files: list[tuple[Path, Path, TextIO]] = []

    def open(self, path: Path) -> TextIO:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = hidden(path)
        handle = temporary.open("w", newline="", encoding="utf-8")
        self.files.append((temporary, path, handle))
        return handle

    def publish(self) -> None:
        for _, _, handle in self.files:
            handle.close()
        for temporary, path, _ in self.files:
            os.replace(temporary, path)
        self.files.clear()

    def discard(self) -> None:
        for temporary, _, handle in self.files:
            handle.close()
            temporary.unlink(missing_ok=True)
        self.files.clear()


class EventFiles:
    """One open file per day: records are written as they are read, so memory does not grow with the input.

    An import replaces the files of the days it reaches, whole, when it succeeds (`staged.publish`).
    """

    def __init__(self, landing: Path) -> None:
        self.landing, self.staged = landing, StagedFiles()
        self.files: dict[date, TextIO] = {}
        self.counts: dict[date, int] = {}

    def touch(self, day: date) -> TextIO:
        """The day's file, created (empty) on first use."""
        handle = self.files.get(day)
        if handle is None:
            handle = self.files[day] = self.staged.open(events_file(self.landing, day))
            self.counts[day] = 0
        return handle

    def write(self, day: date, record: dict) -> None:
        self.touch(day).write(json.dumps(record) + "\n")
        self.counts[day] += 1


def rejected_file(landing: Path, source: Path) -> Path:
    """`<landing>/rejected/<source file stem>.jsonl`: the records of `source` that were not landed."""
    return landing / "rejected" / f"{source.stem}.jsonl"


def rejection(source: Path, record: Record, reason: str) -> str:
    """A line of the rejected file: the source file, the record's number and first line, the rule, the text."""
    entry = {"file": str(source), "record": record.number, "line": record.line, "reason": reason}
    return json.dumps(entry | {"text": printable(record.text)}) + "\n"


@dataclass
class Product:
    style_id: int
    subclass_brand_id: int
    brand: str
    division: str
    department: str
    klass: str
    subclass: str
    price: float
    first_seen: datetime
    last_seen: datetime


class ObservedCatalog:
    """Products as the events show them: first seen, last price; one snapshot per landed day.

    Stock is unknown (`qty_on_hand` empty): the pipeline then treats a product as available rather than
    inventing sell-outs. Memory grows with the number of products, not with the events.
    """

    def __init__(self, max_price: float) -> None:
        self.max_price = max_price
        self.products: dict[int, Product] = {}

    def observe(self, product: Product) -> None:
        """`product` as one event shows it (first_seen = last_seen = the event's time). A price ingestion
        rejects (negative, above `max_price`) says nothing about the product: such an event is landed, and
        quarantined by ingestion, but not observed."""
        if not 0 <= product.price <= self.max_price:
            return
        known = self.products.get(product.style_id)
        if known is None:
            self.products[product.style_id] = product
            return
        if product.last_seen >= known.last_seen:
            known.price, known.last_seen = product.price, product.last_seen
        known.first_seen = min(known.first_seen, product.first_seen)

    def write_snapshots(self, staged: StagedFiles, landing: Path, days: list[date]) -> None:
        ordered = sorted(self.products.values(), key=lambda p: (p.first_seen, p.style_id))
        for day in days:
            end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc)
            with staged.open(catalog_file(landing, day)) as handle:
                writer = csv.writer(handle)
                writer.writerow(CATALOG_COLUMNS)
                for p in ordered:
                    if p.first_seen >= end:
                        break
                    seen = iso(p.first_seen)
                    writer.writerow(
                        [
                            p.style_id,
                            p.subclass_brand_id,
                            p.brand,
                            p.division,
                            p.department,
                            p.klass,
                            p.subclass,
                            p.price,
                            seen,
                            seen,
                            ALWAYS_LIVE,
                            "",
                            0,
                        ]
                    )
