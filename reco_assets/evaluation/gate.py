"""The quality gate of a day, failing closed: what holds the day's models and cards back."""

from datetime import date, timedelta

import pandas as pd
from dagster import Failure

from reco_assets.evaluation.report import GateVerdict, gate_verdict
from reco_assets.resources.lakehouse import Lakehouse, MissingPartition, partition_predicate
from reco_assets.settings import RecoSettings


def _inputs_written(lakehouse: Lakehouse, day: date, settings: RecoSettings) -> list[float]:
    """When the events and catalog snapshots a backtest of `day` reads were last written."""
    oldest = day - timedelta(days=settings.evaluation_reach())  # the oldest origin's training day
    written = [
        lakehouse.last_written("raw_events", "event_date", day - timedelta(days=settings.events_reach() - 1), day),
        lakehouse.last_written("catalog", "as_of_date", oldest, day),
    ]
    return [w for w in written if w is not None]


def require_gate(
    lakehouse: Lakehouse, day: date, settings: RecoSettings, held: str, ranked: list[str] | None = None
) -> GateVerdict:
    """The day's verdict when it lets `held` (what the caller is about to publish) through; a `Failure`
    that says what is missing otherwise.

    Held back: no champions of the day (`ranking_champions`, from its offline evaluation); champions older
    than the events or catalog snapshots of the days the evaluation reads (written again since) or chosen
    with other model settings (stale); and, unless `gate_unevaluated` is `publish`, an evaluation that had
    no member to score. A baseline that wins is published, not held back. With `ranked` (cohorts), also held
    back when one of their rankings (`diversified_affinities`) is not by the day's champion (an evaluation
    run again since chose another method, or refitted the blend of a cohort ranked by it).
    """
    partition = {"as_of_date": day}
    try:
        table = lakehouse.read_arrow("ranking_champions", partition=partition).to_pandas()
    except MissingPartition as error:
        raise Failure(f"{held} of {day} held back: the day has no offline evaluation yet ({error})") from error
    evaluated_at = lakehouse.written_at("ranking_champions", partition)
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
    if ranked:
        stale = _stale_rankings(lakehouse, day, ranked, table, evaluated_at)
        if stale:
            raise Failure(
                f"{held} of {day} held back: the rankings of {', '.join(stale[:5])}"
                f"{f' and {len(stale) - 5} more cohorts' if len(stale) > 5 else ''} are not those of the day's "
                "champions (the evaluation was run again since); run the cohorts of the day again"
            )
    verdict = gate_verdict(table)
    if not verdict.evaluated and settings.evaluation.gate_unevaluated == "publish":
        return verdict
    if not verdict.passed:
        raise Failure(f"{held} of {day} held back by the quality gate: {verdict.explain()}")
    return verdict


def champion_tags(lakehouse: Lakehouse, day: date) -> dict[str, dict[str, str]]:
    """Per cohort, what its published model version is tagged with: the method its cards were ranked by,
    the runner-up and the margin over it with its 95 % interval (NDCG@10 on the rolling backtest)."""
    chosen = lakehouse.read_arrow("ranking_champions", partition={"as_of_date": day}).to_pandas()
    return {
        row.cohort: {
            "published_method": row.method,
            "published_scope": row.scope,
            "published_versus": row.versus,
            "published_margin": f"{row.margin:.4f}",
            "published_margin_ci": f"[{row.margin_low:.4f}, {row.margin_high:.4f}]",
        }
        for row in chosen.itertuples()
    }


def published_rankings(lakehouse: Lakehouse, day: date) -> dict[str, dict]:
    """Cohort -> the payload's `ranking`: the `method` its cards of `day` were ranked by and, when that method
    is the day's champion, the runner-up (`versus`) and the `margin` of NDCG@10 over it with its 95 %
    interval (`margin_ci`), rounded to 4 places."""
    champions = {}
    if lakehouse.table("ranking_champions") is not None:
        found = lakehouse.read_arrow("ranking_champions", partition_predicate({"as_of_date": day})).to_pandas()
        champions = {row.cohort: row for row in found.itertuples()}
    rankings = {}
    for cohort, method in ranked_methods(lakehouse, day).items():
        ranking, row = {"method": method}, champions.get(cohort)
        if (
            row is not None
            and row.method == method
            and row.versus
            and pd.notna([row.margin, row.margin_low, row.margin_high]).all()
        ):
            ci = [round(float(row.margin_low), 4), round(float(row.margin_high), 4)]
            ranking |= {"versus": row.versus, "margin": round(float(row.margin), 4), "margin_ci": ci}
        rankings[cohort] = ranking
    return rankings


def ranked_methods(lakehouse: Lakehouse, day: date) -> dict[str, str]:
    """Cohort -> the method its rankings of `day` were made by (`diversified_affinities.method`)."""
    if "method" not in lakehouse.dataset("diversified_affinities").schema.names:
        return {}  # a lakehouse from before the column
    found = lakehouse.read_arrow(
        "diversified_affinities", columns=["cohort", "method"], partition={"as_of_date": day}, distinct=True
    )
    return dict(zip(found.column("cohort").to_pylist(), found.column("method").to_pylist(), strict=True))


def _stale_rankings(lakehouse: Lakehouse, day: date, cohorts: list[str], champions, chosen_at: float) -> list[str]:
    """Cohorts whose rankings are not by their champion; for the blend, also those made before the
    champions were written (its weights may have been fitted again). Cohorts without rows have nothing."""
    ranked = ranked_methods(lakehouse, day)
    wanted = dict(zip(champions["cohort"], champions["method"], strict=True))
    stale = []
    for cohort in cohorts:
        method = ranked.get(cohort)
        if method is None:
            continue
        partition = {"as_of_date": day, "cohort": cohort}
        refitted = method == "blend" and lakehouse.written_at("diversified_affinities", partition) < chosen_at
        if method != wanted.get(cohort, "model") or refitted:
            stale.append(cohort)
    return stale
