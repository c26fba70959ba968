"""The serving stores on real LMDB and a real redis-server: versions load, switch atomically, roll back and
expire; concurrent readers never see a mixed or missing payload."""

import multiprocessing
import shutil
import threading
import time
import uuid
from datetime import date, timedelta

import orjson
import pytest
import redis

from reco_assets.serving.lmdb_store import LmdbStore
from reco_assets.serving.redis_store import RedisStore
from reco_assets.serving.store import MEMBER, SOURCE, Manifest, MissingVersion, Withdrawn, member_key

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
    assert store.switch(manifest).dropped == []
    assert store.current() == manifest
    assert orjson.loads(store.current().fallback) == {"fallback": True}
    assert store.get(manifest.version, member_key("7")) == payload("7", manifest.version)
    assert store.get(manifest.version, SOURCE + b"src-1") == b"1"
    assert store.get(manifest.version, member_key("999")) is None


def test_keeps_the_set_number_of_previous_versions_and_rolls_back(store):
    first, second, third = (load(store, f"2026-10-3{n}.batch.{n}") for n in (0, 1, 2))  # noqa: F841
    store.switch(first)
    assert store.switch(second).dropped == []
    assert store.switch(third).dropped == [first.version]  # keep=1: one previous version stays
    assert store.versions() == [second.version, third.version]
    store.rollback(second.version)
    assert store.current().version == second.version
    assert store.get(second.version, member_key("5")) == payload("5", second.version)
    with pytest.raises(MissingVersion):
        store.rollback(first.version)
    # the next load keeps the version rolled back to (the last served), not the one rolled back from
    fourth = load(store, "2026-11-01.batch.4")
    assert store.switch(fourth).dropped == [third.version]
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
    every payload read exists and belongs to the version the reader took. (A reader holds a version for one
    switch at most, as a request does: the next waits until each has read after the last; with keep=1 a
    version two switches old is gone.)"""
    store.switch(load(store, "2026-10-31.batch.00"))
    stop, problems, rounds, seen = threading.Event(), [], [0, 0, 0], set()

    def reader(index: int):
        view = type(store).__new__(type(store))
        view.__setstate__(store.__getstate__())
        while not stop.is_set():
            version = view.current().version
            seen.add(version)
            for member in ("1", "150", "300"):
                data = view.get(version, member_key(member))
                if data is None or orjson.loads(data) != orjson.loads(payload(member, version)):
                    problems.append((version, member, data))
            rounds[index] += 1

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    try:
        for n in range(1, 8):
            store.switch(load(store, f"2026-10-31.batch.{n:02d}"))
            before = list(rounds)
            # each reader finished a round begun after the switch (and read this version at least 10 times)
            while any(r < b + 10 for r, b in zip(rounds, before)) and all(t.is_alive() for t in threads):
                time.sleep(0.001)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert problems == []
    assert sum(rounds) >= 7 * 30
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

    from reco_assets.assets.common import publish
    from reco_assets.assets.serving import LoadedVersion
    from reco_assets.checks import check
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
    assert store.current() == newer and not older.is_served
    assert _gone_or_expiring(store, "2026-10-31.batch.older")


# --- switches, rollbacks and removals of overlapping runs ---------------------------------------------------
@pytest.mark.parametrize("paused", ["older day", "later day"])
def test_of_two_overlapping_loads_the_later_day_stays_served_whichever_switches_last(store, paused):
    """The CLI and the sensor commit two days at once: one pauses in its commit (computing its withdrawn
    styles, just before its switch) while the other commits whole, then goes on. The later day is served;
    when the older day came last, its version is discarded."""
    from reco_assets.assets.serving import LoadedVersion
    from reco_assets.serving.store import NOTHING_WITHDRAWN

    store.switch(load(store, "2026-10-29.batch.served", day="2026-10-29"))
    later = load(store, "2026-10-31.batch.later", day="2026-10-31")
    older = load(store, "2026-10-30.batch.older", day="2026-10-30")
    inside, go = threading.Event(), threading.Event()

    def paused_withdrawals():
        inside.set()
        assert go.wait(30)
        return NOTHING_WITHDRAWN

    slow, fast = (older, later) if paused == "older day" else (later, older)
    slow_commit = threading.Thread(target=LoadedVersion(store, slow, paused_withdrawals).commit)
    slow_commit.start()
    assert inside.wait(30)
    LoadedVersion(store, fast, lambda: NOTHING_WITHDRAWN).commit()
    go.set()
    slow_commit.join(30)
    assert store.current() == later
    if paused == "older day":
        assert older.version not in store.versions() and _gone_or_expiring(store, older.version)


def remove_by_hand(store, version: str) -> None:
    """What an operator's `rm -r` or `redis-cli --scan | xargs redis-cli del` does: the version's data goes,
    the pointer stays."""
    if isinstance(store, RedisStore):
        client = redis.Redis.from_url(store.url)
        client.delete(*client.scan_iter(match=f"{store.prefix}:{version}:*"))
    else:
        shutil.rmtree(store.root / "versions" / version)


def test_a_pointer_to_a_version_removed_by_hand_fails_until_the_next_switch(store):
    gone = load(store, "2026-10-31.batch.gone")
    store.switch(gone)
    remove_by_hand(store, gone.version)
    with pytest.raises(MissingVersion):
        store.current()
    repaired = load(store, "2026-10-30.batch.repair", day="2026-10-30")  # an older day: nothing valid is served
    store.switch(repaired)
    assert store.current() == repaired
    assert store.get(repaired.version, member_key("1")) == payload("1", repaired.version)


def _race_worker(kind, state, actions, barrier) -> None:
    """One process's store calls, one per round; every process starts each round at the same time."""
    store = kind.__new__(kind)
    store.__setstate__(state)
    for action, manifest in actions:
        if action == "rollback":
            oldest = store.versions()[0]  # chosen before the round, as an operator chooses
            barrier.wait(60)
            try:
                store.rollback(oldest)
            except MissingVersion:  # removed by the switch that came first: the rollback is refused
                pass
        else:
            barrier.wait(60)
            store.switch(manifest)
        barrier.wait(60)


def _race(store, plans: list[list[tuple]], after_round) -> None:
    """Run each plan in a process of its own (spawned: LMDB handles do not survive a fork); `after_round(n)`
    checks the store between rounds."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(plans) + 1)
    processes = [
        context.Process(target=_race_worker, args=(type(store), store.__getstate__(), plan, barrier)) for plan in plans
    ]
    for process in processes:
        process.start()
    try:
        for number in range(len(plans[0])):
            barrier.wait(60)
            barrier.wait(60)
            after_round(number)
    except BaseException:
        barrier.abort()
        raise
    finally:
        for process in processes:
            process.join(60)
    assert [p.exitcode for p in processes] == [0] * len(plans)


def _served_whole(store, version: str) -> bool:
    """`version` is stored with its payloads, and none of its keys expires."""
    if store.get(version, member_key("1")) != payload("1", version) or store.manifest(version) is None:
        return False
    if isinstance(store, RedisStore):
        client = redis.Redis.from_url(store.url)
        keys = [f"{store.prefix}:{version}:".encode() + key for key in (member_key("1"), b"~manifest")]
        return all(client.ttl(key) == -1 for key in keys)
    return True


def test_switches_of_different_days_in_several_processes_leave_the_latest_day_served(store):
    """Three processes switch a version each, of three days, at once, round after round; which process
    has the latest day changes every round. After each round the latest day is served."""
    start = date(2026, 10, 1)
    rounds = [[start + timedelta(days=3 * n + (i + n) % 3) for i in range(3)] for n in range(5)]
    plans = [[("switch", load(store, f"{days[i]}.batch.p{i}", day=str(days[i]))) for days in rounds] for i in range(3)]

    def after_round(number: int) -> None:
        current = store.current()
        assert current.as_of_date == str(max(rounds[number]))
        assert _served_whole(store, current.version)
        assert all(_served_whole(store, v) for v in store.versions()) and len(store.versions()) <= 2

    _race(store, plans, after_round)


def test_a_rollback_racing_a_switch_never_points_at_a_removed_version(store):
    """keep=1: a rollback to the older kept version, and a switch to a new version that removes that one,
    at once, round after round. Whichever comes first, the pointer names a version stored whole (the new
    one), and the kept ones are stored whole."""
    from dataclasses import replace

    for n in range(2):
        store.switch(replace(load(store, f"2026-10-31.batch.{n:02d}"), cards_written_at=float(n)))
    new = [replace(load(store, f"2026-10-31.batch.{n:02d}"), cards_written_at=float(n)) for n in range(2, 10)]

    def after_round(number: int) -> None:
        assert store.current() == new[number]
        assert all(_served_whole(store, v) for v in store.versions()) and len(store.versions()) == 2

    _race(store, [[("rollback", None)] * len(new), [("switch", m) for m in new]], after_round)


def test_a_removal_cut_short_is_finished_by_the_next_switch(redis_url):
    """A remover that stops between its steps (here: a Redis user not allowed to `EXPIRE`, so the server
    refuses the second step) leaves no key without an expiry once the next switch ran."""
    prefix = f"cut-{uuid.uuid4().hex[:8]}"
    admin = redis.Redis.from_url(redis_url)
    admin.acl_setuser(
        "no-expire", enabled=True, passwords=["+pw"], keys=["*"], categories=["+@all"], commands=["-expire"]
    )
    host_and_port = redis_url.removeprefix("redis://")
    limited = RedisStore(f"redis://no-expire:pw@{host_and_port}", prefix, keep=1, grace=30, refresh=0)
    store = RedisStore(redis_url, prefix, keep=1, grace=30, refresh=0)
    store.switch(load(store, "2026-10-30.batch.served", day="2026-10-30"))
    cut = load(store, "2026-10-31.batch.cut")
    with pytest.raises(redis.ResponseError, match="expire"):
        limited.discard(cut.version)
    keys = list(admin.scan_iter(match=f"{prefix}:{cut.version}:*"))
    assert len(keys) == len(MEMBERS) + 1 and all(admin.ttl(k) == -1 for k in keys)  # cut short: none expires
    store.switch(load(store, "2026-11-01.batch.next", day="2026-11-01"))
    assert all(0 < admin.ttl(k) <= 30 for k in keys)
