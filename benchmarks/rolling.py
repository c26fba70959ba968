"""What the rolling-origin backtest of a day costs, the first time and once the training days' models are stored.

The evaluation of day D replays the pipeline at every origin, each trained through its own day T. Where the
daily pipeline ran on T with the same settings, `als_factors` holds T's cohort models and the backtest reuses
them (`backtest.models`), with the ratings and cohorts stored beside them (`backtest.stored_inputs`): that is
the steady state of a daily schedule. A home made by `python -m reco_assets demo` has the models of its last day
only, so this script times the backtest as it is (every origin fits its models), then stores each origin's
ratings, cohorts and cohort models for its T exactly as the `implicit_ratings`, `member_cohorts` and
`als_factors` assets compute them, in a copy of the home, and times it again. Last, it runs the day itself again
on that copy, as a daily schedule would, and sets its evaluation stage (the steady state) against the rest of
the day's pipeline, in one process.

    .venv/bin/python benchmarks/rolling.py --home .reco_home [--date 2026-10-31] [--origins 4]
"""

import argparse
import shutil
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from pyspark.sql import functions as F

from reco_assets.assets.common import stage_day
from reco_assets.evaluation.rolling import origins, rolling_backtest
from reco_assets.pipeline import stages
from reco_assets.resources import local_resources
from reco_assets.resources.lakehouse import Lakehouse
from reco_assets.runner import run_day
from reco_assets.settings import RecoSettings, load_settings


def store_models(session, lakehouse: Lakehouse, train_end: date, settings: RecoSettings) -> None:
    """The ratings, cohorts and cohort models the pipeline would have stored for `train_end`: the stages the
    `implicit_ratings`, `member_cohorts` and `als_factors` assets run, written as they write them."""
    reader = stages.Reader(session, lakehouse)
    stage_day(lakehouse, "implicit_ratings", stages.ratings(reader, train_end, settings), train_end).commit()
    ratings = reader.day("implicit_ratings", train_end)
    stage_day(lakehouse, "member_cohorts", stages.cohorts(reader, train_end, ratings, settings), train_end).commit()
    cohorts = reader.day("member_cohorts", train_end)
    names = sorted(r["cohort"] for r in cohorts.select("cohort").distinct().collect())
    if not names:
        return
    fitted = stages.factor_models(ratings, cohorts, settings.factor_model)
    keyed = fitted.withColumn("model_key", F.lit(settings.model_key()))
    stage_day(lakehouse, "als_factors", keyed, train_end, names).commit()


def timed(session, lakehouse: Lakehouse, day: date, settings: RecoSettings) -> tuple[float, dict]:
    started = time.perf_counter()
    rolling = rolling_backtest(session, lakehouse, day, settings)
    phases: dict[str, float] = {}
    for backtest in rolling.backtests:
        for phase, seconds in backtest.seconds.items():
            phases[phase] = phases.get(phase, 0.0) + seconds
    phases["reused_cohort_models"] = sum(b.sizes.get("reused_cohort_models", 0) for b in rolling.backtests)
    return time.perf_counter() - started, phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path(".reco_home"))
    parser.add_argument("--date", type=date.fromisoformat, default=date(2026, 10, 31))
    parser.add_argument(
        "--origins", type=int, help="reported origins (default: the home's `evaluation.origins` setting)"
    )
    args = parser.parse_args()
    settings = load_settings(args.home).changed({"evaluation.origins": args.origins} if args.origins else {})
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        shutil.copytree(args.home, home, ignore=shutil.ignore_patterns("spark-checkpoints"))
        lakehouse = Lakehouse(root=str(home / "lakehouse"))
        session = local_resources(home, settings)["spark"].session()
        first, first_phases = timed(session, lakehouse, args.date, settings)
        train_days = [o - timedelta(days=settings.evaluation.holdout_days) for o in origins(args.date, settings)]
        started = time.perf_counter()
        for train_end in train_days:
            store_models(session, lakehouse, train_end, settings)
        storing = time.perf_counter() - started
        steady, steady_phases = timed(session, lakehouse, args.date, settings)
        # the day itself run again on the copy, as a daily schedule runs it: its evaluation in the steady state
        report = run_day(home, args.date, [args.date], log=lambda line: None, settings=settings)
        if report.failed_steps or "offline evaluation" not in report.stage_seconds:
            raise SystemExit(f"the day's run failed: {report.failed_steps}")
        stage_seconds = report.stage_seconds
    first_day, last_day = train_days[0], train_days[-1]
    evaluation = stage_seconds.pop("offline evaluation")
    pipeline = sum(stage_seconds.values())
    print(f"rolling backtest of {args.date}: {len(train_days)} origins, trained through {first_day} .. {last_day}")
    print(f"  fitting every origin's models   {first:7.1f} s  {fmt(first_phases)}")
    print(f"  with the training days' models  {steady:7.1f} s  {fmt(steady_phases)}")
    print(f"  (storing those models took {storing:.1f} s: the daily runs of those days do it)")
    print(
        f"the day run again with the training days' models: {fmt(stage_seconds | {'offline evaluation': evaluation})}"
    )
    print(f"  the day's pipeline without its evaluation {pipeline:7.1f} s")
    print(
        f"  its evaluation stage                      {evaluation:7.1f} s  = {evaluation / pipeline:.2f}x the pipeline"
    )


def fmt(phases: dict) -> str:
    return ", ".join(f"{name} {value:.1f}" for name, value in phases.items())


if __name__ == "__main__":
    main()
