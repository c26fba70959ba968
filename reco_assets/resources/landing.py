"""The landing zone: what upstream systems (or the simulator, or an import) drop for each day.

Layout: `<root>/events/YYYY-MM-DD.jsonl` (one JSON event per line) and `<root>/catalog/YYYY-MM-DD.csv`
(the catalog and inventory snapshot of the day).
"""

from datetime import date
from pathlib import Path

from dagster import ConfigurableResource


def events_file(root: Path, day: date) -> Path:
    return root / "events" / f"{day:%Y-%m-%d}.jsonl"


def catalog_file(root: Path, day: date) -> Path:
    return root / "catalog" / f"{day:%Y-%m-%d}.csv"


class LandingResource(ConfigurableResource):
    root: str

    def events_file(self, day: date) -> Path:
        return events_file(Path(self.root), day)

    def catalog_file(self, day: date) -> Path:
        return catalog_file(Path(self.root), day)

    def days(self) -> list[date]:
        """Days that have an events file, in order."""
        return sorted(date.fromisoformat(p.stem) for p in (Path(self.root) / "events").glob("*.jsonl"))
