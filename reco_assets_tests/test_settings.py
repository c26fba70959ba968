"""The settings: grouped, typed per engine, one file per home that every entry point reads, and the windows
they give the runner, the gate and the lineage."""

import json
from datetime import date, timedelta

import pytest

from reco_assets.cli import _settings
from reco_assets.definitions import build_definitions
from reco_assets.resources import local_resources
from reco_assets.runner import ingestion_window
from reco_assets.settings import SETTINGS_FILE, ImplicitAls, RecoSettings, SoftmaxModel, load_settings


def _start_offset(defs, asset: str, upstream: str) -> int:
    (dep,) = [d for d in defs.resolve_assets_def(asset).specs_by_key[_key(asset)].deps if d.asset_key == _key(upstream)]
    return dep.partition_mapping.start_offset


def _key(name: str):
    from dagster import AssetKey

    return AssetKey(name)


def test_set_writes_the_homes_settings_file_that_every_entry_point_reads(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    assert load_settings(home) == RecoSettings()  # no file: the defaults
    changed = _settings(home, ["ratings.lookback_days=90", "ranking.top_k=1000"])
    assert changed.ratings.lookback_days == 90 and changed.ranking.top_k == 1000
    # the engine and what differs from the defaults are written, so a later change of a default reaches the home
    assert json.loads((home / SETTINGS_FILE).read_text()) == {
        "factor_model": {"engine": "softmax"},
        "ranking": {"top_k": 1000},
        "ratings": {"lookback_days": 90},
    }
    # a later command without --set, the definitions of the UI and its sensors: the same settings
    assert _settings(home, None) == changed
    assert local_resources(home)["settings"] == changed
    defs = build_definitions(local_resources(home))
    assert _start_offset(defs, "implicit_ratings", "raw_events") == -89  # the 90 days ending with the day
    assert _start_offset(defs, "member_cohorts", "raw_events") == -89
    # the evaluation's oldest origin trains 7 + 4 x 7 days back, on the 90 days before and including it
    assert _start_offset(defs, "offline_evaluation", "raw_events") == -(7 + 28 + 90 - 1)
    assert _start_offset(defs, "offline_evaluation", "catalog") == -(7 + 28)
    assert _start_offset(defs, "style_listings", "raw_events") == -29  # the 30-day interaction window, unchanged


def test_the_lineage_of_the_defaults_draws_the_reference_windows(tmp_path):
    defs = build_definitions(local_resources(tmp_path))
    assert _start_offset(defs, "implicit_ratings", "raw_events") == -59
    assert _start_offset(defs, "ranking_champions", "raw_events") == -(7 + 28 + 60 - 1)
    assert _start_offset(defs, "group_neighbors", "raw_events") == -29  # 30 days of sessions
    assert _start_offset(defs, "co_purchase_rules", "raw_events") == -29  # and of baskets


def test_a_setting_of_one_engine_cannot_be_given_to_another():
    with pytest.raises(ValueError, match="no setting 'factor_model.alpha'"):
        RecoSettings().changed({"factor_model.alpha": 0.2})  # the softmax engine has no confidence scale
    with pytest.raises(ValueError, match="iterations"):
        ImplicitAls(iterations=5)
    implicit = RecoSettings().changed({"factor_model.engine": "implicit", "factor_model.scope": "cohort"})
    assert isinstance(implicit.factor_model, ImplicitAls) and implicit.factor_model.scope == "cohort"
    assert implicit.changed({"factor_model.alpha": 0.2}).factor_model.alpha == 0.2
    # naming the engine again starts from its defaults, keeping the scope and the seed
    back = implicit.changed({"factor_model.engine": "softmax"})
    assert back.factor_model == SoftmaxModel(scope="cohort")
    with pytest.raises(ValueError, match="not one of"):
        RecoSettings().changed({"factor_model.engine": "torch"})


def test_unknown_names_and_incomplete_weights_are_refused(tmp_path):
    with pytest.raises(ValueError, match="no setting 'ratings.lookback'"):
        RecoSettings().changed({"ratings.lookback": 30})
    with pytest.raises(ValueError, match="no setting 'holdout_days'"):
        RecoSettings().changed({"holdout_days": 3})  # a name of the flat settings of earlier versions
    with pytest.raises(ValueError, match="scoring events"):
        RecoSettings().changed({"ratings.weights": {"purchase": 40.0}})
    assert RecoSettings().changed({"ratings.weights.purchase": 60.0}).ratings.weights["purchase"] == 60.0
    with pytest.raises(SystemExit, match="no setting"):
        _settings(tmp_path, ["evaluation.holdout=3"])
    assert not (tmp_path / SETTINGS_FILE).exists()  # nothing written on a refused change


def test_origins_closer_than_the_holdout_are_refused():
    with pytest.raises(ValueError, match="origin_days"):
        RecoSettings().changed({"evaluation.origin_days": 3})  # holdout 7: the next origin's test window overlaps
    assert (
        RecoSettings().changed({"evaluation.holdout_days": 3, "evaluation.origin_days": 3}).evaluation.origin_days == 3
    )


def test_the_runner_ingests_every_day_the_evaluations_oldest_origin_reads():
    day = date(2026, 10, 31)
    available = [day - timedelta(days=n) for n in range(200, -1, -1)]  # landed days, oldest first
    # defaults: the oldest origin trains 7 + 4 x 7 = 35 days back, on the 60 days ending there
    window = ingestion_window(available, day, RecoSettings())
    assert window[0] == day - timedelta(days=35 + 60 - 1) and window[-1] == day - timedelta(days=1)
    # a popularity window longer than the others reaches further back (it is read at every origin)
    longer = RecoSettings().changed({"evaluation.popularity_window_days": 80})
    assert ingestion_window(available, day, longer)[0] == day - timedelta(days=35 + 80 - 1)


def test_an_engine_and_its_settings_in_one_change(tmp_path):
    for order in (
        ["factor_model.rank=20", "factor_model.engine=implicit"],
        ["factor_model.engine=implicit", "factor_model.rank=20"],
    ):
        home = tmp_path / str(len(list(tmp_path.iterdir())))
        model = _settings(home, order).factor_model
        assert isinstance(model, ImplicitAls) and model.rank == 20 and model.alpha == 0.05
        # the file holds the engine and what differs from that engine's defaults (not from the softmax's)
        assert json.loads((home / SETTINGS_FILE).read_text()) == {"factor_model": {"engine": "implicit", "rank": 20}}
        assert load_settings(home).factor_model == model


def test_the_engine_in_force_named_again_keeps_its_settings_and_speed_settings_keep_the_key():
    tuned = RecoSettings().changed({"factor_model.rank": 32})
    assert tuned.changed({"factor_model.engine": "softmax"}).factor_model.rank == 32
    # threads change how fast a model is fitted, not which: a stored model stays current
    assert tuned.changed({"factor_model.num_threads": 2}).model_key() == tuned.model_key()
    assert tuned.changed({"factor_model.rank": 16}).model_key() != tuned.model_key()


def test_dicts_and_lists_of_names_are_checked(tmp_path):
    with pytest.raises(ValueError, match="style_weights must name exactly"):
        RecoSettings().changed({"listings.style_weights": {"views": 2.0}})
    with pytest.raises(ValueError, match="no setting 'listings.style_weights.veiws'"):
        RecoSettings().changed({"listings.style_weights.veiws": 2.0})
    with pytest.raises(ValueError, match="relevant_events"):
        RecoSettings().changed({"evaluation.relevant_events": ["purchases"]})
    with pytest.raises(ValueError, match="champion_methods"):
        RecoSettings().changed({"evaluation.champion_methods": ["model", "bestseller"]})
    # a file that is not settings is an error naming it, not a traceback from deep inside
    (tmp_path / SETTINGS_FILE).write_text('{"ratings": null}')
    with pytest.raises(ValueError, match="settings.json does not hold valid settings"):
        load_settings(tmp_path)


def test_stored_ranks_below_the_largest_k_are_refused():
    with pytest.raises(ValueError, match="stored_ranks"):
        RecoSettings(ranking={"stored_ranks": 20}, evaluation={"ks": [10, 50]})
    assert RecoSettings(ranking={"stored_ranks": 50}).rank_params().keep == 50
