"""The item-to-item tables against their baselines at rolling origins: similar items (next-item prediction) and
bought together (basket completion), as `reco_assets/evaluation/item_to_item.py` scores them.

    # a home holding `raw_events` only: a simulated profile, or an imported log, ingested (no day materialized)
    .venv/bin/python benchmarks/item_to_item.py prepare --home /tmp/i2i/demo --profile demo
    .venv/bin/python benchmarks/item_to_item.py prepare --home /tmp/i2i/retail \
        --online-retail ../shared/data/uci_online_retail_2010-12_2011-01.csv
    # the figures at the origins given (a training day each, scored on the day after; FIRST..LAST: every day)
    .venv/bin/python benchmarks/item_to_item.py figures --home /tmp/i2i/demo \
        --origins 2026-10-09 2026-10-16 2026-10-23 2026-10-30
    # the neighbours' popularity discount and window on other (earlier) origins: similar items only
    .venv/bin/python benchmarks/item_to_item.py tune --home /tmp/i2i/demo --origins 2026-09-30..2026-10-06 \
        --discounts 0 0.25 0.5 0.75 1 --windows 14 30

`figures` prints each method's HR@10 and MRR@10 with their 95 % bootstrap intervals over members, and the
ratios the targets are stated in (model / co_occurrence and model / popularity for similar items, model /
co_purchase_popularity for bought together), each with its paired bootstrap interval (the same resamples
for both methods). Settings: the home's (`<home>/settings.json`), changed by `--set GROUP.NAME=VALUE`. A home
of events only fits no factor model: its `model` lists are the session neighbours alone (`session_neighbors`);
the daily `offline_evaluation` completes them with each origin's factor models, as they are served.
"""

import argparse
import os
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from reco_assets.constants import PARTITIONS_START_ENV

PAIRS = {
    "similar_items": [("model", "co_occurrence"), ("model", "popularity")],
    "bought_together": [("model", "co_purchase_popularity")],
}


def origin_days(texts: list[str]) -> list[date]:
    """Dates, `FIRST..LAST` meaning every day from FIRST to LAST."""
    days = []
    for text in texts:
        first, _, last = text.partition("..")
        start, end = date.fromisoformat(first), date.fromisoformat(last or first)
        days += [start + timedelta(days=n) for n in range((end - start).days + 1)]
    return sorted(set(days))


def prepare(home: Path, profile: str | None, online_retail: Path | None) -> None:
    """Land the profile's simulation (kept if already there) or the retail file, then ingest every landed day's
    catalog and events in one run: what the evaluation reads, and nothing else."""
    from reco_assets.resources.landing import LandingResource

    started = time.perf_counter()
    landing = home / "landing"
    if online_retail is not None:
        from reco_assets.adapters.importer import import_files
        from reco_assets.resources.lakehouse import Lakehouse

        report = import_files("online-retail", [online_retail], landing, Lakehouse(root=str(home / "lakehouse")))
        print(f"imported {report.imported:,} of {report.records:,} records in {time.perf_counter() - started:.1f} s")
    else:
        from reco_assets.simulator import PROFILES, simulate

        simulate(PROFILES[profile or "demo"], landing)
        print(f"simulated (or kept) profile {profile or 'demo'} in {time.perf_counter() - started:.1f} s")
    days = LandingResource(root=str(landing)).days()
    os.environ.setdefault(PARTITIONS_START_ENV, days[0].isoformat())  # before the partitions are defined
    from reco_assets.runner import ingest_days

    started = time.perf_counter()
    if not ingest_days(home, days):
        raise SystemExit("ingestion failed: see the run in the Dagster UI (python -m reco_assets ui)")
    print(f"ingested {len(days)} days ({days[0]} .. {days[-1]}) in {time.perf_counter() - started:.1f} s")


def paired_ratios(hits: pd.DataFrame, methods: tuple[str, ...], pairs: list[tuple[str, str]], settings) -> list[tuple]:
    """(numerator, denominator, metric, ratio, low, high): the ratio of two methods' means and its 95 % interval
    over the bootstrap resamples of the members (the resamples of `level_rows`, shared by both methods)."""
    from reco_assets.evaluation.item_to_item import per_target
    from reco_assets.evaluation.report import member_weights

    hits = hits.reset_index(drop=True)
    values = per_target(hits, methods)
    weights = member_weights(hits["member_id"], settings.evaluation.bootstrap_draws, settings.evaluation.seed)
    chosen = weights[values.index].to_numpy(dtype=np.float64)
    means = pd.DataFrame(chosen @ values.to_numpy() / chosen.sum(axis=1, keepdims=True), columns=values.columns)
    out = []
    for numerator, denominator in pairs:
        for metric in ("hit_rate", "mrr"):
            top, bottom = values[(numerator, metric)].mean(), values[(denominator, metric)].mean()
            with np.errstate(divide="ignore", invalid="ignore"):
                drawn = (means[(numerator, metric)] / means[(denominator, metric)]).to_numpy()
            low, high = np.nanpercentile(drawn, [2.5, 97.5]) if np.isfinite(drawn).any() else (np.nan, np.nan)
            out.append((numerator, denominator, metric, top / bottom if bottom else np.nan, low, high))
    return out


def show(level: str, hits: pd.DataFrame, methods: tuple[str, ...], settings) -> None:
    from reco_assets.evaluation.item_to_item import level_rows

    if hits.empty:
        print(f"\n{level}: no target")
        return
    rows = level_rows(level, hits, methods, settings)
    per_origin = hits.groupby("origin").size().tolist()
    print(f"\n{level}: {len(hits):,} targets of {rows['members'].iloc[0]:,} member-origins (per origin {per_origin})")
    for row in rows.itertuples():
        print(f"  {row.method:<24} {row.metric}@{row.k:<3} {row.value:.4f}  ({row.ci_low:.4f} - {row.ci_high:.4f})")
    for numerator, denominator, metric, ratio, low, high in paired_ratios(hits, methods, PAIRS[level], settings):
        print(f"  {numerator} / {denominator:<22} {metric}@10 {ratio:.3f}  ({low:.3f} - {high:.3f})")


def figures(session, lakehouse, origins: list[date], settings) -> None:
    from reco_assets.evaluation.item_to_item import BASKET_METHODS, SIMILAR_METHODS, hit_tables

    started = time.perf_counter()
    tables = hit_tables(session, lakehouse, origins, settings)
    seconds = time.perf_counter() - started
    print(f"origins {', '.join(map(str, origins))}: scored in {seconds:.1f} s ({seconds / len(origins):.1f} s each)")
    print(
        f"neighbours: window {settings.neighbors.window_days} days, discount {settings.neighbors.popularity_discount}; "
        f"rules: window {settings.rules.window_days} days, at least {settings.rules.min_baskets} baskets"
    )
    show("similar_items", tables["similar_items"], SIMILAR_METHODS, settings)
    show("bought_together", tables["bought_together"], BASKET_METHODS, settings)


def tune(session, lakehouse, origins: list[date], settings, discounts: list[float], windows: list[int]) -> None:
    """Similar items under each popularity discount x window of the neighbours, on `origins` (the baselines do
    not depend on them: they are the same in every line)."""
    from reco_assets.evaluation.item_to_item import SIMILAR_METHODS, per_target, similar_item_hits
    from reco_assets.pipeline.stages import Reader

    reach = max(*windows, settings.evaluation.popularity_window_days)
    last = max(origins) + timedelta(days=1)
    reader = Reader(session, lakehouse, keep=True, strict=False)
    reader.events(last, (last - min(origins)).days + reach)
    print(f"origins {', '.join(map(str, origins))}: similar items, HR@10 / MRR@10 and the model's ratios")
    try:
        for window in windows:
            for discount in discounts:
                chosen = settings.changed({"neighbors.popularity_discount": discount, "neighbors.window_days": window})
                started = time.perf_counter()
                hits = pd.concat(
                    [similar_item_hits(reader, o, chosen).assign(origin=n) for n, o in enumerate(origins)],
                    ignore_index=True,
                )
                means = per_target(hits, SIMILAR_METHODS).mean()
                ratios = paired_ratios(hits, SIMILAR_METHODS, PAIRS["similar_items"], chosen)
                text = ", ".join(f"{n}/{d} {m} {r:.3f} ({lo:.3f}-{hi:.3f})" for n, d, m, r, lo, hi in ratios)
                print(
                    f"  window {window:>3} discount {discount:<5} model {means[('model', 'hit_rate')]:.4f} / "
                    f"{means[('model', 'mrr')]:.4f}, co_occurrence {means[('co_occurrence', 'hit_rate')]:.4f}, "
                    f"popularity {means[('popularity', 'hit_rate')]:.4f}; {text} "
                    f"[{len(hits):,} targets, {time.perf_counter() - started:.0f} s]"
                )
    finally:
        reader.release()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    ready = commands.add_parser("prepare", help="land and ingest a simulated profile or an imported log")
    ready.add_argument("--home", type=Path, required=True)
    ready.add_argument("--profile", choices=["tiny", "demo", "medium", "wide"])
    ready.add_argument("--online-retail", type=Path, help="a UCI Online Retail CSV file to import instead")
    for name in ("figures", "tune"):
        command = commands.add_parser(name)
        command.add_argument("--home", type=Path, required=True)
        command.add_argument("--origins", nargs="+", required=True, help="YYYY-MM-DD or FIRST..LAST (every day)")
        command.add_argument("--set", action="append", default=[], metavar="GROUP.NAME=VALUE")
    tuning = commands.choices["tune"]
    tuning.add_argument("--discounts", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0])
    tuning.add_argument("--windows", type=int, nargs="+", default=[30])
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(args.home, args.profile, args.online_retail)
        return

    import json

    from reco_assets.resources import local_resources
    from reco_assets.settings import load_settings

    pairs = dict(item.split("=", 1) for item in args.set)
    settings = load_settings(args.home).changed({k: json.loads(v) for k, v in pairs.items()})
    resources = local_resources(args.home, settings)
    session, lakehouse = resources["spark"].session(), resources["lakehouse"]
    origins = origin_days(args.origins)
    if args.command == "figures":
        figures(session, lakehouse, origins, settings)
    else:
        tune(session, lakehouse, origins, settings, args.discounts, args.windows)


if __name__ == "__main__":
    main()
