"""The gate fails closed: what holds a day back, on a real Delta lakehouse (no Spark needed)."""

import time
from datetime import date

import pyarrow as pa
import pytest
from dagster import Failure

from reco_assets.assets.gate import require_gate
from reco_assets.evaluation.report import SCHEMA
from reco_assets.resources.lakehouse import Lakehouse
from reco_assets.settings import RecoSettings

DAY = date(2026, 10, 31)
KEY = RecoSettings().model_key()


def _events(lake: Lakehouse, day: date = DAY) -> None:
    lake.write_partition("raw_events", pa.table({"event_id": ["e1"], "event_date": [day]}), {"event_date": day})


def _evaluation(lake: Lakehouse, model: float | None, key: str = KEY) -> None:
    rows = [] if model is None else [("model", model), ("repeat", 0.20), ("popularity", 0.10)]
    table = pa.Table.from_pylist(
        [
            {
                "as_of_date": DAY,
                "train_end_date": date(2026, 10, 24),
                "test_end_date": DAY,
                "level": "subclass_brand",
                "segment": "all",
                "method": method,
                "metric": "ndcg",
                "k": 10,
                "value": value,
                "members": 100,
                "model_key": key,
            }
            for method, value in rows
        ],
        schema=SCHEMA,
    )
    lake.write_partition("offline_evaluation", table, {"as_of_date": DAY})


def _held(lake: Lakehouse, settings: RecoSettings = RecoSettings()) -> str:
    with pytest.raises(Failure) as held:
        require_gate(lake, DAY, settings, "member cards")
    return held.value.description


def test_a_day_without_an_evaluation_is_held_back(tmp_path):
    lake = Lakehouse(root=str(tmp_path))
    _events(lake)
    assert "member cards of 2026-10-31 held back: the day has no offline evaluation" in _held(lake)
    assert "offline_evaluation" in _held(lake)  # the missing table and partition are named


def test_a_failed_evaluation_holds_back_and_a_passing_one_lets_through(tmp_path):
    lake = Lakehouse(root=str(tmp_path))
    _events(lake)
    _evaluation(lake, model=0.17)  # below 0.9 x 0.20
    assert "held back by the quality gate: model NDCG@10 0.1700 < threshold 0.1800" in _held(lake)
    _evaluation(lake, model=0.19)
    assert require_gate(lake, DAY, RecoSettings(), "member cards").passed


def test_an_evaluation_with_nothing_to_score_publishes_only_when_the_setting_says_so(tmp_path):
    lake = Lakehouse(root=str(tmp_path))
    _events(lake)
    _evaluation(lake, model=None)
    assert "not evaluated" in _held(lake)
    verdict = require_gate(lake, DAY, RecoSettings(gate_unevaluated="publish"), "member cards")
    assert not verdict.evaluated and "not evaluated" in verdict.explain()


def test_a_stale_evaluation_is_held_back(tmp_path):
    lake = Lakehouse(root=str(tmp_path))
    _events(lake)
    _evaluation(lake, model=0.19, key="other settings")
    assert "made with other model settings" in _held(lake)
    _evaluation(lake, model=0.19)
    time.sleep(0.01)
    _events(lake)  # the day's events ingested again after its evaluation
    assert "is stale" in _held(lake)
    _evaluation(lake, model=0.19)
    time.sleep(0.01)
    _events(lake, date(2026, 10, 20))  # a training day of the backtest (T = 10-24) ingested again
    assert "is stale" in _held(lake)
    _evaluation(lake, model=0.19)
    time.sleep(0.01)
    _events(lake, date(2026, 11, 1))  # a later day is not read by the evaluation of 10-31
    assert require_gate(lake, DAY, RecoSettings(), "member cards").passed
