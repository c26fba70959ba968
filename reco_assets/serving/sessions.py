"""The shoppers' recent events on the serving side: what `POST /v1/events` accepted, for re-ranking at request time.

A shopper is a member (`m:<member id>`) or a session (`s:<session id>`: the site's session id, taken as unique
across shoppers, as a cookie is); an event is kept for both, so an anonymous session has its events and a
member's follow them across sessions. Each keeps
its last `max_events` events that are at most `window_minutes` older than its newest one (the API reads no
clock: event times order them), oldest first, as entries `[event_time, event_type, style_id, event_id]`. An
event id is recorded once per serving day: recording marks it and appends it to its shopper in one atomic
step, so two API processes posting the same event count it once.

Two implementations beside the serving stores: `LmdbSessions` (one LMDB environment, `<root>/sessions`,
written by every API process of the machine: LMDB serializes the writers) and `RedisSessions` (a list per
shopper with a time to live, and a key per event id set with `NX`). Losing this state (a crash before LMDB
synced) loses no event: the landing zone holds every accepted one; a re-posted event is then landed twice
and ingestion keeps the first.
"""

import hashlib
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import lmdb
import orjson
import redis
import redis.asyncio

MEMBER, SESSION = "m:", "s:"
MAP_SIZE = 1 << 36
"""Address space of the sessions environment (64 GiB, virtual: the file grows with what is kept)."""
EVENT, SHOPPER = b"e:", b"o:"
"""Key prefixes in LMDB: `e:<serving day>|<event id>` (recorded ids), `o:<shopper>` (its entries)."""
KEPT_DAYS = 2
"""Serving days whose event ids are remembered: the day served and the one before (a day's batch reads the
landing zone, where a re-posted event of an earlier day would be a duplicate anyway)."""


@dataclass(frozen=True)
class Posted:
    """An accepted event as the sessions keep it."""

    shoppers: tuple[str, ...]
    """`m:<member id>` (when it has one) and `s:<session id>`."""
    event_id: str
    entry: list
    """`[event_time, event_type, style_id or None, event_id]`."""


def posted(event: dict) -> Posted:
    """An accepted event (`event_rules`: its fields are typed) as kept."""
    member, style = event.get("member_id"), event.get("style_id")
    entry = [event["event_time"], event["event_type"], str(style) if style is not None else None, event["event_id"]]
    shoppers = ((f"{MEMBER}{member}",) if member is not None else ()) + (f"{SESSION}{event['session_id']}",)
    return Posted(shoppers, event["event_id"], entry)


def bounded(entries: list[list], max_events: int, window_minutes: int) -> list[list]:
    """The last `max_events` of `entries` (oldest first) no more than `window_minutes` older than the newest."""
    entries = entries[-max_events:]
    if not entries:
        return entries
    times = [datetime.fromisoformat(entry[0]) for entry in entries]  # 'Z', any fraction
    since = max(times) - timedelta(minutes=window_minutes)
    return [entry for entry, at in zip(entries, times) if at >= since]


def digest(entries: list[list]) -> str:
    """A short fingerprint of a shopper's entries: the answers' ETags change with it."""
    return hashlib.blake2b(orjson.dumps(entries), digest_size=8).hexdigest() if entries else ""


class SessionStore(ABC):
    """Recent events per shopper, and the event ids already recorded."""

    errors: tuple[type[Exception], ...]

    def __init__(self, max_events: int, window_minutes: int):
        self.max_events, self.window_minutes = max_events, window_minutes

    @abstractmethod
    async def seen_async(self, day: date, event_ids: list[str]) -> list[bool]:
        """Whether each id was recorded on serving day `day`."""

    @abstractmethod
    async def record_async(self, day: date, events: list[Posted]) -> list[bool]:
        """Record `events` of serving day `day`: each id not recorded yet is marked and its entry appended to
        its shopper, atomically; whether each was new (a repeated id in `events` is new once)."""

    @abstractmethod
    async def recent_async(self, shopper: str) -> list[list]:
        """The shopper's entries, oldest first, bounded."""


class LmdbSessions(SessionStore):
    errors = (lmdb.Error, OSError)

    def __init__(self, root: str, max_events: int, window_minutes: int):
        super().__init__(max_events, window_minutes)
        self.path = Path(root) / "sessions"
        self._env: lmdb.Environment | None = None
        self._opening = threading.Lock()
        self._pruned: date | None = None

    @property
    def env(self) -> lmdb.Environment:
        with self._opening:
            if self._env is None:
                self.path.mkdir(parents=True, exist_ok=True)
                # not synced on every commit: the landing zone is the durable record of the events
                self._env = lmdb.open(str(self.path), map_size=MAP_SIZE, sync=False, metasync=False, max_readers=1024)
            return self._env

    async def seen_async(self, day: date, event_ids: list[str]) -> list[bool]:
        with self.env.begin() as txn:
            return [txn.get(_event_key(day, event_id)) is not None for event_id in event_ids]

    async def record_async(self, day: date, events: list[Posted]) -> list[bool]:
        new = []
        with self.env.begin(write=True) as txn:
            if self._pruned != day:
                _prune(txn, day)
            appended: dict[str, list] = {}
            for event in events:
                fresh = txn.put(_event_key(day, event.event_id), b"", overwrite=False)
                new.append(fresh)
                for shopper in event.shoppers if fresh else ():
                    appended.setdefault(shopper, []).append(event.entry)
            for shopper, entries in appended.items():
                key = SHOPPER + shopper.encode()
                kept = orjson.loads(txn.get(key) or b"[]")
                txn.put(key, orjson.dumps(bounded(kept + entries, self.max_events, self.window_minutes)))
        self._pruned = day
        return new

    async def recent_async(self, shopper: str) -> list[list]:
        with self.env.begin(buffers=False) as txn:
            stored = txn.get(SHOPPER + shopper.encode())
        return orjson.loads(stored) if stored else []


def _event_key(day: date, event_id: str) -> bytes:
    return EVENT + f"{day:%Y-%m-%d}|".encode() + event_id.encode()


def _prune(txn, day: date) -> None:
    """Forget the ids of serving days before the `KEPT_DAYS` up to `day` (keys sort by day)."""
    cutoff = _event_key(day - timedelta(days=KEPT_DAYS - 1), "")
    cursor = txn.cursor()
    cursor.set_range(EVENT)
    while cursor.key().startswith(EVENT) and cursor.key() < cutoff:
        cursor.delete()  # moves to the next key


class RedisSessions(SessionStore):
    """Keys `<prefix>:event:<day>:<id>` (with `NX`, expiring after `KEPT_DAYS` days) and `<prefix>:session:
    <shopper>` (a list, trimmed to `max_events`, expiring `window_minutes` after its last event was posted)."""

    errors = (redis.RedisError, OSError)

    def __init__(self, url: str, prefix: str, max_events: int, window_minutes: int, timeout: float = 2.0):
        super().__init__(max_events, window_minutes)
        self.url, self.prefix, self.timeout = url, prefix, timeout
        self._client: redis.asyncio.Redis | None = None

    @property
    def client(self) -> redis.asyncio.Redis:
        if self._client is None:
            self._client = redis.asyncio.Redis.from_url(
                self.url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout
            )
        return self._client

    def _event(self, day: date, event_id: str) -> str:
        return f"{self.prefix}:event:{day:%Y-%m-%d}:{event_id}"

    def _session(self, shopper: str) -> str:
        return f"{self.prefix}:session:{shopper}"

    async def seen_async(self, day: date, event_ids: list[str]) -> list[bool]:
        if not event_ids:
            return []
        return [value is not None for value in await self.client.mget([self._event(day, e) for e in event_ids])]

    async def record_async(self, day: date, events: list[Posted]) -> list[bool]:
        if not events:
            return []
        pipe = self.client.pipeline(transaction=True)
        for event in events:
            pipe.set(self._event(day, event.event_id), b"", nx=True, ex=KEPT_DAYS * 86_400)
        new = [bool(ok) for ok in await pipe.execute()]
        appended: dict[str, list] = {}
        for event, fresh in zip(events, new):
            for shopper in event.shoppers if fresh else ():
                appended.setdefault(shopper, []).append(orjson.dumps(event.entry))
        if appended:
            pipe = self.client.pipeline(transaction=True)
            for shopper, entries in appended.items():
                key = self._session(shopper)
                pipe.rpush(key, *entries).ltrim(key, -self.max_events, -1).expire(key, self.window_minutes * 60)
            await pipe.execute()
        return new

    async def recent_async(self, shopper: str) -> list[list]:
        entries = [orjson.loads(value) for value in await self.client.lrange(self._session(shopper), 0, -1)]
        return bounded(entries, self.max_events, self.window_minutes)
