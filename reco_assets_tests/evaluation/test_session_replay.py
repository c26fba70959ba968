"""The session re-ranking's replay on hand-built sessions: each step's ranks worked out by hand."""

from dataclasses import replace
from datetime import date

import numpy as np

from reco_assets.evaluation.session_replay import Replay, replay_ranks, session_rows
from reco_assets.serving.rerank import Weights
from reco_assets.settings import RecoSettings

WEIGHTS = Weights(group_boost=0.0, subclass_boost=0.5, neighbor_weight=1.0, neighbor_groups=3)
SUBCLASSES = {"1": "x", "2": "y", "3": "x", "4": "z", "5": "y", "6": "w"}


def entry(n: int, style: str, kind: str = "product_view") -> list:
    return [f"2026-11-01T10:0{n}:00", kind, style, f"e{n}"]


def hand_replay(member: int = 1) -> Replay:
    # views of groups 2, 5, 6, then 2 again: the last step's target was shown already
    entries = [entry(0, "a"), entry(1, "b"), entry(2, "c"), entry(3, "d")]
    sessions = [(member, entries, ["2", "5", "6", "2"])]
    return Replay({member: [1, 2, 3, 4, 5]}, sessions, {"2": ["6", "4"]}, SUBCLASSES)


def test_each_step_ranks_the_next_unseen_group_in_the_daily_and_the_reranked_list():
    ranks = replay_ranks(hand_replay(), WEIGHTS)
    # step 1 (after group 2, subclass y): 1: 1, 2: 1/log2(3) + 0.5 = 1.13, 3: 0.5, 4: 0.43, 5: 1/log2(6) + 0.5
    # = 0.89, and 6 drawn in (first of 2's similar groups): 1.0, after 1 -> 2, 1, 6, 5, 3: target 5 is 4th
    # step 2 (after 2 and 5, still subclass y): the same scores; target 6 is not in the daily list, 3rd re-ranked
    # step 3: target 2 was shown in the session: not counted
    assert ranks["member_id"].tolist() == [1, 1] and ranks["events"].tolist() == [1, 2]
    assert ranks["daily"].tolist()[0] == 5 and np.isnan(ranks["daily"].tolist()[1])
    assert ranks["reranked"].tolist() == [4, 3]


def test_a_purchase_in_the_session_stops_its_subclass_boost():
    bought = hand_replay()
    bought.sessions[0][1][0] = entry(0, "a", "purchase")  # group 2 bought: subclass y no longer boosted
    ranks = replay_ranks(bought, WEIGHTS)
    # step 1: 1: 1, 2: 0.63, 3: 0.5, 4: 0.43, 5: 0.39, 6 drawn in: 1.0 -> 1, 6, 2, 3, 4: target 5 is cut
    assert np.isnan(ranks["reranked"].tolist()[0]) and ranks["reranked"].tolist()[1] == 2


def test_the_weights_are_fitted_on_the_origins_before_the_reported_ones():
    settings = RecoSettings()
    fitting, reported = date(2026, 10, 3), date(2026, 10, 10)
    rows, fitted = session_rows({fitting: hand_replay(), reported: hand_replay(2)}, reported, settings)
    other = replace(hand_replay(2), sessions=[(2, [entry(0, "a"), entry(1, "z")], ["2", "4"])])
    again = session_rows({fitting: hand_replay(), reported: other}, reported, settings)[1]
    assert fitted == again  # what the reported origin holds never reaches the weights
    assert fitted["fitting_origins"] == 1
    assert set(rows["segment"]) == {"one_event", "two_or_more_events"} and set(rows["k"]) == {20}
    assert set(rows["method"]) == {"daily", "reranked"} and set(rows["members"]) == {1}
