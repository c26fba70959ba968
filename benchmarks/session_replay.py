"""The session re-ranking's replay on a materialized home, with every weight of the grid shown.

    .venv/bin/python benchmarks/session_replay.py --home /tmp/reco-demo-final/demo --date 2026-10-31
    .venv/bin/python benchmarks/session_replay.py --home /tmp/reco-demo-final/demo --date 2026-10-31 --cache /tmp/r.pkl

Runs the day's rolling backtest (as `offline_evaluation` does), reads each origin's replay inputs
(`session_replay.replay_inputs`: daily lists, test-window sessions, similar groups), then prints MRR@20 of the
re-ranked lists for each weight of `WEIGHT_GRID` on the fitting origins and on the reported ones (the latter
for reading only: the weights are chosen on the former), and the rows the day's table gets, with the
replay's seconds. `--cache` keeps the inputs in a pickle file, so that a second run skips the backtest.
"""

import argparse
import itertools
import pickle
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import pandas as pd


def inputs(home: Path, day: date, settings) -> tuple[dict, date]:
    from reco_assets.evaluation.item_to_item import evaluation_reader, origin_similarity
    from reco_assets.evaluation.report import settings_table
    from reco_assets.evaluation.rolling import rolling_backtest
    from reco_assets.evaluation.session_replay import session_replays
    from reco_assets.resources import local_resources

    resources = local_resources(home, settings)
    session, lakehouse = resources["spark"].session(), resources["lakehouse"]
    started = time.perf_counter()
    rolling = rolling_backtest(session, lakehouse, day, settings)
    table, champions = settings_table(rolling.backtests, day, settings)
    print(f"rolling backtest: {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    similar = {b.split.train_end: origin_similarity(session, b, settings) for b in rolling.backtests}
    reader = evaluation_reader(session, lakehouse, min(similar), max(similar), settings)
    try:
        replays = session_replays(reader, rolling, champions, similar, settings)
    finally:
        reader.release()
    print(f"replay inputs: {time.perf_counter() - started:.1f} s")
    return replays, table.iloc[0]["train_end_date"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--date", type=date.fromisoformat, required=True)
    parser.add_argument("--cache", type=Path, help="pickle of the replay inputs: read when present, else written")
    args = parser.parse_args()

    from reco_assets.evaluation.item_to_item import per_target
    from reco_assets.evaluation.session_replay import RERANKED, WEIGHT_GRID, K, replay_ranks, session_rows
    from reco_assets.settings import load_settings

    settings = load_settings(args.home)
    if args.cache and args.cache.exists():
        replays, first = pickle.loads(args.cache.read_bytes())
    else:
        replays, first = inputs(args.home, args.date, settings)
        if args.cache:
            args.cache.write_bytes(pickle.dumps((replays, first)))
    groups = {"fitting": [r for d, r in replays.items() if d < first and r], "reported": []}
    groups["reported"] = [r for d, r in replays.items() if d >= first and r]
    print(f"origins {', '.join(map(str, replays))}; reported from {first}")
    print(f"{'subclass':>8} {'neighbor':>8}  MRR@{K} fitting  reported")
    for values in itertools.product(*WEIGHT_GRID.values()):
        weights = replace(settings.sessions.weights(), **dict(zip(WEIGHT_GRID, values)))
        means = []
        for chosen in groups.values():
            ranks = pd.concat([replay_ranks(r, weights) for r in chosen], ignore_index=True)
            means.append(per_target(ranks, (RERANKED,), K)[(RERANKED, "mrr")].mean())
        print(f"{values[0]:>8} {values[1]:>8}  {means[0]:.4f}          {means[1]:.4f}")
    started = time.perf_counter()
    rows, fitted = session_rows(replays, first, settings)
    print(f"\nfitted: {fitted}  ({time.perf_counter() - started:.1f} s to fit and report)")
    for row in rows.itertuples():
        print(
            f"  {row.segment:<20} {row.method:<9} {row.metric}@{row.k} {row.value:.4f} ({row.ci_low:.4f} - "
            f"{row.ci_high:.4f})  {row.targets:,} steps of {row.members:,} member-origins"
        )


if __name__ == "__main__":
    main()
