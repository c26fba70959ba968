"""The day as the audience grows, and the compute path against its peers on the same data.

    .venv/bin/python benchmarks/scale.py day --profiles demo medium scale --root /tmp/reco-scale
    .venv/bin/python benchmarks/scale.py engines --home /tmp/reco-scale/demo
    .venv/bin/python benchmarks/scale.py ranking --home /tmp/reco-scale/demo
    .venv/bin/python benchmarks/scale.py curve

`day` runs `python -m reco_assets demo` per profile (see `day.py`): seconds per stage, rows per table, peak
memory of the process tree, JVMs started, and the cost curve (seconds per thousand members).

`engines` backtests the home's latest day with each factorization engine (`--engines`, default all three) on
the same ratings, in one process: the seconds of fitting the cohorts' models (of the home's `factor_model.scope`) and
the model's NDCG@10 over subclass-brands.

`ranking` takes the day's stored factors and times, on the same members and candidate groups:
the fused pass (top K, own rating, boost, diversification; Spark tasks, output to a no-op sink),
MLlib's `recommendForAllUsers` on ALS models holding the very same factors, and the floor: the bare
blocked matrix product and sort of the same shapes in numpy.

`curve` times the stages whose work is members x groups on synthetic ratings (15 per member, two thirds
from a home cluster of groups, by Zipf popularity), in one process without Spark: the factor fit (the default sampled
normaliser, and the full softmax where it takes under `--full-limit` cells per step), the ranking pass as
published (K 5,000, `stored_ranks` ranks emitted) and as a backtest scores it (first 50 ranks of the model,
the no-boost list and a blend) — first as members grow at fixed groups, then as groups grow at fixed members
(the ratings fixed too).
"""

import argparse
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
from day import measure

CELLS = 4_000_000  # scores per block of the floor, as in the fused pass


def day_curve(profiles: list[str], root: Path, overrides: list[str] | None) -> None:
    from reco_assets.simulator import PROFILES

    measured = []
    for profile in profiles:
        print(f"== {profile}: running", flush=True)
        run = measure(profile, str(root / profile), overrides, echo=True)
        stages = run.stages
        day = sum(seconds for stage, seconds in stages.items() if stage != "ingest history")
        measured.append((profile, PROFILES[profile].members, day, run))
        print(f"\n== {profile}: {PROFILES[profile].members:,} members, exit code {run.exit_code}")
        for stage, seconds in stages.items():
            print(f"  {stage:<28} {seconds:8.1f} s")
        print(f"  {'the day (after history)':<28} {day:8.1f} s")
        print(f"  whole command (simulation included) {run.wall:.1f} s; peak {run.peak_gib:.2f} GiB")
        print(f"  Spark JVMs {run.spark_jvms}")
        print(f"  Java processes seen: {sorted(run.jvms.values())}")
        for table, rows in run.rows.items():
            print(f"    {table:<26} {rows:>14,} rows")
    print("\ncost curve (the day after history):")
    for profile, members, day, _ in measured:
        print(f"  {profile:<8} {members:>10,} members  {day:8.1f} s  {1000 * day / members:7.3f} s per 1,000 members")


def _latest_day(lakehouse) -> date:
    days = lakehouse.read_arrow("member_cohorts", columns=["as_of_date"]).column("as_of_date").unique()
    return max(days.to_pylist())


def engines(home: Path, names: list[str]) -> None:
    from reco_assets.evaluation.backtest import MODEL, run_backtest
    from reco_assets.evaluation.report import evaluation_table
    from reco_assets.resources import local_resources

    resources = local_resources(home)
    session, lakehouse = resources["spark"].session(), resources["lakehouse"]
    day = _latest_day(lakehouse)
    results = {}
    for engine in names:
        settings = resources["settings"].changed({"factor_model.engine": engine})
        backtest = run_backtest(session, lakehouse, day, settings, ablations=False, styles=False)
        table, _ = evaluation_table([backtest], day, [10], settings.model_key())
        chosen = (table["segment"] == "all") & (table["method"] == MODEL.name) & (table["metric"] == "ndcg")
        ndcg = table[chosen & (table["k"] == 10)]["value"].sum()
        results[engine] = (backtest.seconds["models"], ndcg, backtest.fits)
        print(
            f"{engine:<9} models of the backtest ({settings.factor_model.scope} scope) "
            f"{backtest.seconds['models']:7.1f} s   "
            f"NDCG@10 {ndcg:.4f}   members {backtest.sizes['training_members']:,}"
        )
    if "implicit" in results:
        fast, fast_ndcg, _ = results["implicit"]
        for engine, (seconds, ndcg, _) in results.items():
            if engine != "implicit":
                ratio = seconds / fast
                print(f"{engine} takes {ratio:.1f}x the time of implicit, NDCG@10 {ndcg:.4f} vs {fast_ndcg:.4f}")


def _floor(models: dict, members: dict, k: int) -> float:
    """Matrix product + top-K sort per cohort, blocked as the fused pass is, in numpy."""
    started = time.perf_counter()
    for cohort, items in models.items():
        users = members.get(cohort)
        if users is None or not len(items.ids):
            continue
        block = max(1, CELLS // len(items.ids))
        keep = min(k, len(items.ids))
        for start in range(0, len(users), block):
            scores = users[start : start + block] @ items.factors.T
            top = np.argpartition(-scores, keep - 1, axis=1)[:, :keep] if keep < len(items.ids) else None
            if top is not None:
                scores = np.take_along_axis(scores, top, axis=1)
            np.argsort(-scores, axis=1, kind="stable")
    return time.perf_counter() - started


def _recommend_for_all_users(session, factors, models: dict, k: int, folder: Path) -> float:
    """MLlib's top K on ALS models that hold the day's factors: one tiny model is saved for its metadata,
    then its factor folders are replaced with each cohort's member and candidate item factors."""
    from pyspark.ml.recommendation import ALS, ALSModel
    from pyspark.sql import functions as F

    rank = next(iter(models.values())).factors.shape[1]
    seed = session.createDataFrame([(0, 0, 1.0), (1, 1, 1.0)], "user int, item int, rating float")
    template = ALS(rank=rank, maxIter=1, implicitPrefs=True, userCol="user", itemCol="item").fit(seed)
    elapsed = 0.0
    for cohort, items in models.items():
        path = str(folder / cohort)
        template.write().overwrite().save(path)
        side = factors.where(F.col("cohort") == cohort)
        side.where(F.col("side") == "member").select(
            F.col("id").cast("int"), F.col("factors").alias("features")
        ).write.mode("overwrite").parquet(f"{path}/userFactors")
        session.createDataFrame(
            [(int(i), v.tolist()) for i, v in zip(items.ids, items.factors)], "id int, features array<float>"
        ).write.mode("overwrite").parquet(f"{path}/itemFactors")
        model = ALSModel.load(path)
        started = time.perf_counter()
        model.recommendForAllUsers(k).select("user", F.explode("recommendations")).write.format("noop").mode(
            "overwrite"
        ).save()
        elapsed += time.perf_counter() - started
    return elapsed


def ranking(home: Path) -> None:
    from functools import partial

    from pyspark.sql import functions as F

    from reco_assets.pipeline import stages
    from reco_assets.pipeline.affinities import rank_batches
    from reco_assets.resources import local_resources

    resources = local_resources(home)
    settings, lakehouse = resources["settings"], resources["lakehouse"]
    reader = stages.Reader(resources["spark"].session(), lakehouse)
    day = _latest_day(lakehouse)
    factors = reader.day("als_factors", day).cache()
    rated, members = reader.day("implicit_ratings", day), reader.day("member_cohorts", day)
    ranking = stages.ranking_pass(reader, day, factors, rated, members, settings)
    models, candidates = ranking.models, ranking.candidates
    inputs = ranking.inputs(factors).cache()
    members_count = inputs.count()
    k = settings.ranking.top_k
    print(f"{day}: {members_count:,} members, {len(models)} cohort models, {len(candidates):,} candidate groups, K {k}")

    fused = partial(rank_batches, models=models, hierarchy=ranking.hierarchy, params=settings.rank_params())

    def rows_only(batches):  # the three tables are computed in full; only their row counts leave the tasks
        for _, table in fused(batches):
            yield pa.RecordBatch.from_pydict({"rows": [table.num_rows]})

    started = time.perf_counter()
    produced = inputs.mapInArrow(rows_only, "rows long").agg(F.sum("rows")).first()[0]
    fused_seconds = time.perf_counter() - started

    local = factors.where(F.col("side") == "member").select("cohort", "factors").toArrow()
    members = {}
    for cohort in models:
        mask = np.array(local.column("cohort").to_pylist()) == cohort
        vectors = local.column("factors").filter(mask).combine_chunks()
        members[cohort] = vectors.flatten().to_numpy().astype(np.float32).reshape(len(vectors), -1)
    floor_seconds = _floor(models, members, k)
    with tempfile.TemporaryDirectory() as folder:
        mllib_seconds = _recommend_for_all_users(reader.session, factors, models, min(k, len(candidates)), Path(folder))
    print(f"  fused pass (3 tables, Spark)        {fused_seconds:8.1f} s  ({produced:,} rows)")
    print(f"  recommendForAllUsers (top K only)   {mllib_seconds:8.1f} s")
    print(f"  floor: numpy product + sort         {floor_seconds:8.1f} s")
    print(f"  fused / floor {fused_seconds / floor_seconds:.2f}x")
    print(f"  recommendForAllUsers / fused {mllib_seconds / fused_seconds:.2f}x")


def _synthetic_ratings(rng, members: int, groups: int, per_member: int = 15):
    """(member, group, rating) cells: each member has a home cluster of groups (one of 50) and draws two
    thirds of their groups from it, the rest from everyone's, both by Zipf popularity: a taste to learn, drawn
    in time linear in the ratings."""
    clusters = 50
    width = max(1, groups // clusters)
    rows = np.repeat(np.arange(members), per_member)
    own = rng.random(len(rows)) < 2 / 3
    home = rng.integers(clusters, size=members)[rows]
    cols = np.where(
        own,
        np.minimum(home * width + (rng.zipf(1.3, len(rows)) - 1) % width, groups - 1),
        (rng.zipf(1.1, len(rows)) - 1) % groups,
    )
    return rows, cols, rng.choice([3.0, 10.0, 40.0], size=len(rows), p=[0.6, 0.25, 0.15])


def _time_stages(members: int, groups: int, full_limit: int) -> dict[str, float]:
    from dataclasses import replace

    from reco_assets.pipeline.affinities import CohortItems, Hierarchy, rank_block
    from reco_assets.pipeline.methods import MODEL, Method
    from reco_assets.pipeline.softmax import fit_softmax
    from reco_assets.settings import RecoSettings

    settings = RecoSettings()
    rng = np.random.default_rng(7)
    rows, cols, ratings = _synthetic_ratings(rng, members, groups)
    seconds = {"ratings": float(len(rows))}
    started = time.perf_counter()
    member_ids, w, item_ids, f = fit_softmax(rows, cols, ratings, settings.factor_model)
    seconds["fit (sampled)"] = time.perf_counter() - started
    if members * groups <= full_limit:
        started = time.perf_counter()
        fit_softmax(rows, cols, ratings, settings.factor_model.model_copy(update={"sampled_groups": 0}))
        seconds["fit (full softmax)"] = time.perf_counter() - started
    classes = 40
    items = CohortItems(item_ids, f, rng.integers(0, 200, len(item_ids)), rng.integers(0, classes, len(item_ids)))
    hierarchy = Hierarchy(np.array([str(i) for i in range(200)]), np.array([str(i) for i in range(classes)]))
    published = settings.rank_params()
    scored = replace(published, keep=max(settings.evaluation.ks))
    methods = (MODEL, Method("no_boost"), Method.blend({"prediction": 1.0, "rating": 0.3}))
    order = np.argsort(rows, kind="stable")
    starts = np.searchsorted(rows[order], np.arange(len(member_ids) + 1))
    for name, params, chosen in (("ranking (published)", published, (MODEL,)), ("ranking (backtest)", scored, methods)):
        started = time.perf_counter()
        block = max(1, 4_000_000 // len(item_ids))
        for first in range(0, len(member_ids), block):
            last = min(first + block, len(member_ids))
            cells = order[starts[first] : starts[last]]
            rated = (rows[cells] - first, cols[cells], ratings[cells])
            none = (np.empty(0, np.int64), np.empty(0, np.int64))
            rank_block(member_ids[first:last], w[first:last], rated, none, items, hierarchy, params, chosen)
        seconds[name] = time.perf_counter() - started
    return seconds


def curve(members: list[int], groups: list[int], fixed_members: int, fixed_groups: int, full_limit: int) -> None:
    for title, shapes in (
        (f"members grow, {fixed_groups:,} groups", [(n, fixed_groups) for n in members]),
        (f"groups grow, {fixed_members:,} members", [(fixed_members, m) for m in groups]),
    ):
        print(f"\n== {title}")
        measured = [(n, m, _time_stages(n, m, full_limit)) for n, m in shapes]
        stages = [s for s in measured[-1][2] if s != "ratings"] + [
            s for s in measured[0][2] if s not in measured[-1][2]
        ]
        print(f"  {'members':>9} {'groups':>7} {'ratings':>10} " + " ".join(f"{s:>20}" for s in stages))
        for n, m, seconds in measured:
            cells = " ".join(f"{seconds[s]:19.1f}s" if s in seconds else f"{'-':>20}" for s in stages)
            print(f"  {n:>9,} {m:>7,} {int(seconds['ratings']):>10,} {cells}", flush=True)
        base = measured[0][2]
        for n, m, seconds in measured[1:]:
            ratios = ", ".join(f"{s} {seconds[s] / base[s]:.2f}x" for s in stages if s in seconds and s in base)
            print(f"  {n:,} x {m:,} against the first: {ratios}")


def main() -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    day = commands.add_parser("day")
    day.add_argument("--profiles", nargs="+", default=["demo", "medium", "scale"])
    day.add_argument("--root", type=Path, required=True)
    day.add_argument("--set", action="append", metavar="NAME=VALUE", help="a setting for every profile's day")
    shapes = commands.add_parser("curve")
    shapes.add_argument("--members", nargs="+", type=int, default=[25_000, 50_000, 100_000, 250_000])
    shapes.add_argument("--groups", nargs="+", type=int, default=[1_000, 3_000, 10_000, 30_000])
    shapes.add_argument("--fixed-members", type=int, default=25_000)
    shapes.add_argument("--fixed-groups", type=int, default=10_000)
    shapes.add_argument("--full-limit", type=int, default=300_000_000, help="members x groups of the full fit")
    parsers = {name: commands.add_parser(name) for name in ("engines", "ranking")}
    for each in parsers.values():
        each.add_argument("--home", type=Path, required=True)
    parsers["engines"].add_argument("--engines", nargs="+", default=["implicit", "mllib", "softmax"])
    args = parser.parse_args()
    if args.command == "day":
        day_curve(args.profiles, args.root, args.set)
    elif args.command == "curve":
        curve(args.members, args.groups, args.fixed_members, args.fixed_groups, args.full_limit)
    elif args.command == "engines":
        engines(args.home, args.engines)
    else:
        ranking(args.home)


if __name__ == "__main__":
    main()
