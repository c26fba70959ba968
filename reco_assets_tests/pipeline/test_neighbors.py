import itertools
import math
import random

import pytest

from reco_assets.pipeline.neighbors import group_neighbors, session_groups
from reco_assets.settings import NeighborSettings
from reco_assets_tests.conftest import rows

EVENTS = "member_id long, session_id string, event_type string, subclass_brand_id long"
WEIGHTS = {"product_view": 1.0, "add_to_cart": 2.0, "purchase": 3.0}
A, B, C, D, E = 10, 20, 30, 40, 50

HAND_BUILT = [
    # member 1, session s1: A viewed, B carted, C bought
    (1, "s1", "product_view", A),
    (1, "s1", "add_to_cart", B),
    (1, "s1", "purchase", C),
    (1, "s1", "product_view", C),  # C's strongest event, the purchase, is its weight
    # member 2: a session of the same name is another session
    (2, "s1", "product_view", A),
    (2, "s1", "product_view", B),
    (2, "s2", "purchase", A),
    (2, "s2", "purchase", B),
    (2, "s2", "product_view", D),
    (2, "s2", "page_view", E),  # no item signal: not a session's group
    (3, "s9", "product_view", A),
    (3, "s9", "product_view", B),
    (3, "s9", "product_view", C),
    (3, "s9", "product_view", None),  # no group
    # a robot: four groups in one session, over the cap of three
    (4, "r", "product_view", A),
    (4, "r", "product_view", B),
    (4, "r", "product_view", C),
    (4, "r", "product_view", D),
]


def _settings(**changes) -> NeighborSettings:
    return NeighborSettings(**{"event_weights": WEIGHTS, "max_session_groups": 3, "min_co_sessions": 2} | changes)


def _neighbors(spark, events, settings):
    frame = spark.createDataFrame(events, EVENTS)
    sessions = session_groups(frame, settings.event_weights, settings.max_session_groups)
    return rows(group_neighbors(sessions, settings), "subclass_brand_id", "rank", "neighbor_id", "score", "co_sessions")


def test_hand_built_sessions_give_the_hand_computed_neighbours(spark):
    """Totals A 6, B 7, C 4, D 1; co(A, B) = 1 + 1 + 3 + 1 over 4 sessions, co(A, C) = 1 + 1 and co(B, C) =
    2 + 1 over 2, co(A, D) = co(B, D) = 3 over 1 only (the robot's session is dropped, else 2)."""
    got = _neighbors(spark, HAND_BUILT, _settings())
    assert [r[:3] + (r[4],) for r in got] == [
        (A, 1, B, 4),
        (A, 2, C, 2),
        (B, 1, A, 4),
        (B, 2, C, 2),
        (C, 1, B, 2),
        (C, 2, A, 2),
    ]
    scores = {(r[0], r[2]): r[3] for r in got}
    assert scores[A, B] == pytest.approx(6 / math.sqrt(6 * 7))
    assert scores[B, A] == pytest.approx(6 / math.sqrt(6 * 7))
    assert scores[A, C] == pytest.approx(2 / math.sqrt(6 * 4))
    assert scores[B, C] == pytest.approx(3 / math.sqrt(7 * 4))


def test_no_discount_ranks_by_raw_co_occurrence_and_the_cap_keeps_the_best(spark):
    got = _neighbors(spark, HAND_BUILT, _settings(popularity_discount=0.0, neighbors_per_group=1))
    assert [(r[0], r[2], r[3]) for r in got] == [(A, B, 6.0), (B, A, 6.0), (C, B, 3.0)]


def test_a_larger_session_cap_keeps_the_robot(spark):
    got = _neighbors(spark, HAND_BUILT, _settings(max_session_groups=4))
    neighbours = {(r[0], r[2]): r[4] for r in got}
    assert neighbours[A, D] == 2 and neighbours[D, A] == 2 and neighbours[A, B] == 5


def _reference(events, settings):
    """The neighbours by plain Python: sessions as dicts, pairs by itertools."""
    sessions: dict = {}
    for member, session, kind, group in events:
        if kind in settings.event_weights and group is not None:
            held = sessions.setdefault((member, session), {})
            held[group] = max(held.get(group, 0.0), settings.event_weights[kind])
    sessions = {k: v for k, v in sessions.items() if len(v) <= settings.max_session_groups}
    totals: dict = {}
    co: dict = {}
    for held in sessions.values():
        for group, weight in held.items():
            totals[group] = totals.get(group, 0.0) + weight
        for a, b in itertools.permutations(held, 2):
            count, weight = co.get((a, b), (0, 0.0))
            co[a, b] = (count + 1, weight + min(held[a], held[b]))
    d = settings.popularity_discount
    scored: dict = {}
    for (a, b), (count, weight) in co.items():
        if count >= settings.min_co_sessions:
            scored.setdefault(a, []).append((-(weight / (totals[a] ** d * totals[b] ** d)), b, count))
    out = []
    for a, pairs in scored.items():
        for rank, (score, b, count) in enumerate(sorted(pairs)[: settings.neighbors_per_group], start=1):
            out.append((a, rank, b, -score, count))
    return sorted(out)


@pytest.mark.parametrize("seed", [1, 2])
def test_random_sessions_agree_with_a_plain_python_count(spark, seed):
    rng = random.Random(seed)
    kinds = [*WEIGHTS, "page_view"]
    events = [
        (rng.randint(1, 40), f"s{rng.randint(1, 4)}", rng.choice(kinds), rng.choice([None, *range(1, 41)]))
        for _ in range(1500)
    ]
    settings = _settings(max_session_groups=8, neighbors_per_group=4, popularity_discount=0.3)
    got, want = _neighbors(spark, events, settings), _reference(events, settings)
    assert len(want) > 100
    assert [r[:3] + (r[4],) for r in got] == [r[:3] + (r[4],) for r in want]
    assert [r[3] for r in got] == pytest.approx([r[3] for r in want])
