"""What an import writes: daily JSON-lines event files, streamed, and daily catalog snapshots of what was seen."""

import csv
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TextIO

from reco_assets.pipeline.ingestion import CATALOG_SCHEMA
from reco_assets.resources.landing import catalog_file, events_file

CATALOG_COLUMNS = [column.split()[0] for column in CATALOG_SCHEMA.split(", ")]
"""The landed catalog's columns, as ingestion reads them."""
ALWAYS_LIVE = "2100-01-01T00:00:00Z"
"""Imported products stay on sale: event logs say when a product was first seen, not when it went off sale."""


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventFiles:
    """One open file per day: records are written as they are read, so memory does not grow with the input.

    A day's file is rewritten by the first record of an import that reaches it (re-importing replaces it).
    """

    def __init__(self, landing: Path) -> None:
        self.landing, self.files, self.counts = landing, {}, {}

    def touch(self, day: date) -> TextIO:
        """The day's file, created (emptied) on first use."""
        handle: TextIO | None = self.files.get(day)
        if handle is None:
            path = events_file(self.landing, day)
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = self.files[day] = path.open("w")
            self.counts[day] = 0
        return handle

    def write(self, day: date, record: dict) -> None:
        self.touch(day).write(json.dumps(record) + "\n")
        self.counts[day] += 1

    def close(self) -> None:
        for handle in self.files.values():
            handle.close()


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

    def __init__(self) -> None:
        self.products: dict[int, Product] = {}

    def observe(self, product: Product) -> None:
        """`product` as one event shows it (first_seen = last_seen = the event's time)."""
        known = self.products.get(product.style_id)
        if known is None:
            self.products[product.style_id] = product
            return
        if product.last_seen >= known.last_seen:
            known.price, known.last_seen = product.price, product.last_seen
        known.first_seen = min(known.first_seen, product.first_seen)

    def write_snapshots(self, landing: Path, days: list[date]) -> None:
        ordered = sorted(self.products.values(), key=lambda p: (p.first_seen, p.style_id))
        for day in days:
            end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc)
            path = catalog_file(landing, day)
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w", newline="") as handle:
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
