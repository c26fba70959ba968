"""Offline evaluation: the pipeline backtested at rolling origins, and the champion each cohort publishes."""

import time

import pandas as pd
import pyarrow as pa
from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)

from reco_assets.assets.common import partition_date, table_metadata
from reco_assets.checks import spec
from reco_assets.constants import EVALUATION
from reco_assets.evaluation.champion import SCHEMA as CHAMPIONS_SCHEMA
from reco_assets.evaluation.champion import blend_json
from reco_assets.evaluation.item_to_item import evaluation_reader, item_to_item_rows, origin_similarity
from reco_assets.evaluation.report import SCHEMA, gate_verdict, settings_table
from reco_assets.evaluation.rolling import rolling_backtest
from reco_assets.evaluation.runs import log_backtest
from reco_assets.evaluation.session_replay import session_replays, session_rows
from reco_assets.partitions import daily_partitions
from reco_assets.resources.lakehouse import Lakehouse
from reco_assets.resources.spark import SparkResource
from reco_assets.resources.steps import seal
from reco_assets.resources.tracking import MlflowTracking
from reco_assets.settings import RecoSettings

RUN_COLUMNS = ["as_of_date", "train_end_date", "test_end_date", "model_key"]
"""The columns every row of a day's `offline_evaluation` shares."""


def _spec(name: str, description: str) -> AssetSpec:
    return AssetSpec(
        name,
        deps=["raw_events", "catalog"],  # the windows it reads: `lineage.py`
        partitions_def=daily_partitions,
        group_name=EVALUATION,
        kinds={"spark", "delta", "mlflow"},
        description=description,
    )


@multi_asset(
    specs=[
        _spec(
            "offline_evaluation",
            "Model, blend, ablations, baselines and the published lists scored at rolling origins "
            "(the day and the weeks before it), with 95 % bootstrap intervals.",
        ),
        _spec(
            "ranking_champions",
            "Per cohort, the ranking method the day's cards are built from: the best on the rolling backtest.",
        ),
    ],
    check_specs=[
        spec(
            "ranking_champions",
            "champion_chosen",
            "the rolling backtest scored members and chose a champion for every cohort; the day's member "
            "cards are held back otherwise",
        )
    ],
    partitions_def=daily_partitions,
)
def offline_evaluation(
    context: AssetExecutionContext,
    spark: SparkResource,
    lakehouse: Lakehouse,
    tracking: MlflowTracking,
    settings: RecoSettings,
):
    """Every origin trained on the days up to it less `holdout_days`, scored on the `holdout_days` after."""
    day = partition_date(context)
    session = spark.session()
    rolling = rolling_backtest(session, lakehouse, day, settings)
    started = time.perf_counter()
    table, champions = settings_table(rolling.backtests, day, settings)
    seconds = {"report": time.perf_counter() - started}
    fitted = {}  # the session re-ranking's weights, fitted on the origins before the reported ones
    if len(table):  # the item-to-item lists and the session re-ranking, on the same reported origins
        run = table.iloc[0][RUN_COLUMNS].to_dict()
        first = run["train_end_date"]
        started = time.perf_counter()
        # the factor similarity of each origin's models, and one reader of every window, for both
        similar = {b.split.train_end: origin_similarity(session, b, settings) for b in rolling.backtests}
        reader = evaluation_reader(session, lakehouse, min(similar), max(similar), settings)
        try:
            origins = [day for day in similar if day >= first]
            items = item_to_item_rows(session, lakehouse, origins, settings, similar, reader)
            table = pd.concat([table, items.assign(**run)[table.columns]], ignore_index=True)
            seconds["item_to_item"] = time.perf_counter() - started
            started = time.perf_counter()
            replays = session_replays(reader, rolling, champions, similar, settings)
            reranked, fitted = session_rows(replays, first, settings)
            table = pd.concat([table, reranked.assign(**run)[table.columns]], ignore_index=True)
            seconds["session_replay"] = time.perf_counter() - started
        finally:  # the process's Spark session outlives a failed evaluation: its kept events must not
            reader.release()
    params = {f"factor_model.{k}": v for k, v in settings.factor_model.model_dump().items()} | {
        f"{group}.{name}": getattr(getattr(settings, group), name)
        for group, name in (
            ("evaluation", "holdout_days"),
            ("evaluation", "relevant_events"),
            ("ratings", "lookback_days"),
            ("ranking", "boost_strength"),
            ("evaluation", "origins"),
            ("evaluation", "origin_days"),
        )
    }
    latest = rolling.backtests[-1]
    started = time.perf_counter()
    with tracking.run(f"offline_evaluation {day}", {"as_of_date": str(day), "dagster_run_id": context.run_id}) as run:
        log_backtest(latest, table, {k: str(v) if isinstance(v, list) else v for k, v in params.items()})
        run_id = run.info.run_id
    seconds["tracking"] = time.perf_counter() - started
    data = pa.Table.from_pandas(table, schema=SCHEMA, preserve_index=False)
    chosen = pa.Table.from_pandas(
        champions.assign(as_of_date=day, blend_weights=blend_json(rolling.blend), model_key=settings.model_key()),
        schema=CHAMPIONS_SCHEMA,
        preserve_index=False,
    )
    verdict = gate_verdict(champions)
    # The verdict is known before anything is written. A failing one is published too: it is what the gate
    # of the day's models and cards reads to hold them back with its reason.
    chosen_check = AssetCheckResult(
        asset_key="ranking_champions",
        check_name="champion_chosen",
        # a day with nothing to score passes only when the settings publish such days (`require_gate`)
        passed=verdict.passed or (not verdict.evaluated and settings.evaluation.gate_unevaluated == "publish"),
        metadata={
            "verdict": verdict.explain(),
            "champion": verdict.champion,
            "champion_ndcg_at_10": verdict.value,
            "best_baseline": verdict.best_baseline,
            "best_baseline_ndcg_at_10": verdict.baseline,
        },
    )
    lakehouse.write_partition("offline_evaluation", data, {"as_of_date": day})
    lakehouse.write_partition("ranking_champions", chosen, {"as_of_date": day})
    seal(lakehouse, [("offline_evaluation", {"as_of_date": day}), ("ranking_champions", {"as_of_date": day})])
    seconds = pd.DataFrame([b.seconds for b in rolling.backtests]).sum().to_dict() | seconds
    yield MaterializeResult(
        asset_key="offline_evaluation",
        metadata=table_metadata(
            lakehouse,
            "offline_evaluation",
            data,
            mlflow_run_id=run_id,
            origins=MetadataValue.json([str(b.split.test_end) for b in rolling.backtests]),
            session_rerank=MetadataValue.json(fitted),
            **latest.sizes,
            **{f"seconds_{phase}": round(value, 1) for phase, value in seconds.items()},
        ),
    )
    yield MaterializeResult(
        asset_key="ranking_champions",
        metadata=table_metadata(
            lakehouse,
            "ranking_champions",
            chosen,
            verdict=MetadataValue.text(verdict.explain()),
            blend_weights=MetadataValue.json(dict(rolling.blend.weights) if rolling.blend else {}),
        ),
    )
    yield chosen_check
