"""The shared store: versioned keys in a Redis server and a pointer key switched atomically.

Keys under `prefix` (default `reco`): `<prefix>:<version>:<key>` (payloads, source ids), then
`<prefix>:<version>:~manifest`, `<prefix>:<version>:~withdrawn`; `<prefix>:current` names the served
version, `<prefix>:versions` (a sorted set, by switch time) the stored ones, `<prefix>:loading` (by
start time) those being loaded (one loading for longer than `ABANDONED_SECONDS` is removed at a switch) and
`<prefix>:dropping` those being removed. Spark tasks load with pipelined `SET`s.

A switch, a rollback and a removal are each one `WATCH`/`MULTI` transaction over the pointer and the sets
of versions: it reads the served version, checks, and writes; if another process changed them meanwhile,
it starts again. A removed version is moved to `dropping` in that transaction, then its keys get an expiry
(`grace` seconds, so requests in flight finish) and it leaves `dropping`; a remover that dies in between
leaves it there, and the next switch finishes the job. So no version's keys stay without an entry naming
them.

One Redis server (with replicas for failover if wanted), not Redis Cluster: the transactions span the
pointer and the sets of versions, and a removal scans one keyspace. On a cluster every key would need one
hash tag, which puts the whole store in one slot, on one node: a cluster would add nothing a single server
does not have, and its client's redirections besides.
"""

import time
from collections.abc import Iterable

import redis
import redis.asyncio

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

BATCH = 1_000
ABANDONED_SECONDS = 6 * 3600
TIMEOUT_SECONDS = 2.0
"""Connect and read timeout: a request to a stalled server fails (503) after it."""
MANIFEST = b"~manifest"
WITHDRAWN = b"~withdrawn"


class RedisStore(ServingStore):
    errors = (redis.RedisError, OSError, MissingVersion)

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

    @property
    def _pointer(self) -> str:
        return f"{self.prefix}:current"

    @property
    def _versions(self) -> str:
        return f"{self.prefix}:versions"

    @property
    def _loading(self) -> str:
        return f"{self.prefix}:loading"

    @property
    def _dropping(self) -> str:
        return f"{self.prefix}:dropping"

    # --- loading -----------------------------------------------------------------------------------
    def write(self, version: str, items: Iterable[tuple[bytes, bytes]]) -> int:
        written = 0
        for batch in batched(items, BATCH):
            pipe = self.client.pipeline(transaction=False)
            for key, value in batch:
                pipe.set(self._key(version, key), value)
            # named after its keys: a batch written after the version was removed leaves it loading again,
            # so it is removed once abandoned rather than kept forever
            pipe.zadd(self._loading, {version: time.time()}, nx=True)
            written += sum(1 for ok in pipe.execute()[:-1] if ok)
        return written

    def count(self, version: str, prefix: bytes) -> int:
        """Exact: SCAN may return a key twice while the server rehashes, so keys are counted once each
        (the driver holds the version's keys of `prefix` meanwhile: about 100-130 bytes per member)."""
        return len(set(self.client.scan_iter(match=self._key(version, prefix) + b"*", count=10_000)))

    def _transaction(self, step):
        """Run `step(pipe)` as one optimistic transaction: it reads in immediate mode, then queues its writes
        after `pipe.multi()`; when another process changed the pointer or the kept or removed versions before
        `EXEC`, it runs again. `loading` is not watched: loaders add to it all the time, and a version leaves
        it only with a change to a watched key."""
        return self.client.transaction(step, self._pointer, self._versions, self._dropping, value_from_callable=True)

    def _stored(self, pipe, version: str) -> bool:
        """Loaded or kept, and not being removed."""
        if pipe.zscore(self._dropping, version) is not None:
            return False
        return pipe.zscore(self._versions, version) is not None or pipe.zscore(self._loading, version) is not None

    def _drop(self, pipe, versions: list[str]) -> None:
        """Queue `versions` for removal (in the transaction): their keys are expired by `_sweep` after it."""
        if versions:
            pipe.zrem(self._versions, *versions)
            pipe.zrem(self._loading, *versions)
            pipe.zadd(self._dropping, {v: time.time() for v in versions})

    def _sweep(self) -> None:
        """Expire the keys of every version being removed, then forget it (again after a remover died)."""
        for name in self.client.zrange(self._dropping, 0, -1):
            version = name.decode()
            for keys in batched(self.client.scan_iter(match=self._key(version, b"*"), count=10_000), BATCH):
                pipe = self.client.pipeline(transaction=False)
                for key in keys:
                    pipe.expire(key, self.grace)
                pipe.execute()
            self.client.zrem(self._dropping, version)

    def switch(self, manifest: Manifest) -> Switched:
        version = manifest.version

        def step(pipe) -> Switched:
            pointed = pipe.get(self._pointer)
            served = self._manifest_in(pipe, pointed.decode()) if pointed else None
            if is_older(manifest, served):
                pipe.multi()
                self._drop(pipe, [version])
                return Switched(served, [])
            if not self._stored(pipe, version):
                raise MissingVersion(f"version {version!r} is not loaded")
            kept = [v.decode() for v in pipe.zrange(self._versions, 0, -1)]
            dropped = beyond_kept(kept, version, served and served.version, self.keep)
            stale = pipe.zrangebyscore(self._loading, 0, time.time() - ABANDONED_SECONDS)
            abandoned = [v for v in (s.decode() for s in stale) if v != version and v not in kept]
            pipe.multi()
            pipe.set(self._key(version, MANIFEST), manifest.to_json())
            pipe.set(self._pointer, version)
            pipe.zadd(self._versions, {version: time.time()})
            pipe.zrem(self._loading, version)
            self._drop(pipe, dropped + abandoned)
            return Switched(manifest, dropped)

        switched = self._transaction(step)
        self._current = None
        self._sweep()
        return switched

    def rollback(self, version: str) -> None:
        def step(pipe) -> None:
            kept = pipe.zscore(self._versions, version) is not None  # a removed one has left the set
            if not kept or not pipe.exists(self._key(version, MANIFEST)):
                stored = ", ".join(v.decode() for v in pipe.zrange(self._versions, 0, -1))
                raise MissingVersion(f"no stored version {version!r}; stored: {stored}")
            pipe.multi()
            pipe.set(self._pointer, version)
            pipe.zadd(self._versions, {version: time.time()})

        self._transaction(step)
        self._current = None

    def discard(self, version: str) -> None:
        def step(pipe) -> None:
            if pipe.get(self._pointer) == version.encode():
                raise ValueError(f"{version} is served: switch or roll back to another version first")
            pipe.multi()
            self._drop(pipe, [version])

        self._transaction(step)
        self._sweep()

    def set_withdrawn(self, version: str, withdrawn: Withdrawn) -> None:
        def step(pipe) -> None:
            if not self._stored(pipe, version):  # a removed version's key would stay forever
                raise MissingVersion(f"version {version!r} is not stored")
            pipe.multi()
            pipe.set(self._key(version, WITHDRAWN), withdrawn.to_json())

        self._transaction(step)

    # --- reading -----------------------------------------------------------------------------------
    def current(self) -> Manifest | None:
        if self._stale_current():
            version = self.client.get(self._pointer)
            manifest = None
            if version is not None:
                manifest = self._manifest_in(self.client, version.decode())
                if manifest is None:
                    raise MissingVersion(f"the served version {version.decode()!r} is not stored")
            self._current = (time.monotonic(), manifest)
        return self._current[1]

    def _manifest_in(self, client, version: str) -> Manifest | None:
        data = client.get(self._key(version, MANIFEST))
        return Manifest.from_json(data) if data is not None else None

    def manifest(self, version: str) -> Manifest | None:
        if version not in self._manifests:  # a version's manifest never changes
            manifest = self._manifest_in(self.client, version)
            if manifest is None:
                return None
            self._manifests = {version: manifest}
        return self._manifests[version]

    def versions(self) -> list[str]:
        return [v.decode() for v in self.client.zrange(self._versions, 0, -1)]

    def get(self, version: str, key: bytes) -> bytes | None:
        return self.client.get(self._key(version, key))

    def withdrawn(self, version: str) -> Withdrawn:
        if self._stale_withdrawn(version):
            self._withdrawn = (version, time.monotonic(), Withdrawn.from_json(self.get(version, WITHDRAWN)))
        return self._withdrawn[2]

    def _stale_withdrawn(self, version: str) -> bool:
        cached = self._withdrawn
        return cached is None or cached[0] != version or time.monotonic() - cached[1] > self.refresh

    def _stale_current(self) -> bool:
        return self._current is None or time.monotonic() - self._current[0] > self.refresh

    # --- the same reads, for the API's event loop ----------------------------------------------------
    async def current_async(self) -> Manifest | None:
        """At most every `refresh` seconds: the pointer, then its manifest (only whether it still exists,
        when it was read before)."""
        if self._stale_current():
            version = await self.async_client.get(self._pointer)
            manifest = None
            if version is not None:
                name = version.decode()
                key = self._key(name, MANIFEST)
                manifest = self._manifests.get(name)
                if manifest is None:
                    data = await self.async_client.get(key)
                    manifest = Manifest.from_json(data) if data is not None else None
                    self._manifests = {name: manifest} if manifest else self._manifests
                elif not await self.async_client.exists(key):
                    manifest = None
                if manifest is None:
                    raise MissingVersion(f"the served version {name!r} is not stored")
            self._current = (time.monotonic(), manifest)
        return self._current[1]

    async def get_async(self, version: str, key: bytes) -> bytes | None:
        value = await self.async_client.get(self._key(version, key))
        # a miss costs a second round trip: a member without a payload, or a version gone within `refresh`
        if value is None and not await self.async_client.exists(self._key(version, MANIFEST)):
            raise MissingVersion(f"the served version {version!r} is not stored")
        return value

    async def get_many_async(self, version: str, keys: list[bytes]) -> list[bytes | None]:
        """One `MGET`; a miss among them costs a second round trip, as in `get_async`."""
        if not keys:
            return []
        values = await self.async_client.mget([self._key(version, key) for key in keys])
        if None in values and not await self.async_client.exists(self._key(version, MANIFEST)):
            raise MissingVersion(f"the served version {version!r} is not stored")
        return values

    async def withdrawn_async(self, version: str) -> Withdrawn:
        if self._stale_withdrawn(version):
            data = await self.get_async(version, WITHDRAWN)
            self._withdrawn = (version, time.monotonic(), Withdrawn.from_json(data))
        return self._withdrawn[2]
