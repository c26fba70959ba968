"""The serving store's small interface: versions of per-member payloads, loaded whole, then switched to.

A version is written completely (from the Spark tasks, in parallel), checked, then made current by one
atomic pointer switch; readers always read one version, so a payload is never half old and half new. The
previous versions stay for rollback (`keep` of them), older ones are removed. Beside its payloads a
version holds its manifest (day, source cards, counts, fallback), the item-to-item lists by subclass-brand
group (similar styles, styles bought together, co-purchase rules; keys below), and a `withdrawn` list: styles
of the version that the latest inventory snapshot shows sold out or ended, removed from answers at request
time.

Switches, rollbacks and removals are serialized across processes (a file lock, or a Redis transaction):
a switch reads the served version and moves the pointer as one step, so of two overlapping loads the later
day stays served whichever switches last; a rollback never points at a removed version, and retention
never removes the served one. Readers take no lock. A pointer naming a version whose data is gone (removed
by hand) raises `MissingVersion`: the API answers 503, never the fallback for every member.

Two implementations: `LmdbStore` (embedded, no server; the default) and `RedisStore` (a shared server for
several API machines). Both are plain picklable objects holding only their configuration, so a Spark task
can load its rows with the same object the driver switches with.
"""

import hashlib
import secrets
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from functools import cached_property

import orjson

MEMBER = b"m:"
"""Key prefix of a payload, by the lakehouse's member id (decimal text)."""
SOURCE = b"s:"
"""Key prefix of the lakehouse member id of a source (imported) member id."""
STYLES = b"~styles"
"""Key of the style ids a version names (JSON list): those a later snapshot can withdraw."""
STYLE_GROUP = b"y:"
"""Key prefix of a style's subclass-brand group id (decimal text), for every style the version names."""
SIMILAR = b"gs:"
"""Key prefix of a group's similar styles, by group id: JSON `{"fallback": bool, "styles": [{"style_id",
"score", "group_key"}, ...]}`, best first, at most 101 (the 100 an answer may hold, and the requested style).
A fallback list (the popular styles of the group's class) may hold the group's own styles."""
BOUGHT = b"gb:"
"""Key prefix of the styles bought together with a group's styles, by group id: the shape of `SIMILAR`
(fallback: the co-purchase popular styles)."""
LISTED = b"gl:"
"""Key prefix of a group's listed style ids, by group id: JSON list of decimal strings, best first."""
RULES = b"ra:"
"""Key prefix of a co-purchase antecedent's rules, by `baskets.antecedent_key`: JSON list of
`[consequent group id, lift x confidence]`, best first."""
BASKET_FALLBACK = b"~basket"
"""Key of a cart's fallback: JSON `{"styles": [entries as in `SIMILAR`]}`, the co-purchase popular styles."""
GROUP_SUBCLASS = b"gc:"
"""Key prefix of a listed group's subclass key (`catalog.level_key`: its full path as JSON text), by group id;
none for a group without a subclass. The session re-ranking's subclass boost reads it."""
STYLE_SOURCE = b"t:"
"""Key prefix of the lakehouse style id of a source (imported) style id; entries then carry `style_source_id`."""


def member_key(member_id: str) -> bytes:
    return MEMBER + member_id.encode()


def source_key(source_id: str) -> bytes:
    return SOURCE + source_id.encode()


def new_version(day: str, source: str) -> str:
    """A version name whose third part sorts by load time: ``2026-10-31.batch.20261123T221503123456.a1b2``."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    return f"{day}.{source}.{stamp}.{secrets.token_hex(2)}"


@dataclass(frozen=True)
class Manifest:
    """What a served version is: written with the version, read by the API for headers and readiness."""

    version: str
    as_of_date: str
    source: str
    """`member_cards`, or `release_cards:<HHMM>` for a release refresh."""
    members: int
    loaded_at: str
    """UTC, ISO 8601."""
    fallback: bytes = b"{}"
    """The payload answered for a member without one (JSON, `member_id` filled in at request time)."""
    cards_written_at: float = 0.0
    """When the cards it was built from were published (epoch seconds): which publication it serves."""

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self) | {"fallback": orjson.loads(self.fallback)})

    @classmethod
    def from_json(cls, data: bytes) -> "Manifest":
        fields = orjson.loads(data)
        return cls(**(fields | {"fallback": orjson.dumps(fields["fallback"])}))

    def age_hours(self, now: datetime | None = None) -> float:
        now = now or datetime.now(timezone.utc)
        return (now - datetime.fromisoformat(self.loaded_at)).total_seconds() / 3600


@dataclass(frozen=True)
class Withdrawn:
    """Styles of a version no longer to be shown, as of an inventory snapshot."""

    as_of: str
    """Which snapshot said so, e.g. ``2026-11-01 11:00``; empty when none did."""
    style_ids: frozenset[str]

    @cached_property
    def digest(self) -> str:
        """Short fingerprint of the list (answers' ETags change with it)."""
        return hashlib.blake2b(self.to_json(), digest_size=8).hexdigest()

    def to_json(self) -> bytes:
        return orjson.dumps({"as_of": self.as_of, "style_ids": sorted(self.style_ids)})

    @classmethod
    def from_json(cls, data: bytes | None) -> "Withdrawn":
        if not data:
            return NOTHING_WITHDRAWN
        fields = orjson.loads(data)
        return cls(fields["as_of"], frozenset(fields["style_ids"]))


NOTHING_WITHDRAWN = Withdrawn("", frozenset())


class MissingVersion(LookupError):
    """A version that is not stored (any more): the pointer names it, or a rollback or switch asked for it."""


@dataclass(frozen=True)
class Switched:
    """What a switch did."""

    served: Manifest
    """The version served after it: the one switched to, or a later one that stays (the other is discarded)."""
    dropped: list[str]
    """Versions removed beyond the kept ones."""


def is_older(manifest: Manifest, served: Manifest | None) -> bool:
    """`manifest` is of an earlier day, or of an earlier publication of the same day's cards, than `served`:
    a backfill, or an overlapping run that loaded slower, never replaces it."""
    return served is not None and (served.as_of_date, served.cards_written_at) > (
        manifest.as_of_date,
        manifest.cards_written_at,
    )


def beyond_kept(versions: list[str], current: str, served: str | None, keep: int) -> list[str]:
    """Of `versions` (the earliest switched to first), those to remove when `current` becomes served: all
    but the `keep` last besides it, and never the version served until then."""
    others = [v for v in versions if v != current]
    return [v for v in others[: max(len(others) - keep, 0)] if v != served]


class ServingStore(ABC):
    """Versions of payloads by key; one of them current."""

    keep: int
    """Versions kept besides the current one (for rollback)."""
    errors: tuple[type[Exception], ...]
    """What a read raises when the store is unavailable (the API answers 503)."""

    # --- loading (Spark tasks write; the driver checks, then switches) -------------------------------
    @abstractmethod
    def write(self, version: str, items: Iterable[tuple[bytes, bytes]]) -> int:
        """Write key/value pairs into `version` (not visible until `switch`); returns how many."""

    @abstractmethod
    def count(self, version: str, prefix: bytes) -> int:
        """Keys of `version` starting with `prefix` (a check of the load)."""

    @abstractmethod
    def switch(self, manifest: Manifest) -> Switched:
        """Make the loaded `manifest.version` current, unless the served version is of a later day or
        publication (`is_older`: then the loaded one is discarded); drop versions beyond `keep` previous
        ones. One step under the store's lock. Raises `MissingVersion` when the version is not loaded."""

    @abstractmethod
    def rollback(self, version: str) -> None:
        """Serve a kept version again (whatever its day), under the store's lock; `MissingVersion` when it
        is not kept."""

    @abstractmethod
    def discard(self, version: str) -> None:
        """Remove a version that was loaded but is not to be served (never the served one: ValueError)."""

    @abstractmethod
    def set_withdrawn(self, version: str, withdrawn: Withdrawn) -> None:
        """Replace the withdrawn styles of `version` (atomically: readers see the old or the new list);
        `MissingVersion` when it is not stored."""

    # --- reading ---------------------------------------------------------------------------------
    @abstractmethod
    def current(self) -> Manifest | None:
        """The served version's manifest, or None before the first switch; `MissingVersion` when the pointer
        names a version that is gone."""

    @abstractmethod
    def versions(self) -> list[str]:
        """Stored versions (current and kept), oldest first."""

    @abstractmethod
    def get(self, version: str, key: bytes) -> bytes | None:
        """The value of `key` in `version`."""

    @abstractmethod
    def withdrawn(self, version: str) -> Withdrawn:
        """The withdrawn styles of `version`."""

    # --- reading from the API's event loop: a network store overrides these with an asynchronous client --
    async def current_async(self) -> Manifest | None:
        return self.current()

    async def get_async(self, version: str, key: bytes) -> bytes | None:
        """Like `get`; a store whose `current_async` may hold on to a version that is gone since (Redis, for
        `refresh` seconds) raises `MissingVersion` instead of answering a miss."""
        return self.get(version, key)

    async def get_many_async(self, version: str, keys: list[bytes]) -> list[bytes | None]:
        """The values of `keys` in `version`, in their order (None for a missing key), raising
        `MissingVersion` as `get_async` does."""
        return [await self.get_async(version, key) for key in keys]

    async def withdrawn_async(self, version: str) -> Withdrawn:
        return self.withdrawn(version)

    @abstractmethod
    def manifest(self, version: str) -> Manifest | None:
        """The manifest a stored version was loaded with."""


def batched(items: Iterable, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
