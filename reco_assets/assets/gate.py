"""The quality gate of a day, failing closed: what holds the day's models and cards back."""

from datetime import date, timedelta

from dagster import Failure

from reco_assets.evaluation.report import GateVerdict, quality_gate
from reco_assets.resources.lakehouse import Lakehouse, MissingPartition
from reco_assets.settings import RecoSettings


def _inputs_written(lakehouse: Lakehouse, day: date, settings: RecoSettings) -> list[float]:
    """When the events and catalog snapshots a backtest of `day` reads were last written."""
    longest = max(
        settings.ratings_lookback_days,
        settings.interaction_window_days,
        settings.boost_window_days,
        settings.popularity_window_days,
    )
    train_end = day - timedelta(days=settings.holdout_days)
    written = [
        lakehouse.last_written("raw_events", "event_date", train_end - timedelta(days=longest - 1), day),
        lakehouse.last_written("catalog", "as_of_date", train_end, day),
    ]
    return [w for w in written if w is not None]


def require_gate(lakehouse: Lakehouse, day: date, settings: RecoSettings, held: str) -> GateVerdict:
    """The day's verdict when it lets `held` (what the caller is about to publish) through; a `Failure`
    that says what is missing otherwise.

    Held back: no offline evaluation of the day; one older than the events or catalog snapshots of the days
    it reads (written again since) or made with other model settings (stale); a failed verdict; and, unless
    `gate_unevaluated` is `publish`, an evaluation that had no member to score.
    """
    partition = {"as_of_date": day}
    try:
        table = lakehouse.read_arrow("offline_evaluation", partition=partition).to_pandas()
    except MissingPartition as error:
        raise Failure(f"{held} of {day} held back: the day has no offline evaluation yet ({error})") from error
    evaluated_at = lakehouse.written_at("offline_evaluation", partition)
    if any(written > evaluated_at for written in _inputs_written(lakehouse, day, settings)):
        raise Failure(
            f"{held} of {day} held back: the offline evaluation of {day} is stale (events or catalog snapshots "
            "of the days it reads were written again after it); evaluate the day again"
        )
    keys = set(table["model_key"])
    if keys and keys != {settings.model_key()}:
        raise Failure(
            f"{held} of {day} held back: the offline evaluation of {day} was made with other model settings "
            f"than the current ones; evaluate the day again"
        )
    verdict = quality_gate(table, settings.quality_gate_margin)
    if not verdict.evaluated and settings.gate_unevaluated == "publish":
        return verdict
    if not verdict.passed:
        raise Failure(f"{held} of {day} held back by the quality gate: {verdict.explain()}")
    return verdict
