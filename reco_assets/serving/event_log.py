"""The events the API accepts, landed durably: appended to the process's own file of the day in the landing zone.

Each API process writes `events/YYYY-MM-DD.api-<writer>.jsonl` (`resources/landing.py`), one JSON event per
line, and holds an exclusive `flock` on it while it runs, so no two processes share a file (a second process
started with the same `writer` fails on its first event). An event is acknowledged only once its line is
written and `fsync`ed: after a crash, every acknowledged event is in the file, and a line cut short by the
crash was never acknowledged (ingestion rejects it as `malformed_json`, and the client posts it again).

Requests do not each pay a sync: they queue their lines, and one writer (a thread, off the event loop)
writes what has queued and syncs once for all of it (a group commit), so a sync's cost is shared by every
request that arrived meanwhile.

A day is open while its site file (`events/YYYY-MM-DD.jsonl`) has not landed: once it has, the day's batch
may read the API's files at any moment, and a line appended later would be missed, so the API rejects that
day's events (`day_closed`).
"""

import asyncio
import fcntl
import os
from datetime import date
from pathlib import Path

from reco_assets.resources.landing import api_events_file, events_file


class EventLog:
    """The landing zone's files of one API process (`writer`)."""

    def __init__(self, root: str, writer: str):
        self.root, self.writer = Path(root), writer
        api_events_file(self.root, date(2000, 1, 1), writer)  # the name is checked before any event comes
        self._files: dict[date, int] = {}
        self._queue: list[tuple[date, bytes, asyncio.Future]] = []
        self._writing: asyncio.Task | None = None

    def closed(self, day: date) -> bool:
        """Whether `day`'s site file has landed (its batch may read the API's files now)."""
        return events_file(self.root, day).exists()

    async def append(self, day: date, lines: list[bytes]) -> None:
        """Land `lines` (JSON events without line ends) in `day`'s file; returns once they are synced."""
        if not lines:
            return
        done = asyncio.get_running_loop().create_future()
        self._queue.append((day, b"".join(line + b"\n" for line in lines), done))
        if self._writing is None or self._writing.done():
            self._writing = asyncio.create_task(self._drain())
        await done

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                await asyncio.to_thread(self._write, batch)
            except OSError as error:
                for _, _, done in batch:
                    done.set_exception(error)
            else:
                for _, _, done in batch:
                    done.set_result(None)

    def _write(self, batch: list[tuple[date, bytes, asyncio.Future]]) -> None:
        per_day: dict[date, list[bytes]] = {}
        for day, data, _ in batch:
            per_day.setdefault(day, []).append(data)
        for day, parts in per_day.items():
            handle = self._file(day)
            data = memoryview(b"".join(parts))
            while data:
                data = data[os.write(handle, data) :]
            os.fsync(handle)

    def _file(self, day: date) -> int:
        """The descriptor of `day`'s file, opened for appending and locked on first use; a new file's folder
        entry is synced too, so the file itself survives a crash."""
        handle = self._files.get(day)
        if handle is None:
            path = api_events_file(self.root, day, self.writer)
            path.parent.mkdir(parents=True, exist_ok=True)
            created = not path.exists()
            handle = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(handle)
                raise OSError(f"another API process writes {path} (give each one its own RECO_API_WRITER)") from None
            if created:
                folder = os.open(path.parent, os.O_RDONLY)
                try:
                    os.fsync(folder)
                finally:
                    os.close(folder)
            self._files[day] = handle
        return handle

    def close(self) -> None:
        for handle in self._files.values():
            os.close(handle)
        self._files.clear()
