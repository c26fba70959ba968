"""The pipeline replayed as of a past day, and its recommendations set against what members did next.

For the evaluation of day D with a holdout of H days, the stages of the pipeline (`pipeline/stages.py`) run
on the training day T = D - H, as the assets ran them for T (the look-back windows end there), and the test
window is T+1 .. D. No test event can reach training: every training read is bounded by T. Candidates are
the groups the pipeline ranks on T (live on T or going live within the horizon); every candidate is ranked,
with no sampled negatives. Scored members are those with a cohort on T (they were known) and a relevant test
interaction.
"""

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import reduce

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from reco_assets.evaluation import baselines
from reco_assets.pipeline import stages
from reco_assets.pipeline.affinities import top_rankings
from reco_assets.pipeline.catalog import CLASS_PATH, day_bounds, level_key
from reco_assets.pipeline.factorization import FACTORS_SCHEMA, GLOBAL
from reco_assets.pipeline.methods import BASELINE_METHODS, FEATURES, MODEL, Method
from reco_assets.resources.lakehouse import Lakehouse, MissingPartition, partition_predicate, range_predicate
from reco_assets.settings import RecoSettings

RANKED = (MODEL, Method("no_boost"), *(Method(name) for name in BASELINE_METHODS))
"""What the pass ranks for every cohort model of a backtest (with the blend, when it has weights)."""


@dataclass(frozen=True)
class Split:
    train_end: date
    test_start: date
    test_end: date


def holdout_split(day: date, holdout_days: int) -> Split:
    """Evaluated on day `day`: train through `day - holdout_days`, test on the days after it through `day`."""
    train_end = day - timedelta(days=holdout_days)
    return Split(train_end, train_end + timedelta(days=1), day)


@dataclass
class Level:
    """What one level (groups or styles) is scored with."""

    rankings: dict[str, pd.DataFrame]  # method -> member_id, item_id, score, rank
    relevant: pd.DataFrame  # member_id, item_id, new (first live in the test window)
    recommendable: int  # items a list could hold: candidate groups, or styles listed on T
    popularity: pd.Series  # item -> share of training members who interacted with it
    unseen_share: float
    item_class: pd.Series


@dataclass
class Backtest:
    split: Split
    members: pd.DataFrame  # member_id, cohort, rated_groups (groups rated in training) of the scored members
    levels: dict[str, Level] = field(default_factory=dict)
    fits: dict[str, dict] = field(default_factory=dict)  # model's cohort label -> sizes and training time
    sizes: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # phase -> wall time
    samples: pd.DataFrame | None = None  # the blend's training rows (`affinities.sample_pairs`)
    factors: DataFrame | None = None  # the models ranked with (kept): where the next origin's fits start

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.seconds[phase] = round(self.seconds.get(phase, 0.0) + time.perf_counter() - started, 3)


def interaction_shares(interactions: DataFrame) -> tuple[pd.Series, float]:
    """p(item) of novelty: (members who interacted with it + 1) / (all members + 1), and p of an unseen item.
    Counted by Spark in one job (a rollup: distinct members per item, and over all items): only one number
    per item reaches the driver."""
    counts = (
        interactions.where(F.col("item_id").isNotNull())
        .rollup("item_id")
        .agg(F.countDistinct("member_id").alias("members"), F.grouping("item_id").alias("total"))
        .toPandas()
    )
    everyone = counts.loc[counts["total"] == 1, "members"]
    members = int(everyone.iloc[0]) if len(everyone) else 0
    per_item = counts[counts["total"] == 0].astype({"item_id": "int64"}).set_index("item_id")["members"]
    return (per_item + 1.0) / (members + 1.0), 1.0 / (members + 1.0)


def holdout_interactions(lakehouse: Lakehouse, split: Split, kinds: list[str]) -> pd.DataFrame:
    """Relevant events of the test window: `member_id`, `style_id`, `subclass_brand_id`, `new`.

    `new` marks styles first live after the training day (cold start); styles absent from every catalog
    snapshot of the split count as new too, as nothing about them was known on the training day.
    """
    kinds_sql = ", ".join(f"'{kind}'" for kind in kinds)
    where = range_predicate("event_date", split.test_start, split.test_end) + f" AND event_type IN ({kinds_sql})"
    events = lakehouse.read_arrow("raw_events", where, ["member_id", "style_id", "subclass_brand_id"]).to_pandas()
    events = events.dropna().astype("int64").drop_duplicates()
    first_live = (
        lakehouse.read_arrow(
            "catalog", range_predicate("as_of_date", split.train_end, split.test_end), ["style_id", "first_live_at"]
        )
        .to_pandas()
        .groupby("style_id")["first_live_at"]
        .min()
    )
    _, train_day_end = day_bounds(split.train_end)
    known = events["style_id"].map(first_live)
    return events.assign(new=(known.isna() | (known >= pd.Timestamp(train_day_end))).to_numpy(dtype=bool))


def stored_inputs(
    session: SparkSession, lakehouse: Lakehouse, day: date, key: str, lookback_days: int
) -> tuple[DataFrame, DataFrame, set[str]] | None:
    """The `implicit_ratings` and `member_cohorts` the pipeline stored for `day`, cached, and the cohorts whose
    models it stored under `key`, when they are what it
    would compute again: its models of that day were stored under `key` (which covers the settings of ratings
    and cohorts), and each table was written after what it was computed from (the ratings after the last
    write of the events they sum, the cohorts after the ratings, the models after the cohorts). Reading them
    spares a backtest the look-back window's aggregation. None otherwise: the backtest computes them, and
    fits the models, again."""
    partition = {"as_of_date": day}
    written = []
    for name in ("implicit_ratings", "member_cohorts", "als_factors"):
        if lakehouse.table(name) is None:
            return None
        try:
            written.append(lakehouse.written_at(name, partition))
        except MissingPartition:
            return None
    events = lakehouse.last_written("raw_events", "event_date", day - timedelta(days=lookback_days - 1), day)
    if written != sorted(written) or (events is not None and events > written[0]):
        return None
    where = partition_predicate(partition)
    keyed = lakehouse.read_arrow("als_factors", f"{where} AND model_key = '{key}'", ["cohort"], distinct=True)
    if keyed.num_rows == 0:
        return None
    ratings = lakehouse.read_spark(session, "implicit_ratings", where)
    ratings = ratings.select("member_id", "subclass_brand_id", "rating", "last_event_time").cache()
    cohorts = lakehouse.read_spark(session, "member_cohorts", where).select("member_id", "cohort").cache()
    return ratings, cohorts, set(keyed.column("cohort").to_pylist())


ABLATION = "ablation:"
"""Cohort labels of the scope ablation's models, apart from the pipeline's cohorts in the same pass."""


def scope_ablation(scope: str) -> str:
    """The method that ranks with the models of the factor model's other scope: `global_scope` beside cohort
    models, `cohort_scope` beside a global one."""
    return "global_scope" if scope == "cohort" else "cohort_scope"


@dataclass
class Training:
    """The pipeline's ratings and cohorts of a training day, and the cohorts whose stored models are current."""

    ratings: DataFrame  # member_id, subclass_brand_id, rating, last_event_time
    cohorts: DataFrame  # member_id, cohort
    stored_models: set[str]

    def unpersist(self) -> None:
        for frame in (self.ratings, self.cohorts):
            frame.unpersist()


def training_day(reader: stages.Reader, day: date, settings: RecoSettings) -> Training:
    """The ratings and cohorts of `day`: those the pipeline stored when current (`stored_inputs`), else the
    ratings and cohorts stages run again."""
    key, lookback = settings.model_key(), settings.ratings.lookback_days
    stored = stored_inputs(reader.session, reader.lakehouse, day, key, lookback)
    if stored is not None:
        return Training(*stored)
    ratings = stages.ratings(reader, day, settings).cache()
    cohorts = stages.cohorts(reader, day, ratings, settings).select("member_id", "cohort").cache()
    return Training(ratings, cohorts, set())


def models(
    reader: stages.Reader,
    day: date,
    training: Training,
    settings: RecoSettings,
    ablation: bool,
    backtest: "Backtest",
    start: DataFrame | None = None,
) -> DataFrame:
    """Every cohort model of the training day and, with `ablation`, the models of the other scope (one
    global model beside cohort models, or the cohort models beside a global one), their labels prefixed with
    `ABLATION`; when every cohort's model is stored and current (`Training.stored_models`), the stored
    models are read instead of fitted. A fit starts from `start` (earlier models, labelled as these are:
    the previous origin's) when given, else from the models stored the day before, else cold."""
    params = settings.factor_model
    needed = {row["cohort"] for row in training.cohorts.select("cohort").distinct().collect()}
    if needed <= training.stored_models:
        stored = reader.day("als_factors", day)
        parts = [stored.where(F.col("model_key") == settings.model_key()).select(*FACTORS_SCHEMA.names)]
        backtest.sizes["reused_cohort_models"] = len(needed)
    else:
        own = stages.earlier_models(reader, day, settings) if start is None else _labelled(start, ablation=False)
        parts = [stages.factor_models(training.ratings, training.cohorts, params, start=own)]
        backtest.sizes["reused_cohort_models"] = 0
    if ablation:
        # the other scope's models, labelled apart; fitted per label, as cohort models are
        label = F.lit(f"{ABLATION}{GLOBAL}") if params.scope == "cohort" else F.concat(F.lit(ABLATION), "cohort")
        other = params.model_copy(update={"scope": "cohort"})
        earlier = None if start is None else _labelled(start, ablation=True)
        parts.append(
            stages.factor_models(training.ratings, training.cohorts.withColumn("cohort", label), other, start=earlier)
        )
    factors = reduce(DataFrame.unionByName, parts).localCheckpoint()
    for row in (
        factors.groupBy("cohort", "side").agg(F.count("*").alias("n"), F.max("fit_seconds").alias("seconds")).collect()
    ):
        fit = backtest.fits.setdefault(row["cohort"], {})
        fit[f"{row['side']}s"] = row["n"]
        fit["fit_seconds"] = round(row["seconds"], 3)
    return factors


def _labelled(factors: DataFrame, ablation: bool) -> DataFrame:
    """The rows of `factors` of the scope ablation's models (`ablation`), or of the pipeline's."""
    of_ablation = F.col("cohort").startswith(ABLATION)
    return factors.where(of_ablation if ablation else ~of_ablation)


def replay(
    reader: stages.Reader,
    day: date,
    training: Training,
    factors: DataFrame,
    scored: pd.DataFrame,
    settings: RecoSettings,
    blend: Method | None = None,
    ablations: bool = False,
    relevant: pd.DataFrame | None = None,
) -> tuple[dict[tuple[str, bool], pd.DataFrame], stages.RankingPass]:
    """The ranking pass of the training day `day` (the stage the assets run) for the `scored` members
    (member_id): the first `max(evaluation.ks)` ranks of every method of `RANKED` (and `blend`) under the
    pipeline's models, of the model alone under the scope ablation's, keyed by (table or method, from the
    ablation's models). With `relevant` (member_id, subclass_brand_id: what they did next), also the blend's
    training rows (`blend_samples`)."""
    session = reader.session
    only = F.broadcast(session.createDataFrame(scored[["member_id"]], "member_id long"))
    ranking = stages.ranking_pass(reader, day, factors, training.ratings, training.cohorts, settings, only=only)
    ids = only.withColumnRenamed("member_id", "id")
    members = factors.where(F.col("side") == "item").unionByName(
        factors.where(F.col("side") == "member").join(ids, "id", "left_semi")
    )
    rows = ranking.inputs(members)
    if relevant is not None:
        labels = (
            session.createDataFrame(
                relevant[["member_id", "subclass_brand_id"]].drop_duplicates(), "member_id long, subclass_brand_id long"
            )
            .groupBy("member_id")
            .agg(F.collect_list("subclass_brand_id").alias("relevant"))
        )
        cohort_rows = F.when(~F.col("cohort").startswith(ABLATION), F.col("relevant"))
        rows = rows.join(labels, "member_id", "left").withColumn("relevant", cohort_rows)
    methods = RANKED + ((blend,) if blend else ())
    per_model = {cohort: (MODEL,) if cohort.startswith(ABLATION) else methods for cohort in ranking.models}
    names = [m.name for m in methods[1:]]
    tables = ["diversified_affinities", *names] + (["boosted_affinities"] if ablations else [])
    n = max(settings.evaluation.ks)
    ranked = top_rankings(rows, ranking.models, ranking.hierarchy, settings.rank_params(), n, per_model, tables)
    return _tables(ranked.toArrow()), ranking


def _tables(ranked: pa.Table) -> dict[tuple[str, bool], pa.Table]:
    """The pass's rows by (table, whether from the scope ablation's models), kept in Arrow: the rankings become
    frames of plain columns, and the samples' feature lists one matrix, without a Python object per row."""
    tables = pc.dictionary_encode(ranked.column("table")).combine_chunks()
    codes = tables.indices.to_numpy(zero_copy_only=False)
    ablation = pc.starts_with(ranked.column("cohort"), ABLATION).to_numpy(zero_copy_only=False)
    parts = {}
    for code, name in enumerate(tables.dictionary.to_pylist()):
        for flag in (False, True):
            rows = np.flatnonzero((codes == code) & (ablation == flag))
            if len(rows):
                parts[name, flag] = ranked.take(rows)
    return parts


def method_rankings(parts: dict[tuple[str, bool], pa.Table], methods: list[str]) -> dict[str, pd.DataFrame]:
    """Method -> its ranking (member_id, item_id, score, rank) from the pass's rows: the model's is the
    diversified table, every other method its own."""
    rankings = {MODEL.name: _ranking(parts.get(("diversified_affinities", False)))}
    return rankings | {name: _ranking(parts.get((name, False))) for name in methods if name != MODEL.name}


def _samples(rows: pa.Table | None) -> pd.DataFrame:
    """The `blend_samples` rows of the pass with a column per feature (`affinities.sample_pairs`)."""
    if rows is None:
        return pd.DataFrame(columns=["member_id", "subclass_brand_id", "label", *FEATURES])
    flat = pc.list_flatten(rows.column("features").combine_chunks()).to_numpy(zero_copy_only=False)
    features = flat.reshape(rows.num_rows, len(FEATURES))
    samples = rows.select(["member_id", "subclass_brand_id", "label"]).to_pandas().astype({"label": bool})
    return samples.assign(**{name: features[:, i] for i, name in enumerate(FEATURES)})


def _ranking(rows: pa.Table | None) -> pd.DataFrame:
    columns = ["member_id", "item_id", "score", "rank"]
    if rows is None:
        dtypes = {"member_id": "int64", "item_id": "int64", "score": "float64", "rank": "int32"}
        return pd.DataFrame({c: pd.Series(dtype=dtypes[c]) for c in columns})
    chosen = rows.select(["member_id", "subclass_brand_id", "score", "rank"]).rename_columns(columns)
    return chosen.to_pandas().astype({"rank": "int32"})


def _style_feeds(
    session: SparkSession, rankings: dict[str, pd.DataFrame], listings: DataFrame, settings: RecoSettings, n: int
) -> dict[str, pd.DataFrame]:
    """Every method's group ranking turned into the product feed the cards would show (its first `n`
    styles), all methods in one Spark job: the method stands in the `cohort` column the feed groups by."""
    columns = ["cohort", "member_id", "subclass_brand_id", "score", "rank"]
    stacked = pd.concat(
        [r.rename(columns={"item_id": "subclass_brand_id"}).assign(cohort=method) for method, r in rankings.items()]
    )
    affinities = session.createDataFrame(stacked[columns].astype({"score": "float64", "rank": "int32"}))
    rows = (
        stages.product_feeds(affinities, listings, settings)
        .select("cohort", "member_id", F.posexplode("style_ids").alias("position", "item_id"))
        .where(F.col("position") < n)
        .select("cohort", "member_id", "item_id", F.lit(0.0).alias("score"), (F.col("position") + 1).alias("rank"))
        .toPandas()
    )
    # one grouping of the frame: a comparison of its text column per method is a pass over every row each
    by_method = {
        str(method): part.drop(columns="cohort").reset_index(drop=True)
        for method, part in rows.groupby(rows["cohort"].astype("category"), observed=True, sort=False)
    }
    empty = rows.drop(columns="cohort").iloc[:0]
    return {method: by_method.get(method, empty) for method in rankings}


def _scored_members(
    session: SparkSession, lakehouse: Lakehouse, split: Split, training: Training, settings: RecoSettings
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """(members scored: member_id, cohort, rated_groups; their test interactions; members active in the test
    window): those with a cohort on the training day and a relevant test interaction, a seeded sample of them
    beyond `evaluation.max_members`."""
    chosen = settings.evaluation
    holdout = holdout_interactions(lakehouse, split, chosen.relevant_events)
    active = session.createDataFrame(holdout[["member_id"]].drop_duplicates(), "member_id long")
    test = holdout.merge(training.cohorts.join(active, "member_id", "left_semi").toPandas(), on="member_id")
    members = test[["member_id", "cohort"]].drop_duplicates()
    in_window = len(members)
    if in_window > chosen.max_members:  # a seeded sample bounds what the driver scores
        members = members.sample(n=chosen.max_members, random_state=chosen.seed)
        test = test[test["member_id"].isin(members["member_id"])]
    rated_groups = (
        training.ratings.where(F.col("rating") > 0)
        .join(session.createDataFrame(members[["member_id"]], "member_id long"), "member_id", "left_semi")
        .groupBy("member_id")
        .agg(F.count("*").alias("rated_groups"))
        .toPandas()
    )
    members = members.merge(rated_groups, on="member_id", how="left").fillna({"rated_groups": 0})
    members = members.astype({"rated_groups": "int64"}).sort_values("member_id").reset_index(drop=True)
    return members, test, in_window


def run_backtest(
    session: SparkSession,
    lakehouse: Lakehouse,
    day: date,
    settings: RecoSettings,
    ablations: bool = True,
    styles: bool = True,
    blend: Method | None = None,
    samples: bool = False,
    reader: stages.Reader | None = None,
    start: DataFrame | None = None,
) -> Backtest:
    """Run the stages on the training day `day - holdout_days` and rank for every member active in the test
    window: the model, the methods of `RANKED` and `blend` (weights fitted before); with `samples`, also the
    blend's training rows of the scored members (what they did next is their label). `reader`: one that keeps
    windows of events across backtests (`rolling_backtest`); by default the backtest's own. `start`: the models
    the fits start from (an earlier origin's `Backtest.factors`), kept in `factors` for the next."""
    split = holdout_split(day, settings.evaluation.holdout_days)
    # the training windows, read by several stages; an origin before the log began ranks nothing
    own = reader is None
    reader = stages.Reader(session, lakehouse, keep=True, strict=False) if own else reader
    with ExitStack() as cleanup:  # the process's Spark session outlives a failed backtest: what it kept must not
        if own:
            cleanup.callback(reader.release)
        started = time.perf_counter()
        training = training_day(reader, split.train_end, settings)
        cleanup.callback(training.unpersist)
        train_end, n = split.train_end, max(settings.evaluation.ks)
        members, test, in_window = _scored_members(session, lakehouse, split, training, settings)
        catalog = reader.day("catalog", train_end)
        candidates = stages.candidates(catalog, train_end, settings)
        backtest = Backtest(split, members)
        backtest.sizes = {
            "training_members": training.cohorts.count(),
            "members_in_test_window": in_window,
            "scored_members": len(members),
            "candidate_groups": len(candidates),
            "holdout_interactions": len(test),
        }
        backtest.seconds["training"] = round(time.perf_counter() - started, 3)  # ratings, cohorts, scored members
        if members.empty or not candidates:
            return backtest

        with backtest.timed("models"):
            factors = models(reader, train_end, training, settings, ablations, backtest, start)
            backtest.factors = factors
        with backtest.timed("ranking"):
            parts, ranking = replay(
                reader, train_end, training, factors, members, settings, blend, ablations, test if samples else None
            )
            if samples:
                backtest.samples = _samples(parts.get(("blend_samples", False)))
            methods = [m.name for m in RANKED] + ([blend.name] if blend else [])
            group_rankings = method_rankings(parts, methods)
            group_rankings["random"] = baselines.random(members, np.array(candidates), n, settings.evaluation.seed)
            if ablations:
                group_rankings |= {
                    "no_diversification": _ranking(parts.get(("boosted_affinities", False))),
                    scope_ablation(settings.factor_model.scope): _ranking(parts.get(("diversified_affinities", True))),
                }

        candidate_ids = np.array(candidates, dtype=np.int64)
        classes = ranking.groups.select("subclass_brand_id", "class_key").toPandas()
        rated = training.ratings.where(F.col("rating") > 0).select(
            "member_id", F.col("subclass_brand_id").alias("item_id")
        )
        with backtest.timed("shares"):
            shares, unseen = interaction_shares(rated)
        in_candidates = test[test["subclass_brand_id"].isin(candidate_ids)]
        backtest.levels["subclass_brand"] = Level(
            rankings=group_rankings,
            relevant=in_candidates[["member_id", "subclass_brand_id", "new"]].rename(
                columns={"subclass_brand_id": "item_id"}
            ),
            recommendable=len(candidates),
            popularity=shares,
            unseen_share=unseen,
            item_class=classes.set_index("subclass_brand_id")["class_key"],
        )
        backtest.sizes["holdout_interactions_in_candidates"] = len(in_candidates)

        if styles:
            with backtest.timed("style_feeds"):
                listings = stages.listings(reader, train_end, catalog, settings).cache()
                style_class = (
                    catalog.select("style_id", level_key(CLASS_PATH).alias("class_key"))
                    .toPandas()
                    .drop_duplicates("style_id")
                )
                touched = reader.events(train_end, settings.ratings.lookback_days).where(F.col("style_id").isNotNull())
                style_shares, style_unseen = interaction_shares(
                    touched.select("member_id", F.col("style_id").alias("item_id"))
                )
                backtest.levels["style"] = Level(
                    rankings=_style_feeds(session, group_rankings, listings, settings, n),
                    relevant=test[["member_id", "style_id", "new"]].rename(columns={"style_id": "item_id"}),
                    recommendable=listings.count(),
                    popularity=style_shares,
                    unseen_share=style_unseen,
                    item_class=style_class.set_index("style_id")["class_key"],
                )
                listings.unpersist()
        return backtest
