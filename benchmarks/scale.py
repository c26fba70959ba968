"""The day as the audience grows, and the compute path against its peers on the same data.

    .venv/bin/python benchmarks/scale.py day --profiles demo medium scale --root /tmp/reco-scale
    .venv/bin/python benchmarks/scale.py engines --home /tmp/reco-scale/demo
    .venv/bin/python benchmarks/scale.py ranking --home /tmp/reco-scale/demo

`day` runs `python -m reco_assets demo` per profile (see `day.py`): seconds per stage, rows per table, peak
memory of the process tree, JVMs started, and the cost curve (seconds per thousand members).

`engines` backtests the home's latest day with each factorization engine (`--engines`, default all three) on
the same ratings, in one process: the seconds of fitting the cohorts' models (of the home's `factor_model.scope`) and
the model's NDCG@10 over subclass-brands.

`ranking` takes the day's stored factors and times, on the same members and candidate groups:
the fused pass (top K, own rating, boost, diversification; Spark tasks, output to a no-op sink),
MLlib's `recommendForAllUsers` on ALS models holding the very same factors, and the floor: the bare
blocked matrix product and sort of the same shapes in numpy.
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


def main() -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    day = commands.add_parser("day")
    day.add_argument("--profiles", nargs="+", default=["demo", "medium", "scale"])
    day.add_argument("--root", type=Path, required=True)
    day.add_argument("--set", action="append", metavar="NAME=VALUE", help="a setting for every profile's day")
    parsers = {name: commands.add_parser(name) for name in ("engines", "ranking")}
    for each in parsers.values():
        each.add_argument("--home", type=Path, required=True)
    parsers["engines"].add_argument("--engines", nargs="+", default=["implicit", "mllib", "softmax"])
    args = parser.parse_args()
    if args.command == "day":
        day_curve(args.profiles, args.root, args.set)
    elif args.command == "engines":
        engines(args.home, args.engines)
    else:
        ranking(args.home)


if __name__ == "__main__":
    main()
