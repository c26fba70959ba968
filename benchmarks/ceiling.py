"""How much is there to learn? The simulator's true tastes as a recommender, against the model and baselines.

The demo world draws every browse from each member's latent taste (plus noise and short shopping missions).
Ranking the candidate groups by that true taste is the best any model of long-term preference can do on the
backtest; it bounds what ALS can reach and shows whether a target such as "1.5x the best baseline" is
attainable on the simulated data at all. Scored on every origin the day's rolling evaluation reports, pooled
over their members as `offline_evaluation` is. Reads a home made by `python -m reco_assets demo`.

The same ranking under the published lists' per-class limit (at most `max_groups_per_class` groups of a
class among the top 10) is the ceiling of lists diversified as the reference asks.

Beside it, an estimate of what can be learned from the members' own events: every group's true taste
factors, division and price tier given, and only each member's taste (latent factors, division preferences,
tier preferences) estimated from their group views through T, by the maximum a posteriori of a softmax
choice over all groups (a standard normal prior). It approximates the simulator's law: views are drawn among
the groups live that day, and partly inside a shopping mission's subclass, which it ignores, as it ignores
the member's history (repeat, recency) that the blend adds. So it is not a strict bound, but a model that
must learn the groups' side too from the same events should not expect to pass it by much.

    .venv/bin/python benchmarks/ceiling.py --home .reco_home [--profile demo]
"""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from reco_assets.evaluation.backtest import holdout_split
from reco_assets.evaluation.metrics import member_accuracy
from reco_assets.evaluation.rolling import origins
from reco_assets.resources.lakehouse import Lakehouse
from reco_assets.settings import RecoSettings, load_settings
from reco_assets.simulator import PROFILES
from reco_assets.simulator.world import TASTE_DIM, build_world

DIVISION_TIER_PRIOR = 0.25
"""Prior precision of a member's division and tier preferences (variance 4: the true ones span log 0.03)."""
NEWTON_STEPS = 40


def group_features(world) -> np.ndarray:
    """Per group: its scaled true taste factors, then its division and its brand's tier as one-hot columns."""
    scale = 1.6 / np.sqrt(TASTE_DIM)  # as `World.taste` scales the latent product
    division = np.eye(world.division_log_pref.shape[1])[world.sb_division]
    tier = np.eye(5)[world.brand_tier[world.sb_brand]]
    return np.hstack([scale * world.sb_latent.astype(np.float64), division, tier])


def group_positions(world) -> pd.Series:
    """Subclass-brand id -> its index in the world's arrays."""
    return pd.Series(np.arange(len(world.sb_subclass)), index=world.sb_id(np.arange(len(world.sb_subclass))))


def estimated_tastes(lake: Lakehouse, world, members: np.ndarray, train_end) -> np.ndarray:
    """members x groups: each member's taste as estimated from their training views with the groups' side known.

    The MAP of w in p(view = g) = softmax(F w)_g with w ~ N(0, diag(1 / prior)), by damped Newton steps
    for all members at once (one small linear solve each); a per-member optimiser loop would take minutes."""
    features = group_features(world)
    group_index = group_positions(world)
    views = lake.read_arrow(
        "raw_events", f"event_date <= '{train_end}' AND event_type = 'product_view'", ["member_id", "subclass_brand_id"]
    ).to_pandas()
    views = views[views.member_id.isin(members) & views.subclass_brand_id.isin(group_index.index)]
    row = pd.Series(np.arange(len(members)), index=members)[views.member_id].to_numpy()
    counts = np.zeros((len(members), len(features)))
    np.add.at(counts, (row, group_index[views.subclass_brand_id].to_numpy()), 1.0)
    n, observed = counts.sum(axis=1), counts @ features
    prior = np.r_[np.ones(TASTE_DIM), np.full(features.shape[1] - TASTE_DIM, DIVISION_TIER_PRIOR)]
    w = np.zeros((len(members), features.shape[1]))
    for _ in range(NEWTON_STEPS):
        logits = w @ features.T
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        mean = p @ features
        gradient = observed - n[:, None] * mean - w * prior
        covariance = np.einsum("mg,gi,gj->mij", p, features, features) - mean[:, :, None] * mean[:, None, :]
        hessian = n[:, None, None] * covariance + np.diag(prior)[None]
        step = np.linalg.solve(hessian, gradient[:, :, None])[:, :, 0]
        w += step / np.maximum(1.0, np.linalg.norm(step, axis=1, keepdims=True))  # at most 1 per step
    return w @ features.T


def oracle_ndcg(lake: Lakehouse, world, split, settings: RecoSettings) -> dict[str, pd.Series]:
    """NDCG@10 per scored member of one origin, by ranking its candidates three ways: `ceiling`, by the true
    tastes; `class limit`, the same under the published lists' per-class limit (`max_groups_per_class` per
    class path); `learnable`, by the tastes estimated from the members' views with the groups' side known."""
    # the backtest's candidates and scored members' relevant groups, read back from what it scored on
    catalog = lake.read_arrow("catalog", f"as_of_date = '{split.train_end}'").to_pandas()
    start = pd.Timestamp(split.train_end, tz="UTC")
    horizon = start + pd.Timedelta(days=1, hours=settings.ranking.live_horizon_hours)
    live = catalog[(catalog.live_from < horizon) & (catalog.live_until > start)]
    candidates = np.sort(live.subclass_brand_id.unique())
    kinds = ", ".join(f"'{k}'" for k in settings.evaluation.relevant_events)
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
    columns = group_positions(world)[candidates].to_numpy()
    member_index = pd.Series(np.arange(len(world.member_ids)), index=world.member_ids)
    true_taste = world.taste(member_index[members].to_numpy(), columns)
    path = live.drop_duplicates("subclass_brand_id").set_index("subclass_brand_id")
    class_path = (path.division + "/" + path.department + "/" + path["class"])[candidates].to_numpy()
    k = max(settings.evaluation.ks)

    def scored(taste: np.ndarray, limit: int | None = None) -> pd.Series:
        depth = min(len(candidates), k if limit is None else k * 4)  # enough for k groups after the class limit
        best = np.argsort(-taste, axis=1, kind="stable")[:, :depth]
        oracle = pd.DataFrame(
            {
                "member_id": np.repeat(members, depth),
                "item_id": candidates[best].ravel(),
                "klass": class_path[best].ravel(),
                "rank": np.tile(np.arange(1, depth + 1), len(members)),
            }
        )
        if limit is not None:
            oracle = oracle[oracle.groupby(["member_id", "klass"]).cumcount() < limit]
            oracle = oracle.assign(rank=oracle.groupby("member_id").cumcount() + 1).query(f"rank <= {k}")
        return member_accuracy(oracle, relevant, settings.evaluation.ks)[("ndcg", 10)]

    return {
        "ceiling": scored(true_taste),
        "class limit": scored(true_taste, settings.ranking.max_groups_per_class),
        "learnable": scored(estimated_tastes(lake, world, members, split.train_end)[:, columns]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", default=".reco_home")
    parser.add_argument("--profile", choices=list(PROFILES), default="demo")
    args = parser.parse_args()
    profile, settings = PROFILES[args.profile], load_settings(Path(args.home))
    world = build_world(np.random.default_rng(profile.seed), profile.members, profile.brands)  # as `simulate` does
    lake = Lakehouse(root=str(Path(args.home) / "lakehouse"))
    evaluation = lake.read_arrow("offline_evaluation", f"as_of_date = '{profile.last_day}'").to_pandas()
    first_trained = evaluation["train_end_date"].min()
    days = [
        o
        for o in origins(profile.last_day, settings)
        if holdout_split(o, settings.evaluation.holdout_days).train_end >= first_trained
    ]
    splits = [holdout_split(day, settings.evaluation.holdout_days) for day in days]
    per_origin = [oracle_ndcg(lake, world, split, settings) for split in splits]
    pooled = {name: pd.concat(o[name] for o in per_origin).mean() for name in per_origin[0]}
    ceiling = pooled["ceiling"]
    scored = sum(len(o["ceiling"]) for o in per_origin)

    overall = evaluation.query("level == 'subclass_brand' and segment == 'all' and metric == 'ndcg' and k == 10")
    ndcg = overall.set_index("method")["value"].sort_values(ascending=False)
    best_baseline = ndcg[["popularity", "cohort_popularity", "repeat", "random"]].max()
    print(f"rolling backtest: origins {', '.join(str(d) for d in days)}")
    print(f"scored members here {scored:,} over the origins (the evaluation: {overall['members'].iloc[0]:,})\n")
    print(f"{'method':<22} {'NDCG@10':>8} {'x best baseline':>16}")
    print(f"{'true taste (ceiling)':<22} {ceiling:8.4f} {ceiling / best_baseline:16.2f}")
    for method, value in [
        ("ceiling, class limit", pooled["class limit"]),
        ("taste learnable", pooled["learnable"]),
        *ndcg.items(),
    ]:
        print(f"{method:<22} {value:8.4f} {value / best_baseline:16.2f}   {value / ceiling:.2f} of the ceiling")


if __name__ == "__main__":
    main()
