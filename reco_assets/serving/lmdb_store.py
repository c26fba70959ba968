"""The embedded store: one LMDB environment per version under a folder, and a pointer file.

Layout under `root`: `versions/<version>/` (an LMDB environment: the payloads, then `manifest`),
`withdrawn/<version>.json`, `switched/<version>` (when it was last switched to: the order in which
versions are kept), `CURRENT` (the served version's name) and `lock`. Every file readers look at is
replaced whole with `os.replace`, so they see the old or the new one, never a part; a version's environment
is complete and synced before `CURRENT` names it, and never written again. LMDB readers do not block,
so the API reads while the next version loads.

Switches, rollbacks and removals hold an exclusive `flock` on `lock`: one at a time across threads and
processes of the machine, and released by the kernel when a holder dies. Readers never take it.
"""

import fcntl
import os
import shutil
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import lmdb

from reco_assets.serving.store import (
    Manifest,
    MissingVersion,
    ServingStore,
    Switched,
    Withdrawn,
    batched,
    beyond_kept,
    is_older,
)

MAP_SIZE = 1 << 40
"""Address space reserved per environment (1 TiB, virtual: the file grows with what is written)."""
MANIFEST = b"~manifest"
"""Written last into a version's environment, by `switch`."""
BATCH = 2_000
ABANDONED_SECONDS = 6 * 3600
"""A version loading for longer than this without being switched to is taken as abandoned (its loader
crashed or was killed) and removed at the next switch."""

_ENVIRONMENTS: dict[str, lmdb.Environment] = {}
"""One handle per environment and process (LMDB forbids opening one environment twice in a process)."""
_OPENING = threading.Lock()


def _environment(path: Path, create: bool = True) -> lmdb.Environment | None:
    """The process's handle of the environment at `path`; None when it does not exist and `create` is off
    (a version being removed is never made again by a read)."""
    key = str(path)
    with _OPENING:
        env = _ENVIRONMENTS.get(key)
        if env is None:
            if create:
                path.mkdir(parents=True, exist_ok=True)
            try:
                # sync off while loading: `switch` syncs once the version is complete
                env = lmdb.open(
                    key, map_size=MAP_SIZE, sync=False, metasync=False, readahead=False, max_readers=1024, create=create
                )
            except lmdb.Error:
                if create:
                    raise
                return None
            _ENVIRONMENTS[key] = env
        return env


def _forget(path: Path) -> None:
    """Drop the process's handle: the environment closes (and its memory map goes) once no read holds it,
    so a read in progress in another thread finishes on the removed version."""
    with _OPENING:
        _ENVIRONMENTS.pop(str(path), None)


def _replace(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically: a temporary file beside it, synced, then renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    with open(temporary, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)


class LmdbStore(ServingStore):
    errors = (lmdb.Error, OSError, MissingVersion)

    def __init__(self, root: str, keep: int = 2):
        self.root = Path(root)
        self.keep = keep
        self._pointer: tuple | None = None
        self._served: tuple[str, str] | None = None
        """The served version's name and data file, as `CURRENT` named it when last read."""
        self._current: Manifest | None = None
        self._withdrawn: dict[str, tuple[tuple, Withdrawn]] = {}

    def __getstate__(self):  # shipped to Spark tasks: configuration only
        return {"root": str(self.root), "keep": self.keep}

    def __setstate__(self, state):
        self.__init__(**state)

    def _version_path(self, version: str) -> Path:
        if "/" in version or version.startswith("."):
            raise ValueError(f"not a version name: {version!r}")
        return self.root / "versions" / version

    def _withdrawn_path(self, version: str) -> Path:
        return self.root / "withdrawn" / f"{version}.json"

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """The store's write lock (each call opens its own descriptor, so threads exclude each other too)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "lock", "ab") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield  # closing the file releases the lock

    # --- loading -----------------------------------------------------------------------------------
    def write(self, version: str, items: Iterable[tuple[bytes, bytes]]) -> int:
        path = self._version_path(version)
        opened_here = str(path) not in _ENVIRONMENTS
        env, written = _environment(path), 0
        try:
            for batch in batched(items, BATCH):
                with env.begin(write=True) as txn:
                    written += txn.cursor().putmulti(batch)[1]
        finally:
            if opened_here:  # a Spark task's handle: closed, so a removed version's files are freed
                _forget(path)
                env.close()
        return written  # unsynced: `switch` syncs the file once, whichever processes wrote it

    def count(self, version: str, prefix: bytes) -> int:
        env = _environment(self._version_path(version))
        with env.begin() as txn:
            cursor = txn.cursor()
            found = 0
            if cursor.set_range(prefix):
                for key in cursor.iternext(values=False):
                    if not key.startswith(prefix):
                        break
                    found += 1
            return found

    def switch(self, manifest: Manifest) -> Switched:
        version = manifest.version
        with self._lock():
            served = self._served_or_none()
            if is_older(manifest, served):
                self._remove(version)
                return Switched(served, [])
            path = self._version_path(version)
            # not a handle this process still holds of a version removed since
            env = _environment(path, create=False) if (path / "data.mdb").exists() else None
            if env is None:
                raise MissingVersion(f"version {version!r} is not loaded")
            with env.begin(write=True) as txn:
                txn.put(MANIFEST, manifest.to_json())
            env.sync(True)
            dropped = beyond_kept(self.versions(), version, served and served.version, self.keep)
            # removed before the pointer moves: an API process lets go of them when it sees the new pointer
            for old in dropped + [v for v in self._abandoned() if v != version]:
                self._remove(old)
            self._point(version)
        return Switched(manifest, dropped)

    def rollback(self, version: str) -> None:
        with self._lock():
            if version not in self.versions() or self.manifest(version) is None:
                raise MissingVersion(f"no stored version {version!r}; stored: {', '.join(self.versions())}")
            self._point(version)

    def _point(self, version: str) -> None:
        _replace(self.root / "switched" / version, str(time.time_ns()).encode())
        _replace(self.root / "CURRENT", version.encode())

    def _served_or_none(self) -> Manifest | None:
        """The served manifest; None also when the pointer names a version that is gone (a switch repairs it)."""
        try:
            return self.current()
        except MissingVersion:
            return None

    def _abandoned(self) -> list[str]:
        """Versions never switched to whose files have not been written for `ABANDONED_SECONDS`."""
        folder, switched = self.root / "versions", set(self.versions())
        now = time.time()

        def last_written(path: Path) -> float:
            return max((f.stat().st_mtime for f in path.iterdir()), default=path.stat().st_mtime)

        return [
            p.name
            for p in (folder.iterdir() if folder.is_dir() else [])
            if p.is_dir() and p.name not in switched and now - last_written(p) > ABANDONED_SECONDS
        ]

    def discard(self, version: str) -> None:
        with self._lock():
            if self._pointed() == version:
                raise ValueError(f"{version} is served: switch or roll back to another version first")
            self._remove(version)

    def _remove(self, version: str) -> None:
        path = self._version_path(version)
        _forget(path)
        (self.root / "switched" / version).unlink(missing_ok=True)
        shutil.rmtree(path, ignore_errors=True)
        self._withdrawn_path(version).unlink(missing_ok=True)

    def set_withdrawn(self, version: str, withdrawn: Withdrawn) -> None:
        with self._lock():  # a removed version's list is not written again (it would stay forever)
            if not self._version_path(version).is_dir():
                raise MissingVersion(f"version {version!r} is not stored")
            _replace(self._withdrawn_path(version), withdrawn.to_json())

    # --- reading -----------------------------------------------------------------------------------
    def current(self) -> Manifest | None:
        """The served manifest; re-read only when `CURRENT` was replaced. Two `stat`s per call: the pointer,
        and the served version's data file (removed by hand, it is not answered from the memory map)."""
        try:
            stat = os.stat(self.root / "CURRENT")
        except FileNotFoundError:
            return None
        pointer = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if pointer != self._pointer:
            self._forget_removed()
            version = (self.root / "CURRENT").read_text()
            self._served = (version, str(self._version_path(version) / "data.mdb"))
            self._current, self._pointer = self.manifest(version), pointer
        if self._current is None or not os.path.exists(self._served[1]):
            raise MissingVersion(f"the served version {self._served[0]!r} is not stored")
        return self._current

    def _pointed(self) -> str | None:
        try:
            return (self.root / "CURRENT").read_text()
        except FileNotFoundError:
            return None

    def _forget_removed(self) -> None:
        """Let go of versions another process removed (their files are freed once unmapped)."""
        for path in [Path(p) for p in list(_ENVIRONMENTS) if p.startswith(str(self.root))]:
            if not path.is_dir():
                _forget(path)

    def manifest(self, version: str) -> Manifest | None:
        data = self.get(version, MANIFEST)
        return Manifest.from_json(data) if data else None

    def versions(self) -> list[str]:
        """Versions switched to at least once (not one still loading), the latest switched to last."""
        folder = self.root / "switched"
        stamps = (
            {p.name: int(p.read_text()) for p in folder.iterdir() if not p.name.startswith(".")}
            if (folder.is_dir())
            else {}
        )
        return sorted((v for v in stamps if self._version_path(v).is_dir()), key=stamps.get)

    def get(self, version: str, key: bytes) -> bytes | None:
        env = _environment(self._version_path(version), create=False)
        if env is None:
            return None
        with env.begin(buffers=False) as txn:
            return txn.get(key)

    async def get_many_async(self, version: str, keys: list[bytes]) -> list[bytes | None]:
        """In one read transaction: one snapshot, one reader slot."""
        env = _environment(self._version_path(version), create=False)
        if env is None:
            return [None] * len(keys)
        with env.begin(buffers=False) as txn:
            return [txn.get(key) for key in keys]

    def withdrawn(self, version: str) -> Withdrawn:
        path = self._withdrawn_path(version)
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            return Withdrawn.from_json(None)
        stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        cached = self._withdrawn.get(version)
        if cached is None or cached[0] != stamp:
            cached = (stamp, Withdrawn.from_json(path.read_bytes()))
            self._withdrawn = {version: cached}
        return cached[1]
