"""The shared store: versioned keys in a Redis server and a pointer key switched atomically.

Keys under `prefix` (default `reco`): `<prefix>:<version>:<key>` (payloads, source ids), then
`<prefix>:<version>:~manifest`, `<prefix>:<version>:~withdrawn`; `<prefix>:current` names the served
version, `<prefix>:versions` (a sorted set, by switch time) the stored ones and `<prefix>:loading` (by
start time) those being loaded: one loading for longer than `ABANDONED_SECONDS` is removed at a switch.
Versioned keys rather than `SWAPDB`, so the layout also works on a Redis cluster. Spark tasks load with
pipelined `SET`s; a version beyond the kept ones gets an expiry (`grace` seconds, so requests in flight
finish) instead of a delete.
"""

import time
from collections.abc import Iterable

import redis
import redis.asyncio

from reco_assets.serving.store import Manifest, ServingStore, Withdrawn, batched

BATCH = 1_000
ABANDONED_SECONDS = 6 * 3600
TIMEOUT_SECONDS = 2.0
"""Connect and read timeout: a request to a stalled server fails (503) after it."""


class RedisStore(ServingStore):
    errors = (redis.RedisError, OSError)

    def __init__(self, url: str, prefix: str = "reco", keep: int = 2, grace: int = 300, refresh: float = 1.0):
        """`refresh`: seconds an API process reuses the pointer and a version's withdrawn list before reading
        them again, so that a request costs one round trip. A switch reaches every API process within it;
        each answer still comes from one version, and the previous versions stay readable."""
        self.url, self.prefix, self.keep, self.grace, self.refresh = url, prefix, keep, grace, refresh
        self._client: redis.Redis | None = None
        self._async_client: redis.asyncio.Redis | None = None
        self._manifests: dict[str, Manifest] = {}
        self._current: tuple[float, Manifest | None] | None = None
        self._withdrawn: tuple[str, float, Withdrawn] | None = None

    def __getstate__(self):  # shipped to Spark tasks: configuration only
        return {"url": self.url, "prefix": self.prefix, "keep": self.keep, "grace": self.grace, "refresh": self.refresh}

    def __setstate__(self, state):
        self.__init__(**state)

    @property
    def client(self) -> redis.Redis:
        if self._client is None:
            self._client = redis.Redis.from_url(
                self.url, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS
            )
        return self._client

    @property
    def async_client(self) -> redis.asyncio.Redis:
        """The API's client (made in its event loop on first use): a slow server holds no other request."""
        if self._async_client is None:
            self._async_client = redis.asyncio.Redis.from_url(
                self.url, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS
            )
        return self._async_client

    def _key(self, version: str, key: bytes) -> bytes:
        return f"{self.prefix}:{version}:".encode() + key

    # --- loading -----------------------------------------------------------------------------------
    def write(self, version: str, items: Iterable[tuple[bytes, bytes]]) -> int:
        self.client.zadd(f"{self.prefix}:loading", {version: time.time()}, nx=True)
        written = 0
        for batch in batched(items, BATCH):
            pipe = self.client.pipeline(transaction=False)
            for key, value in batch:
                pipe.set(self._key(version, key), value)
            written += sum(1 for ok in pipe.execute() if ok)
        return written

    def count(self, version: str, prefix: bytes) -> int:
        """Exact: SCAN may return a key twice while the server rehashes, so keys are counted once each
        (the driver holds the version's keys of `prefix` meanwhile: about 100-130 bytes per member)."""
        return len(set(self.client.scan_iter(match=self._key(version, prefix) + b"*", count=10_000)))

    def switch(self, manifest: Manifest) -> list[str]:
        version = manifest.version
        self.client.set(self._key(version, b"~manifest"), manifest.to_json())
        pipe = self.client.pipeline(transaction=True)  # MULTI/EXEC: pointer and version list together
        pipe.set(f"{self.prefix}:current", version)
        pipe.zadd(f"{self.prefix}:versions", {version: time.time()})
        pipe.zrem(f"{self.prefix}:loading", version)
        pipe.execute()
        self._current = None
        others = [v for v in self.versions() if v != version]
        dropped = others[: max(len(others) - self.keep, 0)]
        abandoned = self.client.zrangebyscore(f"{self.prefix}:loading", 0, time.time() - ABANDONED_SECONDS)
        for old in dropped + [v.decode() for v in abandoned]:
            self.discard(old)
        return dropped

    def discard(self, version: str) -> None:
        self.client.zrem(f"{self.prefix}:versions", version)
        self.client.zrem(f"{self.prefix}:loading", version)
        for keys in batched(self.client.scan_iter(match=self._key(version, b"*"), count=10_000), BATCH):
            pipe = self.client.pipeline(transaction=False)
            for key in keys:
                pipe.expire(key, self.grace)
            pipe.execute()

    def set_withdrawn(self, version: str, withdrawn: Withdrawn) -> None:
        self.client.set(self._key(version, b"~withdrawn"), withdrawn.to_json())

    # --- reading -----------------------------------------------------------------------------------
    def current(self) -> Manifest | None:
        if self._stale_current():
            version = self.client.get(f"{self.prefix}:current")
            self._current = (time.monotonic(), None if version is None else self.manifest(version.decode()))
        return self._current[1]

    def manifest(self, version: str) -> Manifest | None:
        if version not in self._manifests:  # a version's manifest never changes
            data = self.client.get(self._key(version, b"~manifest"))
            if data is None:
                return None
            self._manifests = {version: Manifest.from_json(data)}
        return self._manifests[version]

    def versions(self) -> list[str]:
        return [v.decode() for v in self.client.zrange(f"{self.prefix}:versions", 0, -1)]

    def get(self, version: str, key: bytes) -> bytes | None:
        return self.client.get(self._key(version, key))

    def withdrawn(self, version: str) -> Withdrawn:
        if self._stale_withdrawn(version):
            self._withdrawn = (version, time.monotonic(), Withdrawn.from_json(self.get(version, b"~withdrawn")))
        return self._withdrawn[2]

    def _stale_withdrawn(self, version: str) -> bool:
        cached = self._withdrawn
        return cached is None or cached[0] != version or time.monotonic() - cached[1] > self.refresh

    def _stale_current(self) -> bool:
        return self._current is None or time.monotonic() - self._current[0] > self.refresh

    # --- the same reads, for the API's event loop ----------------------------------------------------
    async def current_async(self) -> Manifest | None:
        if self._stale_current():
            version = await self.async_client.get(f"{self.prefix}:current")
            manifest = None
            if version is not None:
                name = version.decode()
                manifest = self._manifests.get(name)
                if manifest is None:
                    data = await self.async_client.get(self._key(name, b"~manifest"))
                    manifest = Manifest.from_json(data) if data is not None else None
                    self._manifests = {name: manifest} if manifest else self._manifests
            self._current = (time.monotonic(), manifest)
        return self._current[1]

    async def get_async(self, version: str, key: bytes) -> bytes | None:
        return await self.async_client.get(self._key(version, key))

    async def withdrawn_async(self, version: str) -> Withdrawn:
        if self._stale_withdrawn(version):
            data = await self.get_async(version, b"~withdrawn")
            self._withdrawn = (version, time.monotonic(), Withdrawn.from_json(data))
        return self._withdrawn[2]
