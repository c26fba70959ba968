"""The landing zone: what upstream systems (or the simulator, or an import) drop for each day.

Layout: `<root>/events/YYYY-MM-DD.jsonl` (one JSON event per line), `<root>/catalog/YYYY-MM-DD.csv`
(the catalog and inventory snapshot of the day, at its start) and `<root>/releases/YYYY-MM-DD/HHMM.csv`
(the catalog and inventory snapshot taken at a release of that day, 11:00, 15:00 or 20:00 US Eastern: same
columns as the daily snapshot; it refreshes the cards served that day, those of the day before).
"""

from datetime import date, timedelta
from pathlib import Path

from dagster import ConfigurableResource


def events_file(root: Path, day: date) -> Path:
    return root / "events" / f"{day:%Y-%m-%d}.jsonl"


def catalog_file(root: Path, day: date) -> Path:
    return root / "catalog" / f"{day:%Y-%m-%d}.csv"


def release_file(root: Path, as_of: date, release: str) -> Path:
    """The snapshot of `release` on the day the cards of `as_of` are served (the next day)."""
    return root / "releases" / f"{as_of + timedelta(days=1):%Y-%m-%d}" / f"{release}.csv"


class LandingResource(ConfigurableResource):
    root: str

    def events_file(self, day: date) -> Path:
        return events_file(Path(self.root), day)

    def catalog_file(self, day: date) -> Path:
        return catalog_file(Path(self.root), day)

    def release_file(self, as_of: date, release: str) -> Path:
        return release_file(Path(self.root), as_of, release)

    def days(self) -> list[date]:
        """Days that have an events file, in order."""
        return sorted(date.fromisoformat(p.stem) for p in (Path(self.root) / "events").glob("*.jsonl"))
