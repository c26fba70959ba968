"""The landing zone: what upstream systems (or the simulator, or an import) drop for each day.

Layout: `<root>/events/YYYY-MM-DD.jsonl` (one JSON event per line), `<root>/catalog/YYYY-MM-DD.csv`
(the catalog and inventory snapshot of the day, at its start) and `<root>/releases/YYYY-MM-DD/HHMM.csv`
(the catalog and inventory snapshot taken at a release of that day, 11:00, 15:00 or 20:00 US Eastern: same
columns as the daily snapshot; it refreshes the cards served that day, those of the day before).

Beside a day's events file, the API lands the events posted to it (`POST /v1/events`) in files of their own,
one per API process and day: `<root>/events/YYYY-MM-DD.api-<writer>.jsonl` (`writer`: letters, digits, `_`
and `-`), appended and synced batch by batch (`serving/event_log.py`). The day's ingestion reads them after
the site's file, so an event in both is the site's (the API's copy is rejected as `duplicate_event_id`).
They make no day by themselves: a day is the site's file.

Only those names are days. Any other file in `events/` (a stray export, `20261031.jsonl`, `2026-W44-6.jsonl`,
`2026-02-30.jsonl`) is listed with a warning and otherwise ignored: it never stops a command or a sensor.
Names that start with a dot are writes in progress (written whole under a temporary name, then renamed)
and are ignored silently.
"""

import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from uuid import uuid4

from dagster import ConfigurableResource

DAY_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.jsonl$")
"""The name of a day's events file: `YYYY-MM-DD.jsonl`, a real calendar day."""
WRITER = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
"""An API writer's name, as it appears in its files' names."""
API_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.api-[A-Za-z0-9_-]{1,64}\.jsonl$")
"""The name of the events an API process landed for a day: `YYYY-MM-DD.api-<writer>.jsonl`."""

log = logging.getLogger(__name__)


def day_of(name: str) -> date | None:
    """The day an events file's name stands for, or None when the name is not a day's."""
    match = DAY_FILE.match(name)
    if match is None:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:  # 2026-02-30
        return None


def landed_days(root: Path) -> tuple[list[date], list[Path]]:
    """(days that have an events file, in order; other files of `events/`, which are not days: the API's
    files of a day are neither)."""
    days, strays = [], []
    for path in sorted((root / "events").glob("*")):
        if path.name.startswith(".") or (API_FILE.match(path.name) and path.is_file()):
            continue
        day = day_of(path.name) if path.is_file() else None
        if day is None:
            strays.append(path)
        else:
            days.append(day)
    return sorted(days), strays


def hidden(path: Path) -> Path:
    """Where `path` is written until it is complete: beside it (a rename within a folder is atomic), named
    `.<name>.<random>.tmp`, which no reader's pattern (`*.jsonl`, `*.csv`, a day's name) matches and no other
    writer shares."""
    return path.with_name(f".{path.name}.{uuid4().hex}.tmp")


@contextmanager
def written_whole(path: Path) -> Iterator[Path]:
    """A hidden path to write `path` to, renamed into place when the block ends, removed if it fails: a
    reader (a sensor, an ingestion) sees the whole file or none of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = hidden(path)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def events_file(root: Path, day: date) -> Path:
    return root / "events" / f"{day:%Y-%m-%d}.jsonl"


def api_events_file(root: Path, day: date, writer: str) -> Path:
    """Where the API process `writer` lands the events it accepts for `day`."""
    if not WRITER.match(writer):
        raise ValueError(f"an API writer's name is 1 to 64 letters, digits, '_' or '-': {writer!r}")
    return root / "events" / f"{day:%Y-%m-%d}.api-{writer}.jsonl"


def api_events_files(root: Path, day: date) -> list[Path]:
    """The files of events the API landed for `day`, by name."""
    return sorted(p for p in (root / "events").glob(f"{day:%Y-%m-%d}.api-*.jsonl") if API_FILE.match(p.name))


def catalog_file(root: Path, day: date) -> Path:
    return root / "catalog" / f"{day:%Y-%m-%d}.csv"


def release_file(root: Path, as_of: date, release: str) -> Path:
    """The snapshot of `release` on the day the cards of `as_of` are served (the next day)."""
    return root / "releases" / f"{as_of + timedelta(days=1):%Y-%m-%d}" / f"{release}.csv"


class LandingResource(ConfigurableResource):
    root: str

    def events_file(self, day: date) -> Path:
        return events_file(Path(self.root), day)

    def api_events_files(self, day: date) -> list[Path]:
        return api_events_files(Path(self.root), day)

    def catalog_file(self, day: date) -> Path:
        return catalog_file(Path(self.root), day)

    def release_file(self, as_of: date, release: str) -> Path:
        return release_file(Path(self.root), as_of, release)

    def days(self) -> list[date]:
        """Days that have an events file, in order; files that are not a day's are named in a warning."""
        days, strays = landed_days(Path(self.root))
        if strays:
            log.warning("landing zone: ignoring %d file(s) that are not a day's events: %s", len(strays), strays[:10])
        return days
