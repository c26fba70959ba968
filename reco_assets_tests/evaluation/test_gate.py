"""The gate fails closed: what holds a day back, on a real Delta lakehouse (no Spark needed)."""

import time
from datetime import date

import pyarrow as pa
import pytest
from dagster import Failure

from reco_assets.evaluation.champion import SCHEMA as CHAMPIONS_SCHEMA
from reco_assets.evaluation.gate import require_gate
from reco_assets.resources.lakehouse import Lakehouse
from reco_assets.resources.steps import seal
from reco_assets.settings import RecoSettings

DAY = date(2026, 10, 31)
KEY = RecoSettings().model_key()
# the default rolling backtest of 10-31: four origins a week apart after the fitting one, the oldest trained
# through 10-31 - 7 (holdout) - 4 x 7 = 09-26 on 60 days of events (from 07-29) and catalogs from 09-26
OLDEST_EVENTS, OLDEST_CATALOG = date(2026, 7, 29), date(2026, 9, 26)


def _events(lake: Lakehouse, day: date = DAY) -> None:
    lake.write_partition("raw_events", pa.table({"event_id": ["e1"], "event_date": [day]}), {"event_date": day})


def _catalog(lake: Lakehouse, day: date) -> None:
    lake.write_partition("catalog", pa.table({"style_id": [1], "as_of_date": [day]}), {"as_of_date": day})


def _champions(lake: Lakehouse, methods: dict[str, str] | None, key: str = KEY) -> None:
    """The day's `ranking_champions` (cohort -> method, `all` first); None: an evaluation with nothing scored."""
    rows = [
        {
            "as_of_date": DAY,
            "cohort": cohort,
            "method": method,
            "scope": "all" if cohort == "all" else "cohort",
            "ndcg": 0.3,
            "ci_low": 0.25,
            "ci_high": 0.35,
            "versus": "model" if method != "model" else "repeat",
            "versus_ndcg": 0.2,
            "margin": 0.1,
            "margin_low": 0.05,
            "margin_high": 0.15,
            "best_baseline": "repeat",
            "best_baseline_ndcg": 0.3 if method == "repeat" else 0.2,
            "members": 100,
            "blend_weights": "",
            "model_key": key,
        }
        for cohort, method in (methods or {}).items()
    ]
    lake.write_partition("ranking_champions", pa.Table.from_pylist(rows, schema=CHAMPIONS_SCHEMA), {"as_of_date": DAY})
    seal(lake, [("ranking_champions", {"as_of_date": DAY})])  # as the evaluation step does, last


MODEL_WINS = {"all": "model", "women_1": "model", "men_2": "model"}


def _held(lake: Lakehouse, settings: RecoSettings = RecoSettings()) -> str:
    with pytest.raises(Failure) as held:
        require_gate(lake, DAY, settings, "member cards")
    return held.value.description


def _passes(lake: Lakehouse, settings: RecoSettings = RecoSettings()):
    verdict = require_gate(lake, DAY, settings, "member cards")
    assert verdict.passed and verdict.evaluated
    return verdict


def test_a_day_without_an_evaluation_is_held_back(tmp_path):
    lake = Lakehouse(root=str(tmp_path))
    _events(lake)
    assert "member cards of 2026-10-31 held back: the day has no offline evaluation" in _held(lake)
    assert "ranking_champions" in _held(lake)  # the missing table and partition are named


def test_a_day_whose_champion_is_the_model_is_let_through(tmp_path):
    lake = Lakehouse(root=str(tmp_path))
    _events(lake)
    _champions(lake, MODEL_WINS)
    verdict = _passes(lake)
    assert verdict.champion == "model" and verdict.methods == (("women_1", "model"), ("men_2", "model"))


def test_a_day_whose_champion_is_a_baseline_is_let_through(tmp_path):
    lake = Lakehouse(root=str(tmp_path))
    _events(lake)
    _champions(lake, {"all": "repeat", "women_1": "repeat", "men_2": "popularity"})
    verdict = _passes(lake)
    assert (verdict.champion, verdict.best_baseline, verdict.value) == ("repeat", "repeat", 0.3)
    assert verdict.methods == (("women_1", "repeat"), ("men_2", "popularity"))
    assert "repeat in 1 cohorts" in verdict.explain() and "popularity in 1 cohorts" in verdict.explain()


def test_an_evaluation_with_nothing_to_score_publishes_only_when_the_setting_says_so(tmp_path):
    lake = Lakehouse(root=str(tmp_path))
    _events(lake)
    _champions(lake, None)
    assert "held back by the quality gate: not evaluated" in _held(lake)
    verdict = require_gate(
        lake, DAY, RecoSettings().changed({"evaluation.gate_unevaluated": "publish"}), "member cards"
    )
    assert not verdict.evaluated and not verdict.passed and "not evaluated" in verdict.explain()


def test_champions_of_other_model_settings_are_held_back(tmp_path):
    lake = Lakehouse(root=str(tmp_path))
    _events(lake)
    _champions(lake, MODEL_WINS, key="other settings")
    assert "made with other model settings" in _held(lake)
    _champions(lake, MODEL_WINS)
    _passes(lake)


def test_a_stale_evaluation_is_held_back(tmp_path):
    lake = Lakehouse(root=str(tmp_path))
    _events(lake)
    _champions(lake, MODEL_WINS)
    time.sleep(0.01)
    _events(lake)  # the day's events ingested again after its evaluation
    assert "is stale" in _held(lake)
    _champions(lake, MODEL_WINS)
    time.sleep(0.01)
    _events(lake, date(2026, 10, 20))  # a training day of the latest origin (T = 10-24) ingested again
    assert "is stale" in _held(lake)
    _champions(lake, MODEL_WINS)
    time.sleep(0.01)
    _events(lake, date(2026, 11, 1))  # a later day is not read by the evaluation of 10-31
    _passes(lake)


def test_the_inputs_of_the_oldest_origin_count_too(tmp_path):
    lake = Lakehouse(root=str(tmp_path))
    _events(lake)
    _champions(lake, MODEL_WINS)
    time.sleep(0.01)
    _events(lake, date(2026, 7, 28))  # the day before the oldest origin's first day of events
    _passes(lake)
    _events(lake, OLDEST_EVENTS)  # read by the oldest origin only (the latest reads from 08-26)
    assert "is stale" in _held(lake)
    # with a single reported origin a week back, training starts 10-17 - 59 = 08-19: 07-29 is not read
    _passes(lake, RecoSettings().changed({"evaluation.origins": 1}))
    _champions(lake, MODEL_WINS)
    time.sleep(0.01)
    _catalog(lake, date(2026, 9, 25))  # a snapshot before the oldest origin's training day
    _passes(lake)
    _catalog(lake, OLDEST_CATALOG)
    assert "is stale" in _held(lake)


def _ranked(lake: Lakehouse, cohort: str, method: str) -> None:
    """A cohort's `diversified_affinities` partition of the day, ranked by `method`."""
    rows = pa.table(
        {"member_id": [1], "subclass_brand_id": [7], "method": [method], "as_of_date": [DAY], "cohort": [cohort]}
    )
    lake.replace(
        "diversified_affinities", rows, f"as_of_date = '{DAY}' AND cohort = '{cohort}'", ["as_of_date", "cohort"]
    )
    seal(lake, [("diversified_affinities", {"as_of_date": DAY, "cohort": cohort})])  # as the affinities step does


def test_cards_of_rankings_not_by_the_champion_are_held_back(tmp_path):
    lake = Lakehouse(root=str(tmp_path))
    _events(lake)
    _ranked(lake, "women_1", "model")
    _ranked(lake, "men_2", "blend")
    time.sleep(0.01)
    _champions(lake, {"all": "model", "women_1": "repeat", "men_2": "blend"})  # evaluated again afterwards
    with pytest.raises(Failure) as held:
        require_gate(lake, DAY, RecoSettings(), "member cards", ["women_1", "men_2", "kids_1"])
    # women_1 was ranked by the model, no longer its champion; men_2's blend predates the refitted weights
    assert "the rankings of women_1, men_2 are not those of the day's champions" in held.value.description
    _ranked(lake, "women_1", "repeat")
    _ranked(lake, "men_2", "blend")  # the cohorts run again: rankings by the champions, after them
    assert require_gate(lake, DAY, RecoSettings(), "member cards", ["women_1", "men_2", "kids_1"]).passed
