"""Session re-ranking and the shoppers' recent events, on hand-built sessions whose answers are worked out by
hand; the event stores on a real LMDB environment and a real redis-server."""

import asyncio
import uuid
from datetime import date

import pytest

from reco_assets.serving.rerank import Weights, reranked, session_of
from reco_assets.serving.sessions import LmdbSessions, Posted, RedisSessions, bounded, posted

GROUPS = {"a1": "A", "a2": "A", "b1": "B", "c1": "C", "d1": "D"}
SUBCLASSES = {"A": "x", "B": "x", "C": "y", "D": "z"}
WEIGHTS = Weights(group_boost=1.0, subclass_boost=0.5, neighbor_weight=0.8, neighbor_groups=2)


def entry(kind: str, style: str | None, minute: int = 0) -> list:
    return [f"2026-11-01T10:{minute:02d}:00Z", kind, style, f"e-{kind}-{style}-{minute}"]


def rerank(daily: list[str], session, neighbors: list[list[str]], weights: Weights = WEIGHTS) -> list[str]:
    near = [[(key, GROUPS.get(key, key.upper())) for key in keys] for keys in neighbors]
    return reranked(daily, GROUPS, SUBCLASSES, session, near, weights)


def test_a_session_says_what_was_browsed_and_bought():
    entries = [entry("product_view", "a1", 1), entry("page_view", None, 2), entry("purchase", "c1", 3)]
    entries.append(entry("add_to_cart", "zz", 4))  # a style no list knows: counted, not placed
    session = session_of(entries, GROUPS, SUBCLASSES)
    assert session.events == 4 and session.groups == ["C", "A"]  # most recent first
    assert session.boosted == {"A"} and session.subclasses == {"x"} and session.bought == {"c1"}


def test_no_session_leaves_the_daily_list():
    daily = ["a1", "b1", "c1"]
    assert rerank(daily, session_of([], GROUPS, SUBCLASSES), [["n"]]) == daily


def test_browsed_groups_and_subclasses_move_up_bought_styles_go_and_neighbours_come_in():
    # browsed B (subclass x, like A), bought d1 (group D, subclass z)
    session = session_of([entry("product_view", "b1", 1), entry("purchase", "d1", 2)], GROUPS, SUBCLASSES)
    daily = ["c1", "d1", "a1", "a2", "b1"]
    got = rerank(daily, session, [["n1", "a1"], ["n2"]])  # the similar lists of D, then of B
    # c1: 1; d1 bought; a1 (subclass x): 1/log2(4) + 0.5 = 1.0; a2 (x): 1/log2(5) + 0.5 = 0.93;
    # b1 (group B, subclass x): 1/log2(6) + 1 + 0.5 = 1.89; n1: 0.8/log2(2) = 0.8; n2: 0.8 (second list's
    # first); a1 is in already
    # -> b1, c1, a1 (1.0 = c1's, after it in the daily order), a2, n1, n2 cut at the daily list's length (5)
    assert got == ["b1", "c1", "a1", "a2", "n1"]


def test_bounded_keeps_the_last_events_within_the_window():
    entries = [entry("product_view", f"s{m}", m) for m in (0, 10, 50, 55, 59)]
    assert [e[2] for e in bounded(entries, 4, 30)] == ["s50", "s55", "s59"]  # s10 is 49 minutes before s59
    assert [e[2] for e in bounded(entries, 2, 120)] == ["s55", "s59"]


def test_posted_events_are_kept_for_their_member_and_their_session():
    event = {"event_id": "e1", "event_time": "2026-11-01T10:00:00Z", "member_id": 7, "event_type": "product_view"}
    assert posted(event | {"session_id": "s", "style_id": 5}).shoppers == ("m:7", "s:s")
    anonymous = posted({k: v for k, v in event.items() if k != "member_id"} | {"session_id": "s"})
    assert anonymous.shoppers == ("s:s",) and anonymous.entry == ["2026-11-01T10:00:00Z", "product_view", None, "e1"]


@pytest.fixture(params=["lmdb", "redis"])
def sessions(request, tmp_path):
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        return RedisSessions(url, f"t-{uuid.uuid4().hex[:8]}", max_events=3, window_minutes=60)
    return LmdbSessions(str(tmp_path), max_events=3, window_minutes=60)


def test_an_event_id_is_recorded_once_and_shoppers_keep_their_last_events(sessions):
    day = date(2026, 11, 1)

    async def scenario():
        first = [Posted(("m:1", "s:a"), f"e{n}", entry("product_view", f"s{n}", n)) for n in range(4)]
        assert await sessions.record_async(day, first + [first[0]]) == [True, True, True, True, False]
        assert await sessions.seen_async(day, ["e0", "e9"]) == [True, False]
        assert await sessions.seen_async(date(2026, 11, 2), ["e0"]) == [False]  # ids are per served day
        again = await sessions.record_async(day, [first[1]])
        return again, await sessions.recent_async("m:1"), await sessions.recent_async("s:a")

    again, member, session = asyncio.run(scenario())
    assert again == [False]
    assert [e[2] for e in member] == ["s1", "s2", "s3"] and member == session  # the last 3


def test_remembered_answers_keep_the_most_recently_used():
    from reco_assets.serving.session_answers import Remembered

    kept = Remembered(size=2)
    kept.put("a", 1)
    kept.put("b", 2)
    assert kept.get("a") == 1  # a is now the most recent
    kept.put("c", 3)  # b goes
    assert (kept.get("a"), kept.get("b"), kept.get("c")) == (1, None, 3)
