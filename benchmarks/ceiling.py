"""How much is there to learn? The simulator's true tastes as a recommender, against the model and baselines.

The demo world draws every browse from each member's latent taste (plus noise and short shopping missions).
Ranking the candidate groups by that true taste is the best any model of long-term preference can do on the
backtest; it bounds what ALS can reach and shows whether a target such as "1.5x the best baseline" is
attainable on the simulated data at all. Reads a home made by `python -m reco_assets demo`.

    .venv/bin/python benchmarks/ceiling.py --home .reco_home [--profile demo]
"""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from reco_assets.evaluation.backtest import holdout_split
from reco_assets.evaluation.metrics import accuracy_metrics
from reco_assets.resources.lakehouse import Lakehouse
from reco_assets.settings import RecoSettings
from reco_assets.simulator import PROFILES
from reco_assets.simulator.world import build_world


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", default=".reco_home")
    parser.add_argument("--profile", choices=list(PROFILES), default="demo")
    args = parser.parse_args()
    profile, settings = PROFILES[args.profile], RecoSettings()
    world = build_world(np.random.default_rng(profile.seed), profile.members, profile.brands)  # as `simulate` does
    lake = Lakehouse(root=str(Path(args.home) / "lakehouse"))
    evaluation = lake.read_arrow("offline_evaluation", f"as_of_date = '{profile.last_day}'").to_pandas()
    split = holdout_split(profile.last_day, settings.holdout_days)

    # the backtest's candidates and scored members' relevant groups, read back from what it scored on
    catalog = lake.read_arrow("catalog", f"as_of_date = '{split.train_end}'").to_pandas()
    start = pd.Timestamp(split.train_end, tz="UTC")
    horizon = start + pd.Timedelta(days=1, hours=settings.live_horizon_hours)
    live = catalog[(catalog.live_from < horizon) & (catalog.live_until > start)]
    candidates = np.sort(live.subclass_brand_id.unique())
    kinds = ", ".join(f"'{k}'" for k in settings.relevant_events)
    test = lake.read_arrow(
        "raw_events",
        f"event_date >= '{split.test_start}' AND event_date <= '{split.test_end}' AND event_type IN ({kinds})",
        ["member_id", "subclass_brand_id"],
    ).to_pandas()
    trained = set(
        lake.read_arrow("raw_events", f"event_date <= '{split.train_end}'", ["member_id"]).column(0).to_pylist()
    )
    relevant = test[test.subclass_brand_id.isin(candidates) & test.member_id.isin(trained)].drop_duplicates()
    relevant = relevant.rename(columns={"subclass_brand_id": "item_id"})
    members = np.sort(relevant.member_id.unique())

    group_index = pd.Series(np.arange(len(world.sb_subclass)), index=world.sb_id(np.arange(len(world.sb_subclass))))
    member_index = pd.Series(np.arange(len(world.member_ids)), index=world.member_ids)
    taste = world.taste(member_index[members].to_numpy(), group_index[candidates].to_numpy())
    k = max(settings.evaluation_ks)
    best = np.argsort(-taste, axis=1, kind="stable")[:, :k]
    oracle = pd.DataFrame(
        {
            "member_id": np.repeat(members, k),
            "item_id": candidates[best].ravel(),
            "rank": np.tile(np.arange(1, k + 1), len(members)),
        }
    )
    ceiling = accuracy_metrics(oracle, relevant, settings.evaluation_ks)

    overall = evaluation.query("level == 'subclass_brand' and segment == 'all' and metric == 'ndcg' and k == 10")
    ndcg = overall.set_index("method")["value"].sort_values(ascending=False)
    best_baseline = ndcg[["popularity", "cohort_popularity", "repeat", "random"]].max()
    print(f"backtest: trained through {split.train_end}, tested {split.test_start} .. {split.test_end}")
    print(f"scored members here {len(members):,} (the evaluation: {overall['members'].iloc[0]:,})\n")
    print(f"{'method':<22} {'NDCG@10':>8} {'x best baseline':>16}")
    print(f"{'true taste (ceiling)':<22} {ceiling[('ndcg', 10)]:8.4f} {ceiling[('ndcg', 10)] / best_baseline:16.2f}")
    for method, value in ndcg.items():
        print(f"{method:<22} {value:8.4f} {value / best_baseline:16.2f}")


if __name__ == "__main__":
    main()
