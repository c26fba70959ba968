"""The rolling-origin backtest of a day: the pipeline replayed at several origins, oldest first.

Origin i is trained through its own day minus the holdout and scored on the days after it. The blend ranked at
origin i has weights fitted on the training rows of the origins before i only (their test windows end on or
before i's training day), so nothing it learned comes after the day it is scored from. The first origin only
fits; the day's own blend, the one its cards may use, is fitted on every origin. In the same way the factor
models of origin i start from those of origin i - 1 (`factor_model.warm_iterations`), fitted on days
before its own.
"""

from dataclasses import dataclass
from datetime import date, timedelta

from pyspark.sql import SparkSession

from reco_assets.evaluation.backtest import Backtest, run_backtest
from reco_assets.evaluation.blend import fit_blend
from reco_assets.pipeline import stages
from reco_assets.pipeline.methods import Method
from reco_assets.resources.lakehouse import Lakehouse
from reco_assets.settings import RecoSettings


def origins(day: date, settings: RecoSettings) -> list[date]:
    """The days of the rolling backtest of `day`, oldest first: the fitting origin, then the reported ones."""
    step = timedelta(days=settings.evaluation.origin_days)
    return [day - step * i for i in range(settings.evaluation.origins, -1, -1)]


@dataclass
class Rolling:
    backtests: list[Backtest]  # every origin, oldest first (the first only fits)
    blend: Method | None  # fitted on every origin: what the day's cards use when the blend is the champion


def rolling_backtest(session: SparkSession, lakehouse: Lakehouse, day: date, settings: RecoSettings) -> Rolling:
    """The backtests of every origin; ablations and the product feeds are scored at the day's own origin only."""
    days = origins(day, settings)
    holdout = timedelta(days=settings.evaluation.holdout_days)
    # every origin's windows of events cut from one read of their span, kept for the whole evaluation
    reader = stages.Reader(session, lakehouse, keep=True, strict=False)
    reader.events(day - holdout, (days[-1] - days[0]).days + settings.lookback_days())
    backtests = []
    try:
        for origin in days:
            latest = origin == day
            backtests.append(
                run_backtest(
                    session,
                    lakehouse,
                    origin,
                    settings,
                    ablations=latest and settings.evaluation.ablations,
                    styles=latest and settings.evaluation.styles,
                    blend=fit_blend([b.samples for b in backtests], settings.evaluation.seed),
                    samples=True,
                    reader=reader,
                    # from the previous origin's models: earlier days only, as the blend's weights
                    start=backtests[-1].factors if backtests else None,
                )
            )
    finally:  # the process's Spark session outlives a failed evaluation: its kept events must not
        reader.release()
    return Rolling(backtests, fit_blend([b.samples for b in backtests], settings.evaluation.seed))
