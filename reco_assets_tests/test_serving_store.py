"""The serving stores on real LMDB and a real redis-server: versions load, switch atomically, roll back and
expire; concurrent readers never see a mixed or missing payload."""

import threading
import time
import uuid

import orjson
import pytest
import redis

from reco_assets.serving.lmdb_store import LmdbStore
from reco_assets.serving.redis_store import RedisStore
from reco_assets.serving.store import MEMBER, SOURCE, Manifest, Withdrawn, member_key

MEMBERS = [str(m) for m in range(1, 301)]


@pytest.fixture(params=["lmdb", "redis"])
def store(request, tmp_path):
    if request.param == "lmdb":
        return LmdbStore(str(tmp_path / "serving"), keep=1)
    url = request.getfixturevalue("redis_url")
    return RedisStore(url, prefix=f"test-{uuid.uuid4().hex[:8]}", keep=1, grace=30, refresh=0)


def payload(member: str, version: str) -> bytes:
    return orjson.dumps({"member_id": member, "version": version, "feeds": {"products": [{"full": [member] * 50}]}})


def load(store, version: str, day: str = "2026-10-31") -> Manifest:
    pairs = [(member_key(m), payload(m, version)) for m in MEMBERS] + [(SOURCE + b"src-1", b"1")]
    assert store.write(version, iter(pairs)) == len(pairs)
    return Manifest(
        version, day, "member_cards", len(MEMBERS), "2026-11-01T00:00:00+00:00", orjson.dumps({"fallback": True})
    )


def test_a_version_is_invisible_until_switched_then_served_whole(store):
    assert store.current() is None
    manifest = load(store, "2026-10-31.batch.1")
    assert store.current() is None and store.versions() == []
    assert store.count("2026-10-31.batch.1", MEMBER) == 300
    assert store.count("2026-10-31.batch.1", SOURCE) == 1
    assert store.switch(manifest) == []
    assert store.current() == manifest
    assert orjson.loads(store.current().fallback) == {"fallback": True}
    assert store.get(manifest.version, member_key("7")) == payload("7", manifest.version)
    assert store.get(manifest.version, SOURCE + b"src-1") == b"1"
    assert store.get(manifest.version, member_key("999")) is None


def test_keeps_the_set_number_of_previous_versions_and_rolls_back(store):
    first, second, third = (load(store, f"2026-10-3{n}.batch.{n}") for n in (0, 1, 2))  # noqa: F841
    store.switch(first)
    assert store.switch(second) == []
    assert store.switch(third) == [first.version]  # keep=1: one previous version stays
    assert store.versions() == [second.version, third.version]
    store.rollback(second.version)
    assert store.current().version == second.version
    assert store.get(second.version, member_key("5")) == payload("5", second.version)
    with pytest.raises(KeyError):
        store.rollback(first.version)
    # the next load keeps the version rolled back to (the last served), not the one rolled back from
    fourth = load(store, "2026-11-01.batch.4")
    assert store.switch(fourth) == [third.version]
    assert store.versions() == [second.version, fourth.version]


def test_a_discarded_version_is_gone(store):
    manifest = load(store, "v.discarded.1")
    store.discard(manifest.version)
    assert store.manifest(manifest.version) is None and store.versions() == []
    if isinstance(store, RedisStore):  # expired after the grace period
        client = redis.Redis.from_url(store.url)
        keys = list(client.scan_iter(match=f"{store.prefix}:v.discarded.1:*"))
        assert len(keys) == len(MEMBERS) + 1 and all(0 < client.ttl(k) <= 30 for k in keys)
    else:
        assert store.get(manifest.version, member_key("1")) is None


def test_withdrawn_styles_replace_each_other(store):
    manifest = load(store, "2026-10-31.batch.w")
    store.switch(manifest)
    assert store.withdrawn(manifest.version).style_ids == frozenset()
    store.set_withdrawn(manifest.version, Withdrawn("2026-11-01 11:00", frozenset({"17", "18"})))
    fresh = type(store).__new__(type(store))  # another process's view: nothing cached
    fresh.__setstate__(store.__getstate__())
    assert fresh.withdrawn(manifest.version) == Withdrawn("2026-11-01 11:00", frozenset({"17", "18"}))


def test_switching_under_concurrent_reads_never_mixes_or_misses(store):
    """Readers take the current version and read members from it while versions are loaded and switched:
    every payload read exists and belongs to the version the reader took."""
    store.switch(load(store, "2026-10-31.batch.00"))
    stop, problems, reads, seen = threading.Event(), [], [0], set()

    def reader():
        view = type(store).__new__(type(store))
        view.__setstate__(store.__getstate__())
        while not stop.is_set():
            version = view.current().version
            seen.add(version)
            for member in ("1", "150", "300"):
                data = view.get(version, member_key(member))
                if data is None or orjson.loads(data) != orjson.loads(payload(member, version)):
                    problems.append((version, member, data))
                reads[0] += 1

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        for n in range(1, 8):
            store.switch(load(store, f"2026-10-31.batch.{n:02d}"))
            before = reads[0]
            while reads[0] < before + 30 and all(t.is_alive() for t in threads):  # readers read every version
                time.sleep(0.001)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert problems == []
    assert reads[0] >= 7 * 30
    assert len(seen) >= 4  # the readers saw the switches
    assert store.current().version == "2026-10-31.batch.07"


def _gone_or_expiring(store, version: str) -> bool:
    if isinstance(store, RedisStore):
        client = redis.Redis.from_url(store.url)
        keys = list(client.scan_iter(match=f"{store.prefix}:{version}:*"))
        return bool(keys) and all(client.ttl(k) > 0 for k in keys)
    return store.get(version, member_key("1")) is None


def test_a_load_abandoned_by_a_crash_is_removed_at_a_later_switch(store, monkeypatch):
    import reco_assets.serving.lmdb_store as lmdb_store
    import reco_assets.serving.redis_store as redis_store

    crashed = load(store, "2026-10-30.batch.crashed")  # loaded, never switched to
    store.switch(load(store, "2026-10-31.batch.next"))
    assert store.get(crashed.version, member_key("1")) is not None  # a recent load may still be running
    assert not _gone_or_expiring(store, crashed.version)
    monkeypatch.setattr(lmdb_store, "ABANDONED_SECONDS", -1)  # now it has been loading for too long
    monkeypatch.setattr(redis_store, "ABANDONED_SECONDS", -1)
    store.switch(load(store, "2026-11-01.batch.later"))
    assert _gone_or_expiring(store, crashed.version)
    assert store.current().version == "2026-11-01.batch.later"
    assert store.get("2026-11-01.batch.later", member_key("1")) is not None


def test_a_version_failing_a_check_is_discarded_and_the_served_one_stays(store):
    """The asset's path: `publish` with a failing check never switches to the loaded version."""
    from dagster import Failure

    from reco_assets.assets.common import check, publish
    from reco_assets.assets.serving import LoadedVersion
    from reco_assets.serving.store import NOTHING_WITHDRAWN

    served = load(store, "2026-10-31.batch.good")
    store.switch(served)
    bad = LoadedVersion(store, load(store, "2026-11-01.batch.bad"), lambda: NOTHING_WITHDRAWN)
    with pytest.raises(Failure, match="payloads_match_cards"):
        list(publish([bad], [check("payloads_match_cards", 3, "sampled payloads that differ")]))
    assert store.current() == served and store.versions() == [served.version]
    assert _gone_or_expiring(store, "2026-11-01.batch.bad")


def test_a_later_publication_served_meanwhile_is_not_replaced(store):
    """Two loads of the same day overlapped: the one built from the older publication of the cards is
    discarded at its switch instead of replacing the newer one."""
    from dataclasses import replace

    from reco_assets.assets.serving import LoadedVersion
    from reco_assets.serving.store import NOTHING_WITHDRAWN

    newer = replace(load(store, "2026-10-31.batch.newer"), cards_written_at=200.0)
    store.switch(newer)
    older = LoadedVersion(
        store, replace(load(store, "2026-10-31.batch.older"), cards_written_at=100.0), lambda: NOTHING_WITHDRAWN
    )
    older.commit()
    assert store.current() == newer and older.older_than_served
    assert _gone_or_expiring(store, "2026-10-31.batch.older")
