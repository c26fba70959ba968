"""The whole day on the `tiny` profile, through the CLI, with real Spark, Delta, DuckDB, MLflow and Dagster."""

import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dagster import AssetKey, DagsterInstance, MultiPartitionKey
from deltalake import DeltaTable

from reco_assets.cli import main
from reco_assets.definitions import build_definitions
from reco_assets.pipeline import stages
from reco_assets.resources import local_resources
from reco_assets.resources.lakehouse import Lakehouse
from reco_assets.resources.steps import seal
from reco_assets.runner import QUIET, dagster_instance
from reco_assets.serving import published
from reco_assets.serving.lmdb_store import LmdbStore
from reco_assets.settings import RecoSettings
from reco_assets.simulator import PROFILES
from reco_assets_tests.conftest import TINY_HOLDOUT, TINY_ORIGIN_DAYS
from reco_assets_tests.pipeline.test_neighbors import _reference as neighbors_by_python
from reco_assets_tests.pipeline.test_rules import _reference as rules_by_python

pytestmark = pytest.mark.slow
DAY = PROFILES["tiny"].last_day
HOLDOUT, ORIGIN_DAYS = TINY_HOLDOUT, TINY_ORIGIN_DAYS
"""The tiny profile has 14 days: its backtests test on 3 days, and the rolling origins are 3 days apart."""
SETTINGS = RecoSettings().changed({"evaluation.holdout_days": HOLDOUT, "evaluation.origin_days": ORIGIN_DAYS})

CONTRACT_COLUMNS = {
    "raw_events": [
        "event_id",
        "event_time",
        "event_date",
        "member_id",
        "event_type",
        "style_id",
        "session_id",
        "price",
        "quantity",
    ],
    "raw_events_rejected": ["event_date", "source", "record", "reason"],
    "catalog": [
        "style_id",
        "subclass_brand_id",
        "brand",
        "division",
        "department",
        "class",
        "subclass",
        "price",
        "first_live_at",
        "live_from",
        "live_until",
        "qty_on_hand",
        "as_of_date",
    ],
    "implicit_ratings": ["member_id", "subclass_brand_id", "rating", "last_event_time", "as_of_date"],
    "member_cohorts": ["member_id", "cohort", "division_affinity", "spend_bucket", "p90_purchase_price", "as_of_date"],
    "als_factors": ["side", "id", "factors", "as_of_date", "cohort"],
    "member_affinities": ["member_id", "subclass_brand_id", "rating", "prediction", "rank", "as_of_date", "cohort"],
    "boosted_affinities": [
        "member_id",
        "subclass_brand_id",
        "rating",
        "prediction",
        "rank",
        "boost",
        "score",
        "as_of_date",
        "cohort",
    ],
    "diversified_affinities": ["member_id", "subclass_brand_id", "score", "rank", "method", "as_of_date", "cohort"],
    "style_listings": [
        "subclass_brand_id",
        "style_id",
        "popularity_score",
        "launch_score",
        "score",
        "rank",
        "qty_on_hand",
        "as_of_date",
    ],
    "group_neighbors": ["subclass_brand_id", "neighbor_id", "rank", "score", "co_sessions", "as_of_date"],
    "co_purchase_rules": ["antecedent", "consequent", "rank", "support", "confidence", "lift", "baskets", "as_of_date"],
    "member_cards": [
        "member_id",
        "feed",
        "variant",
        "position",
        "group_key",
        "group_name",
        "affinity",
        "style_ids",
        "as_of_date",
        "cohort",
    ],
}


def table(home: Path, name: str, where: str | None = None) -> pd.DataFrame:
    lake = Lakehouse(root=str(home / "lakehouse"))
    column = "event_date" if name.startswith("raw_events") else "as_of_date"
    return lake.read_arrow(name, where or f"{column} = '{DAY}'").to_pandas()


def test_every_contract_table_with_its_columns(home):
    for name, columns in CONTRACT_COLUMNS.items():
        frame = table(home, name)
        assert set(columns) <= set(frame.columns), name
        assert len(frame) > 0 or name == "co_purchase_rules", name  # the tiny world's baskets make no rule
    assert set(table(home, "member_cohorts").cohort) == set(table(home, "member_cards").cohort)


def test_records_reconcile_with_the_landing_files(home):
    events = table(home, "raw_events", "true")
    rejected = table(home, "raw_events_rejected", "true")
    for path in sorted((home / "landing" / "events").iterdir()):
        day = date.fromisoformat(path.stem)
        content = path.read_bytes()
        physical = content.count(b"\n") + (not content.endswith(b"\n"))  # every line, blank ones included
        lines = content.decode().splitlines()
        accepted_ids = set(events[events.event_date == day].event_id)
        bad = rejected[rejected.event_date == day]
        assert len(accepted_ids) + len(bad) == physical, day
        assert len(accepted_ids) == (events.event_date == day).sum()  # no duplicates
        assert set(bad.record) <= set(lines)
    assert set(rejected.reason) >= {
        "malformed_json",
        "missing_field:member_id",
        "bad_type:member_id",
        "negative_price",
        "unknown_event_type",
        "outside_day",
        "duplicate_event_id",
        "unknown_style",
    }


def test_the_days_group_neighbors_are_its_sessions_counted_in_plain_python(home):
    """The published neighbours against the unit tests' plain Python count over the window's raw events."""
    chosen = SETTINGS.neighbors
    first = DAY - timedelta(days=chosen.window_days - 1)
    events = table(home, "raw_events", f"event_date BETWEEN '{first}' AND '{DAY}'")
    columns = ["member_id", "session_id", "event_type", "subclass_brand_id"]
    want = neighbors_by_python(events[columns].astype(object).itertuples(index=False, name=None), chosen)
    got = table(home, "group_neighbors").sort_values(["subclass_brand_id", "rank"])
    assert len(want) > 100
    assert list(zip(got.subclass_brand_id, got["rank"], got.neighbor_id, got.co_sessions, strict=True)) == [
        (a, rank, b, count) for a, rank, b, _, count in want
    ]
    assert list(got.score) == pytest.approx([score for *_, score, _ in want])


def _rule_rows(rules: pd.DataFrame) -> list[tuple]:
    return sorted(
        (list(r.antecedent), r.rank, r.consequent, r.baskets, r.confidence, r.lift) for r in rules.itertuples()
    )


def test_the_days_co_purchase_rules_are_its_baskets_counted_in_plain_python(home, spark):
    """The published rules, and the stage's with every pair bought together once a rule, against the unit
    tests' plain Python count over the window's purchase baskets (the tiny world's 523 baskets hold no pair
    bought together 5 times: with the defaults there is no rule)."""
    chosen = SETTINGS.rules
    first = DAY - timedelta(days=chosen.window_days - 1)
    bought = table(home, "raw_events", f"event_date BETWEEN '{first}' AND '{DAY}' AND event_type = 'purchase'")
    bought = bought.sort_values(["event_time", "subclass_brand_id"]).drop_duplicates(
        ["member_id", "session_id", "subclass_brand_id"]
    )
    baskets = [list(group.subclass_brand_id) for _, group in bought.groupby(["member_id", "session_id"])]
    assert _rule_rows(table(home, "co_purchase_rules")) == rules_by_python(baskets, chosen) == []
    loose = SETTINGS.changed({"rules.min_baskets": 1})
    reader = stages.Reader(spark, Lakehouse(root=str(home / "lakehouse")))
    got, want = _rule_rows(stages.rules(reader, DAY, loose).toPandas()), rules_by_python(baskets, loose.rules)
    assert len(want) > 100
    assert [r[:4] for r in got] == [w[:4] for w in want]
    assert [x for r in got for x in r[4:]] == pytest.approx([x for w in want for x in w[4:]])


def test_cohorts_affinities_and_diversification_invariants(home):
    ratings, cohorts = table(home, "implicit_ratings"), table(home, "member_cohorts")
    assert set(ratings.member_id) == set(cohorts.member_id) and cohorts.member_id.is_unique

    affinities = table(home, "member_affinities").sort_values(["member_id", "rank"])
    for _, member in affinities.groupby("member_id"):
        assert member["rank"].tolist() == list(range(1, len(member) + 1))
        assert member.prediction.is_monotonic_decreasing
    # A member's affinities come from their own cohort's model only.
    joined = affinities.merge(cohorts[["member_id", "cohort"]], on="member_id", suffixes=("", "_of_member"))
    assert (joined.cohort == joined.cohort_of_member).all()

    catalog = table(home, "catalog").drop_duplicates("subclass_brand_id").set_index("subclass_brand_id")
    classes = catalog.division + "/" + catalog.department + "/" + catalog["class"]  # full paths: names repeat
    diversified = table(home, "diversified_affinities")
    ranked_by = diversified.groupby("cohort").method.unique()
    assert ranked_by.map(len).eq(1).all()  # one method per cohort, its champion's
    champions = table(home, "ranking_champions").set_index("cohort").method
    assert (ranked_by.map(lambda m: m[0]) == champions.reindex(ranked_by.index)).all()
    # baselines are published as scored; the ranks of the others keep the limit (in `test_affinities` by hand:
    # the tiny day's champions may all be baselines)
    diversified = diversified[diversified.method.isin(["model", "no_boost", "blend"])]
    per_class = (
        diversified.assign(klass=diversified.subclass_brand_id.map(classes)).groupby(["member_id", "klass"]).size()
    )
    assert per_class.empty or per_class.max() <= 3


def test_the_backtest_runs_the_stages_the_assets_published(home, spark):
    """Parity: on a day the assets published, the stages as the backtest runs them give the published tables:
    the ratings and cohorts computed again are `implicit_ratings` and `member_cohorts`, and its ranking of the
    day's members by each cohort's published method (the blend with the day's weights) is
    `diversified_affinities`, member by member, to the backtest's depth."""
    from reco_assets.evaluation.backtest import (
        RANKED,
        Backtest,
        holdout_split,
        method_rankings,
        models,
        replay,
        training_day,
    )
    from reco_assets.evaluation.champion import blend_from_json
    from reco_assets.pipeline import stages

    lake = Lakehouse(root=str(home / "lakehouse"))
    reader, settings = stages.Reader(spark, lake), SETTINGS

    def frame(spark_frame, *columns):
        return spark_frame.toPandas()[list(columns)].sort_values(list(columns)).reset_index(drop=True)

    ratings = ["member_id", "subclass_brand_id", "rating"]
    expected = table(home, "implicit_ratings")[ratings].sort_values(ratings).reset_index(drop=True)
    pd.testing.assert_frame_equal(frame(stages.ratings(reader, DAY, settings), *ratings), expected, check_dtype=False)
    cohorts = stages.cohorts(reader, DAY, reader.day("implicit_ratings", DAY), settings)
    expected = table(home, "member_cohorts")[["member_id", "cohort"]].sort_values(["member_id", "cohort"])
    got = frame(cohorts, "member_id", "cohort")
    pd.testing.assert_frame_equal(got, expected.reset_index(drop=True), check_dtype=False)

    published = table(home, "diversified_affinities")
    members = published[["member_id"]].drop_duplicates().reset_index(drop=True)
    blend = blend_from_json(table(home, "ranking_champions")["blend_weights"].iloc[0])
    training = training_day(reader, DAY, settings)
    backtest = Backtest(holdout_split(DAY + timedelta(days=HOLDOUT), HOLDOUT), members)
    factors = models(reader, DAY, training, settings, False, backtest)
    assert backtest.sizes["reused_cohort_models"] > 0  # the day's stored models, as the evaluation reads them
    parts, _ = replay(reader, DAY, training, factors, members, settings, blend)
    rankings = method_rankings(parts, [m.name for m in RANKED] + ([blend.name] if blend else []))
    depth = max(settings.evaluation.ks)
    columns = ["member_id", "subclass_brand_id", "rank"]
    compared = 0
    for method, rows in published.groupby("method"):
        want = rows[rows["rank"] <= depth][[*columns, "score"]].sort_values(columns).reset_index(drop=True)
        ranked = rankings[method].rename(columns={"item_id": "subclass_brand_id"})
        got = ranked[ranked["member_id"].isin(rows["member_id"])][[*columns, "score"]]
        got = got.sort_values(columns).reset_index(drop=True)
        pd.testing.assert_frame_equal(got[columns], want[columns], check_dtype=False)
        assert got["score"].to_numpy() == pytest.approx(want["score"].to_numpy(), rel=1e-5, abs=1e-6)
        compared += len(want)
    assert compared > 1000 and published["method"].nunique() >= 1


def test_boosts_only_the_top_three_browsed_not_bought_subclasses(home):
    """Recomputed here from raw events with pandas, independently of the Spark code."""
    window = f"event_date >= '{DAY - timedelta(days=9)}' AND event_date <= '{DAY}'"
    events = table(home, "raw_events", window)
    events["subclass"] = events.division + "/" + events.department + "/" + events["class"] + "/" + events.subclass
    browsed = events[events.event_type.isin(["product_view", "add_to_cart"])]
    bought = set(map(tuple, events[events.event_type == "purchase"][["member_id", "subclass"]].values))
    counts = (
        browsed.groupby(["member_id", "subclass"]).agg(n=("event_id", "size"), last=("event_time", "max")).reset_index()
    )
    counts = counts[[(m, s) not in bought for m, s in zip(counts.member_id, counts.subclass)]]
    counts = counts.sort_values(["member_id", "n", "last", "subclass"], ascending=[True, False, False, True])
    allowed = {m: set(g.subclass.head(3)) for m, g in counts.groupby("member_id")}

    boosted = table(home, "boosted_affinities")
    catalog = table(home, "catalog").drop_duplicates("subclass_brand_id").set_index("subclass_brand_id")
    subclass = catalog.division + "/" + catalog.department + "/" + catalog["class"] + "/" + catalog.subclass
    lifted = boosted[boosted.boost > 0].assign(subclass=lambda f: f.subclass_brand_id.map(subclass))
    assert len(lifted) > 0
    for member, rows in lifted.groupby("member_id"):
        assert set(rows.subclass) <= allowed.get(member, set())
    assert (boosted.score == boosted.prediction + boosted.boost).all()


def test_published_styles_are_saleable_and_lists_are_clean(home):
    catalog = table(home, "catalog").set_index("style_id")
    start, end = pd.Timestamp(DAY, tz="UTC"), pd.Timestamp(DAY + timedelta(days=1), tz="UTC")
    listings = table(home, "style_listings")
    cards = table(home, "member_cards")
    for styles in [listings.style_id.tolist(), [s for ids in cards.style_ids for s in ids]]:
        rows = catalog.loc[sorted(set(styles))]
        assert ((rows.live_from < end) & (rows.live_until > start) & (rows.qty_on_hand >= 3)).all()
    assert all(len(ids) == len(set(ids)) for ids in cards.style_ids)
    products = cards[(cards.feed == "products") & (cards.variant == "full")]
    assert products.style_ids.map(len).max() <= 300
    assert set(cards.feed) == {"products", "brands", "categories"}
    assert listings.groupby("subclass_brand_id").size().max() <= 15


def test_checks_mlflow_and_runs_are_recorded(home):
    instance = DagsterInstance.from_config(str(home / "dagster"))
    runs = instance.get_runs()
    cohorts = set(table(home, "member_cohorts").cohort)
    # history, the day's shared tables, the evaluation, every cohort's models and cards in one run, serving
    assert len(runs) == 5 and all(run.is_success for run in runs)
    assert runs[0].job_name == "serving_job"  # newest first
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{home / 'mlflow.db'}")
    tracked = mlflow.search_runs(experiment_names=["reco_assets"])
    (factors,) = tracked[tracked["tags.mlflow.runName"] == "als_factors"].to_dict("records")
    assert factors["params.rank"] == "16" and factors["params.engine"] == "softmax"
    assert pd.isna(factors.get("params.alpha"))  # an ALS setting: the softmax engine has none
    members = table(home, "member_cohorts").cohort.value_counts()
    assert {c: factors[f"metrics.{c}.members"] for c in cohorts} == members.to_dict()  # every member has a model
    # the cohorts share one global fit (the default scope): its time is logged once, not once per cohort
    timed = {name for name, value in factors.items() if name.endswith(".fit_seconds") and pd.notna(value)}
    assert timed == {"metrics.global.fit_seconds"} and factors["metrics.global.fit_seconds"] > 0

    # one evaluation run with a nested run per backtested model: the scored cohorts' (their shares of the
    # global model, the default scope) and those of the ablation's separate cohort models
    (parent,) = tracked[tracked["tags.mlflow.runName"] == f"offline_evaluation {DAY}"]["run_id"]
    nested = tracked[tracked["tags.mlflow.parentRunId"] == parent]
    evaluation = table(home, "offline_evaluation")
    ranked = evaluation[evaluation.level == "subclass_brand"]
    scored_cohorts = set(ranked.segment) - {"all", "new_styles", "returning_styles", "little_history"}
    ablation = {f"ablation:{c}" for c in scored_cohorts}
    assert scored_cohorts | ablation <= set(nested["tags.cohort"]) <= cohorts | {f"ablation:{c}" for c in cohorts}
    assert (nested["metrics.train.fit_seconds"] > 0).all()
    parent_run = tracked.set_index("run_id").loc[parent]
    model_ndcg = evaluation.query("level == 'subclass_brand' and segment == 'all' and method == 'model'")
    assert parent_run["metrics.subclass_brand.model.ndcg_at_10"] == pytest.approx(
        model_ndcg.query("metric == 'ndcg' and k == 10")["value"].item()
    )
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(parent)}
    assert {"model_vs_baselines.png", f"offline_evaluation_{DAY}.csv"} <= artifacts
    # the day's co-purchase rules: the tiny world's baskets make none, and the run says so
    (rules,) = tracked[tracked["tags.mlflow.runName"] == f"co_purchase_rules {DAY}"].to_dict("records")
    assert rules["metrics.rules"] == len(table(home, "co_purchase_rules")) == 0
    assert rules["params.rules.min_baskets"] == str(SETTINGS.rules.min_baskets)

    # every cohort model of the day is a registered version tagged with the day, and it loads and predicts
    client = mlflow.MlflowClient()
    versions = [client.search_model_versions(f"name = 'reco_factors_{cohort}'") for cohort in cohorts]
    assert all(len(v) == 1 and v[0].tags["as_of_date"] == str(DAY) for v in versions)
    # published with the cards: the alias names the version the served cards come from
    assert all(str(client.get_model_version_by_alias(f"reco_factors_{c}", "published").version) == "1" for c in cohorts)
    cohort = table(home, "member_cohorts").cohort.value_counts().idxmax()
    model = mlflow.pyfunc.load_model(f"models:/reco_factors_{cohort}/1")
    member = table(home, "member_affinities", f"as_of_date = '{DAY}' AND cohort = '{cohort}'").member_id.iloc[0]
    predicted = model.predict(pd.DataFrame({"member_id": [member]}), params={"k": 100_000})
    stored = table(home, "member_affinities", f"as_of_date = '{DAY}' AND member_id = {member}")
    both = predicted.merge(stored, on="subclass_brand_id", suffixes=("_model", "_stored"))
    assert len(both) == len(stored) > 0  # every group the pipeline ranked is scored by the registered model
    assert both.prediction_model.to_numpy() == pytest.approx(both.prediction_stored.to_numpy(), rel=1e-4, abs=1e-5)


def served(home: Path) -> LmdbStore:
    return LmdbStore(str(home / "serving"))


def test_the_served_version_holds_every_members_cards(home):
    """After `demo`, the embedded store serves the day: one payload per member, equal to their cards (rebuilt
    here with pandas from `member_cards`), ids as strings, every feed and variant."""
    store = served(home)
    current = store.current()
    assert (current.as_of_date, current.source) == (str(DAY), "member_cards")
    cards = table(home, "member_cards")
    assert current.members == cards.member_id.nunique() == store.count(current.version, b"m:")
    # every cohort is ranked by its champion here: the payload says which, and by how much it won
    champions = table(home, "ranking_champions", f"as_of_date = '{DAY}'").set_index("cohort")
    for member, rows in cards.groupby("member_id"):
        document = json.loads(store.get(current.version, f"m:{member}".encode()))
        assert document["member_id"] == str(member) and document["cohort"] == rows.cohort.iloc[0]
        champion = champions.loc[rows.cohort.iloc[0]]
        assert document["ranking"] == {
            "method": champion.method,
            "versus": champion.versus,
            "margin": round(champion.margin, 4),
            "margin_ci": [round(champion.margin_low, 4), round(champion.margin_high, 4)],
        }
        assert (document["as_of_date"], document["version"], document["fallback"]) == (
            str(DAY),
            current.version,
            False,
        )
        for feed in ("products", "brands", "categories"):
            got = {
                (g["position"], variant, g["group_key"], g["group_name"]): g[variant]
                for g in document["feeds"][feed]
                for variant in ("card", "full")
            }
            want = {
                (r.position, r.variant, r.group_key, r.group_name): [str(s) for s in r.style_ids]
                for r in rows[rows.feed == feed].itertuples()
            }
            assert got == want, (member, feed)
    fallback = json.loads(current.fallback)
    assert fallback["fallback"] is True and len(fallback["feeds"]["products"][0]["full"]) > 0


def _spread(pointed: pd.DataFrame, listings: pd.DataFrame, length: int) -> dict[int, list[tuple]]:
    """Per source group of `pointed` (`source`, `group_id`, `score`): its list over the listings of the
    groups pointed to, each style scored by its group's score over its listing rank, ties by the smaller id."""
    styles = listings.rename(columns={"subclass_brand_id": "group_id"})[["group_id", "style_id", "rank"]]
    rows = pointed[["source", "group_id", "score"]].merge(styles, on="group_id")
    rows["score"] = rows.score / rows["rank"]
    rows = rows.sort_values(["source", "score", "style_id"], ascending=[True, False, True])
    return {
        source: [(str(r.style_id), str(r.group_id), r.score) for r in group.head(length).itertuples()]
        for source, group in rows.groupby("source")
    }


def _basket_favourites(home: Path, listings: pd.DataFrame, length: int) -> list[tuple]:
    """The styles of the groups in most baskets of the rules' window (pandas), spread as a list."""
    chosen = SETTINGS.rules
    first = DAY - timedelta(days=chosen.window_days - 1)
    bought = table(home, "raw_events", f"event_date BETWEEN '{first}' AND '{DAY}' AND event_type = 'purchase'")
    bought = bought.dropna(subset=["subclass_brand_id"])
    firsts = bought.groupby(["member_id", "session_id", "subclass_brand_id"]).event_time.min().reset_index()
    firsts = firsts.sort_values(["member_id", "session_id", "event_time", "subclass_brand_id"])
    baskets = firsts.groupby(["member_id", "session_id"]).head(chosen.max_basket_items)
    counts = baskets.groupby("subclass_brand_id").size().reset_index(name="score")
    counts = counts.sort_values(["score", "subclass_brand_id"], ascending=[False, True]).head(length)
    pointed = counts.rename(columns={"subclass_brand_id": "group_id"}).assign(source=0)
    return _spread(pointed, listings, length).get(0, [])


def _with_factor_neighbors(home: Path, neighbors: pd.DataFrame) -> pd.DataFrame:
    """The session `neighbors` (`source`, `group_id`, `score`) completed, up to the settings' count per group,
    by the groups whose factors (of the day's cohort model with the most groups, bias left out) have the
    largest positive cosine, scored as the cosine times the group's weakest neighbour score (numpy's whole
    cosine matrix, sorted per group)."""
    per_group = SETTINGS.neighbors.neighbors_per_group
    items = table(home, "als_factors")
    items = items[items.side == "item"]
    cohort = items.groupby("cohort").size().sort_index().idxmax()
    items = items[items.cohort == cohort].sort_values("id")
    factors = np.stack(items.factors.to_numpy())[:, :-1]  # the softmax engine's last column is the bias
    unit = factors / np.linalg.norm(factors, axis=1, keepdims=True)
    cosines = unit @ unit.T
    ids = items.id.to_list()
    rows = []
    for i, group in enumerate(ids):
        own = neighbors[neighbors.source == group].sort_values(["score", "group_id"], ascending=[False, True])
        rows += [(group, g, sc) for g, sc in zip(own.group_id, own.score, strict=True)]
        weakest = own.score.min() if len(own) else 1.0
        ranked = sorted((-cosines[i, j], other) for j, other in enumerate(ids) if other != group)
        closest = [(other, -c) for c, other in ranked if -c > 0][:per_group]
        extra = [(group, other, c * weakest) for other, c in closest if other not in set(own.group_id)]
        rows += extra[: per_group - len(own)]
    seen = set(ids)
    rows += [(r.source, r.group_id, r.score) for r in neighbors.itertuples() if r.source not in seen]
    return pd.DataFrame(rows, columns=["source", "group_id", "score"])


def test_the_served_version_holds_the_style_lists_of_the_days_listings(home):
    """Every listed style's group, and every listed group's similar and bought-together lists, as pandas
    computes them from the day's `style_listings`, `group_neighbors` and `co_purchase_rules` (and, for the
    fallbacks, the class's most popular styles and the groups in most baskets)."""
    from reco_assets.serving.item_lists import LIST_LENGTH

    store = served(home)
    version = store.current().version
    listings = table(home, "style_listings")
    for style, group in zip(listings.style_id, listings.subclass_brand_id, strict=True):
        assert store.get(version, f"y:{style}".encode()) == str(group).encode()
    neighbors = table(home, "group_neighbors").rename(
        columns={"subclass_brand_id": "source", "neighbor_id": "group_id"}
    )
    blended = _with_factor_neighbors(home, neighbors)
    assert len(blended) > len(neighbors)  # the factor model completes thin neighbour lists
    similar = _spread(blended, listings, LIST_LENGTH)
    rules = table(home, "co_purchase_rules")
    rules = rules[rules.antecedent.map(len) == 1]
    rules = rules.assign(source=rules.antecedent.map(lambda a: a[0]), group_id=rules.consequent)
    bought = _spread(rules.assign(score=rules.lift * rules.confidence), listings, LIST_LENGTH)
    favourites = _basket_favourites(home, listings, LIST_LENGTH)
    classes = listings.assign(key=listings[["division", "department", "class"]].apply(tuple, axis=1))
    classes.loc[classes["class"].isna(), "key"] = classes.subclass_brand_id.map(lambda g: ("group", g))
    popular = classes.sort_values(["popularity_score", "style_id"], ascending=[False, True])
    fallbacks = 0
    for group, key in classes.groupby("subclass_brand_id").key.first().items():
        stored = json.loads(store.get(version, f"gs:{group}".encode()))
        got = [(e["style_id"], e["group_key"], e["score"]) for e in stored["styles"]]
        if group in similar:
            want = similar[group]
        else:
            top = popular[popular.key == key].head(LIST_LENGTH)
            want = [(str(r.style_id), str(r.subclass_brand_id), r.popularity_score) for r in top.itertuples()]
        assert (stored["fallback"], [g[:2] for g in got]) == (group not in similar, [w[:2] for w in want]), group
        assert [g[2] for g in got] == pytest.approx([w[2] for w in want])
        fallbacks += stored["fallback"]
        stored = json.loads(store.get(version, f"gb:{group}".encode()))
        want = bought.get(group, favourites)
        assert stored["fallback"] == (group not in bought)
        assert [(e["style_id"], e["group_key"]) for e in stored["styles"]] == [w[:2] for w in want], group
        listed = listings[listings.subclass_brand_id == group].sort_values("rank")
        assert json.loads(store.get(version, f"gl:{group}".encode())) == [str(s) for s in listed.style_id]
    assert fallbacks < listings.subclass_brand_id.nunique()
    assert len(favourites) > 0  # the tiny world has no rule: every bought-together list is the fallback


def test_the_export_holds_the_served_payloads_and_the_cards(home):
    store = served(home)
    current = store.current()
    folder = home / "exports" / str(DAY)
    manifest = json.loads((folder / "_manifest.json").read_text())
    lines = [line for part in sorted((folder / "payloads").glob("part-*")) for line in part.read_bytes().splitlines()]
    cards = table(home, "member_cards")
    assert (manifest["version"], manifest["served"]) == (current.version, True)
    assert manifest["payloads"] == len(lines) == cards.member_id.nunique()
    for line in lines:  # the same bytes the API passes through
        assert store.get(current.version, f"m:{json.loads(line)['member_id']}".encode()) == line
    exported = pd.read_parquet(folder / "cards")
    assert len(exported) == manifest["card_rows"] == len(cards)
    assert set(exported.version) == {current.version}
    assert not [p for p in (home / "exports").iterdir() if p.name.startswith(".")]  # no staging left behind


def test_the_redis_store_serves_the_same_payloads(home, redis_url, tmp_path):
    """The day loaded into a real redis-server from the Spark tasks: the same members and payloads as the
    embedded store's (but for the version's name)."""
    from reco_assets.resources.serving import ServingResource
    from reco_assets.serving.redis_store import RedisStore

    serving = ServingResource(
        store="redis", redis_url=redis_url, lmdb_root=str(tmp_path / "unused"), exports_root=str(tmp_path / "exports")
    )
    assert _run(home, "serving_job", DAY.isoformat(), serving=serving).success
    shared, embedded = RedisStore(redis_url), served(home)
    on_redis, on_lmdb = shared.current(), embedded.current()
    assert on_redis.as_of_date == str(DAY) and on_redis.version != on_lmdb.version
    assert on_redis.members == on_lmdb.members == shared.count(on_redis.version, b"m:")
    for member in table(home, "member_cards").member_id.unique():
        key = f"m:{member}".encode()
        from_redis = json.loads(shared.get(on_redis.version, key))
        from_lmdb = json.loads(embedded.get(on_lmdb.version, key))
        assert from_redis == from_lmdb | {"version": on_redis.version}


def test_rerunning_a_day_replaces_it(home):
    """Materializing the same partitions again leaves identical tables (re-run, not append)."""
    cohort = table(home, "member_cohorts").cohort.value_counts().idxmax()
    key = MultiPartitionKey({"date": DAY.isoformat(), "cohort": cohort})
    where = f"as_of_date = '{DAY}' AND cohort = '{cohort}'"
    names = ["als_factors", "member_affinities", "boosted_affinities", "diversified_affinities", "member_cards"]

    def snapshot():
        frames = {n: table(home, n, where) for n in names}
        frames |= {
            n: table(home, n)
            for n in ["raw_events", "raw_events_rejected", "implicit_ratings", "member_cohorts", "style_listings"]
        }
        frames["als_factors"] = frames["als_factors"].drop(columns="fit_seconds")  # a wall time, not data
        return {n: f.astype(str).sort_values(list(f.columns)).reset_index(drop=True) for n, f in frames.items()}

    def files(name: str) -> tuple[set[str], set[str]]:
        """Data files of the re-run cohort's partition and of every other partition of the table."""
        paths = set(DeltaTable(str(home / "lakehouse" / name)).file_uris())
        mine = {p for p in paths if f"as_of_date={DAY}" in p and f"cohort={cohort}/" in p}
        return mine, paths - mine

    before, files_before = snapshot(), {n: files(n) for n in names}
    defs = build_definitions(local_resources(home, SETTINGS))
    instance = dagster_instance(home)
    assert (
        defs.resolve_job_def("daily_job")
        .execute_in_process(instance=instance, run_config=QUIET, partition_key=DAY.isoformat())
        .success
    )
    stale = defs.resolve_job_def("cohort_job").execute_in_process(
        instance=instance, run_config=QUIET, partition_key=key, raise_on_error=False
    )
    assert f"offline evaluation of {DAY} is stale" in _failures(stale)["als_factors"]  # events accepted again
    lake = Lakehouse(root=str(home / "lakehouse"))
    assert published.cards(lake, DAY).is_served_by(served(home).current())
    assert (
        defs.resolve_job_def("evaluation_job")
        .execute_in_process(instance=instance, run_config=QUIET, partition_key=DAY.isoformat())
        .success
    )
    # the served payloads carry the champions' margins: chosen again, the served version is no longer current
    assert not published.cards(lake, DAY).is_served_by(served(home).current())
    assert (
        defs.resolve_job_def("cohort_job")
        .execute_in_process(instance=instance, run_config=QUIET, partition_key=key)
        .success
    )
    after = snapshot()
    for name in before:
        pd.testing.assert_frame_equal(before[name], after[name], obj=name)
    for name in names:  # a single cohort re-run alone rewrites its partition and leaves the others' files
        (mine_before, others_before), (mine_after, others_after) = files_before[name], files(name)
        assert others_after == others_before, name
        assert mine_after and not (mine_after & mine_before), name
    # the evaluation ran again, so the cards of the other cohorts must be rebuilt from its champions before the
    # day is published again (`require_gate`): run them all, as the cohort sensor would, for the later tests
    from reco_assets.constants import COHORTS
    from reco_assets.partitions import cohort_range_tags

    every = defs.resolve_job_def("cohort_job").execute_in_process(
        instance=instance, run_config=QUIET, tags=cohort_range_tags(DAY, list(COHORTS))
    )
    assert every.success


def test_offline_evaluation_measures_every_method_metric_and_segment(home):
    evaluation = table(home, "offline_evaluation")
    # The reported origins start at the first with a champion chosen before it. In the 14 tiny days the fitting
    # origin has no events yet, so the next one (trained through DAY - HOLDOUT - 3 x ORIGIN_DAYS) only
    # chooses: three are reported, the first trained through DAY - HOLDOUT - 2 x ORIGIN_DAYS.
    first_trained = DAY - timedelta(days=HOLDOUT + 2 * ORIGIN_DAYS)
    assert (evaluation.train_end_date == first_trained).all() and (evaluation.test_end_date == DAY).all()
    items = evaluation[evaluation.level.isin(["similar_items", "bought_together"])]
    replayed = evaluation[evaluation.level == "session_rerank"]
    evaluation = evaluation.drop(items.index).drop(replayed.index)
    assert set(evaluation.level) == {"subclass_brand", "style"}
    # the session re-ranking's replay: the daily and the re-ranked lists, MRR and hit rate at 20, per segment
    assert set(zip(replayed.method, replayed.metric, replayed.k)) == {
        (method, metric, 20) for method in ("daily", "reranked") for metric in ("hit_rate", "mrr")
    }
    assert set(replayed.segment) == {"one_event", "two_or_more_events"}
    assert replayed.value.between(0, 1).all() and (replayed.ci_low <= replayed.value).all()
    # the item-to-item lists, on the same reported origins: every method's hit rate and MRR at 10
    similar = items[items.level == "similar_items"]
    assert set(zip(similar.method, similar.metric, similar.k)) == {
        (method, metric, 10)
        for method in ("model", "session_neighbors", "popularity", "co_occurrence")
        for metric in ("hit_rate", "mrr")
    }
    together = items[items.level == "bought_together"]
    assert set(together.method) <= {"model", "co_purchase_popularity"}
    assert items.value.between(0, 1).all() and (items.ci_low <= items.value).all()
    # the served lists hold the session neighbours and more: they hit at least as often
    hit_rate = similar[similar.metric == "hit_rate"].set_index("method").value
    assert hit_rate["model"] >= hit_rate["session_neighbors"] > 0
    assert set(evaluation.method) == {
        "model",
        "blend",
        "published",
        "no_boost",
        "no_diversification",
        "cohort_scope",  # the other ALS scope than the default (global)
        "popularity",
        "cohort_popularity",
        "repeat",
        "random",
    }
    assert set(evaluation.metric) == {
        "precision",
        "recall",
        "ndcg",
        "map",
        "mrr",
        "hit_rate",
        "coverage",
        "novelty",
        "diversity",
    }
    assert set(evaluation.k) == {10, 50}
    assert {"all", "new_styles", "returning_styles", "little_history"} <= set(evaluation.segment)
    assert set(evaluation.segment) - {"all", "new_styles", "returning_styles", "little_history"} <= set(
        table(home, "member_cohorts").cohort
    )
    assert not evaluation.duplicated(["level", "segment", "method", "metric", "k"]).any()
    bounded = evaluation[~evaluation.metric.isin(["novelty", "diversity"])]
    assert bounded.value.between(0, 1).all()
    # scored members of the overall segment = members with a relevant interaction in the test window
    overall = evaluation.query("level == 'style' and segment == 'all'").members.unique()
    events = table(home, "raw_events", f"event_date > '{DAY - timedelta(days=HOLDOUT)}' AND event_date <= '{DAY}'")
    acted = set(events[events.event_type.isin(["purchase", "add_to_cart"])].member_id)
    assert len(overall) == 1 and 0 < overall[0] <= len(acted)


def test_a_backtest_scores_at_most_the_configured_members(home, spark):
    from reco_assets.evaluation.backtest import run_backtest

    lake = Lakehouse(root=str(home / "lakehouse"))
    everyone = table(home, "offline_evaluation").query("level == 'style' and segment == 'all'").members
    capped = SETTINGS.changed({"evaluation.max_members": 25, "evaluation.ablations": False, "evaluation.styles": False})
    backtest = run_backtest(spark, lake, DAY, capped, ablations=False, styles=False)
    assert backtest.sizes["members_in_test_window"] == everyone.iloc[0] > 25
    assert backtest.sizes["scored_members"] == len(backtest.members) == 25
    level = backtest.levels["subclass_brand"]
    assert set(level.relevant.member_id) <= set(backtest.members.member_id)  # relevance of the sample only
    assert all(set(r.member_id) <= set(backtest.members.member_id) for r in level.rankings.values())


def test_each_als_scope_ranks_in_the_evaluation_as_the_others_ablation(home, spark):
    """The backtest's scope ablation is the other scope's model: beside the global model (the default),
    `cohort_scope` ranks every member as the model of 25 separate cohort fits does, and beside those,
    `global_scope` ranks them as the global model does."""
    from reco_assets.evaluation.backtest import run_backtest

    lake = Lakehouse(root=str(home / "lakehouse"))
    runs = {}
    for scope in ("global", "cohort"):
        settings = SETTINGS.changed({"factor_model.scope": scope})
        runs[scope] = run_backtest(spark, lake, DAY, settings, ablations=True, styles=False)
    rankings = {scope: run.levels["subclass_brand"].rankings for scope, run in runs.items()}
    members = set(runs["global"].members.member_id)
    assert members == set(runs["cohort"].members.member_id) and members
    columns = ["member_id", "item_id", "rank"]
    for scope, other, ablation in (("global", "cohort", "cohort_scope"), ("cohort", "global", "global_scope")):
        assert set(rankings[scope]) >= {"model", ablation} and not {"cohort_scope", "global_scope"} <= set(
            rankings[scope]
        )
        pd.testing.assert_frame_equal(
            _ranked(rankings[scope][ablation], members)[columns], _ranked(rankings[other]["model"], members)[columns]
        )
    # and the two scopes' models differ: the test tells them apart
    assert not _ranked(rankings["global"]["model"], members)[columns].equals(
        _ranked(rankings["cohort"]["model"], members)[columns]
    )


def _ranked(ranking: pd.DataFrame, members: set) -> pd.DataFrame:
    return ranking[ranking.member_id.isin(members)].sort_values(["member_id", "rank"]).reset_index(drop=True)


def test_a_backtest_reads_a_training_days_stored_tables_only_while_they_are_current(home, spark, tmp_path):
    """The ratings and cohorts the pipeline stored for a day stand in for the backtest's own computation when
    that day's models carry the current settings' key and nothing they were computed from was written since:
    other settings, a day without models, or one day of their window's events written again make the
    backtest compute them (and fit the models) again."""
    import shutil

    from reco_assets.evaluation.backtest import stored_inputs

    shutil.copytree(home / "lakehouse", tmp_path / "lakehouse")
    lake = Lakehouse(root=str(tmp_path / "lakehouse"))
    key, lookback = SETTINGS.model_key(), SETTINGS.ratings.lookback_days
    stored = stored_inputs(spark, lake, DAY, key, lookback)
    assert stored is not None
    ratings, cohorts = (frame.toPandas() for frame in stored[:2])
    assert stored[2] == set(table(home, "member_cohorts", f"as_of_date = '{DAY}'").cohort)  # their models stored
    pair = ["member_id", "subclass_brand_id", "rating"]
    want = table(home, "implicit_ratings", f"as_of_date = '{DAY}'")
    assert set(ratings[pair].itertuples(index=False)) == set(want[pair].itertuples(index=False))
    want = table(home, "member_cohorts", f"as_of_date = '{DAY}'")[["member_id", "cohort"]]
    assert set(cohorts.itertuples(index=False)) == set(want.itertuples(index=False)) and len(cohorts) == len(want)

    assert stored_inputs(spark, lake, DAY, "other-settings", lookback) is None
    assert stored_inputs(spark, lake, DAY - timedelta(days=1), key, lookback) is None  # nothing stored that day
    rewritten = DAY - timedelta(days=5)  # inside the ratings' window: the same rows, written again
    events = lake.read_arrow("raw_events", partition={"event_date": rewritten})
    assert lake.write_partition("raw_events", events, {"event_date": rewritten}) == events.num_rows > 0
    seal(lake, [("raw_events", {"event_date": rewritten})])  # as ingestion does, last
    assert stored_inputs(spark, lake, DAY, key, lookback) is None


def test_no_training_read_of_the_backtest_sees_events_after_its_training_day(home, spark, tmp_path):
    """Purchases planted after the training day T (in the test window) change nothing a backtest trains on:
    every member's model ranking and the history baselines stay identical; nor the blend fitted on the
    origin a week before (its labels end on T), nor its rankings."""
    import shutil

    from pyspark.sql import functions as F

    from reco_assets.evaluation.backtest import run_backtest
    from reco_assets.evaluation.blend import fit_blend

    shutil.copytree(home / "lakehouse", tmp_path / "lakehouse")
    lake = Lakehouse(root=str(tmp_path / "lakehouse"))
    # the origin whose test window ends on T = DAY - 3 has training days in 14 days
    settings = SETTINGS.changed({"evaluation.ablations": False, "evaluation.styles": False})
    earlier = run_backtest(spark, lake, DAY - timedelta(days=3), settings, ablations=False, styles=False, samples=True)
    by_pair = ["member_id", "subclass_brand_id"]
    samples = earlier.samples.sort_values(by_pair, ignore_index=True)
    blend = fit_blend([samples])
    assert blend is not None and earlier.split.test_end == DAY - timedelta(days=3)
    before = run_backtest(spark, lake, DAY, settings, ablations=False, styles=False, blend=blend)
    planted_day = before.split.train_end + timedelta(days=2)
    day_rows = lake.read_spark(spark, "raw_events", partition={"event_date": planted_day})
    style = day_rows.where(F.col("style_id").isNotNull()).first()
    # Planted for the scored members only: the same members are ranked, in the same blocks, so any change
    # in their rankings could only come from training data.
    planted = (
        spark.createDataFrame(before.members[["member_id"]])
        .crossJoin(spark.range(20).withColumnRenamed("id", "n"))
        .select(
            F.concat(F.lit("planted-"), "member_id", F.lit("-"), "n").alias("event_id"),
            F.lit(style["event_time"]).alias("event_time"),
            F.lit(planted_day).alias("event_date"),
            "member_id",
            F.lit("purchase").alias("event_type"),
            *(
                F.lit(style[c]).alias(c)
                for c in day_rows.columns
                if c not in ("event_id", "event_time", "event_date", "member_id", "event_type")
            ),
        )
        .select(*day_rows.columns)
    )
    lake.stage(day_rows.unionByName(planted), "raw_events", {"event_date": planted_day}).commit()
    assert lake.rows("raw_events", {"event_date": planted_day}) > len(before.members) * 20

    refit = run_backtest(spark, lake, DAY - timedelta(days=3), settings, ablations=False, styles=False, samples=True)
    pd.testing.assert_frame_equal(refit.samples.sort_values(by_pair, ignore_index=True), samples)
    after = run_backtest(spark, lake, DAY, settings, ablations=False, styles=False, blend=blend)
    assert after.sizes["training_members"] == before.sizes["training_members"]
    assert after.sizes["holdout_interactions"] > before.sizes["holdout_interactions"]  # the test side sees them
    pd.testing.assert_frame_equal(after.members, before.members)
    scored = set(before.members.member_id)
    for method in ("model", "blend", "repeat", "popularity", "cohort_popularity"):
        old, new = (_ranked(b.levels["subclass_brand"].rankings[method], scored) for b in (before, after))
        pd.testing.assert_frame_equal(old, new, obj=method)


def _run(home: Path, job: str, partition_key, settings: RecoSettings | None = None, **resources):
    defs = build_definitions(local_resources(home, settings or SETTINGS) | resources)
    return defs.resolve_job_def(job).execute_in_process(
        instance=dagster_instance(home), run_config=QUIET, partition_key=partition_key, raise_on_error=False
    )


def _failures(result) -> dict[str, str]:
    return {
        e.step_key: e.event_specific_data.error.message
        for e in result.all_events
        if e.event_type_value == "STEP_FAILURE"
    }


def _files(home: Path, name: str) -> set[str]:
    return set(DeltaTable(str(home / "lakehouse" / name)).file_uris())


def test_a_failing_blocking_check_leaves_the_published_partition_unchanged(home, tmp_path):
    """A day whose landing file holds nothing acceptable fails `not_empty`: neither events table is touched."""
    from reco_assets.resources.landing import LandingResource

    (tmp_path / "events").mkdir()
    (tmp_path / "events" / f"{DAY}.jsonl").write_text('{"event_id": "x"}\nnot json\n')
    before = {name: (_files(home, name), table(home, name)) for name in ("raw_events", "raw_events_rejected")}
    defs = build_definitions(local_resources(home) | {"landing": LandingResource(root=str(tmp_path))})
    events_only = defs.resolve_job_def("ingest_job").get_subset(
        asset_selection={AssetKey("raw_events"), AssetKey("raw_events_rejected")}
    )  # the day's published catalog is read, not written again (that would make its evaluation stale)
    result = events_only.execute_in_process(
        instance=dagster_instance(home), run_config=QUIET, partition_key=DAY.isoformat(), raise_on_error=False
    )
    assert not result.success
    assert "not published: blocking check(s) failed: not_empty" in _failures(result)["raw_events"]
    evaluations = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert evaluations["not_empty"] is False and evaluations["records_reconcile"] is True
    for name, (files, rows) in before.items():
        assert _files(home, name) == files, name
        pd.testing.assert_frame_equal(table(home, name), rows, obj=name)


def test_a_missing_upstream_partition_fails_with_its_name(home):
    """The day before the last has events but no ratings: its cohorts cannot be assigned, and the step says why."""
    day = DAY - timedelta(days=1)
    defs = build_definitions(local_resources(home))
    result = (
        defs.resolve_job_def("daily_job")
        .get_subset(asset_selection={AssetKey("member_cohorts")})
        .execute_in_process(
            instance=dagster_instance(home), run_config=QUIET, partition_key=day.isoformat(), raise_on_error=False
        )
    )
    assert not result.success
    assert f"'implicit_ratings' has no partition as_of_date={day}" in _failures(result)["member_cohorts"]


def test_a_cohort_run_before_its_evaluation_publishes_nothing(home):
    """The day before the last has no offline evaluation: the cohort run stops at its first step, with the reason,
    and writes no factors, cards or model version."""
    day = DAY - timedelta(days=1)
    factors_before = _files(home, "als_factors")
    result = _run(home, "cohort_job", MultiPartitionKey({"date": day.isoformat(), "cohort": "women_1"}))
    assert not result.success
    (failed,) = _failures(result).items()
    assert failed[0] == "als_factors" and f"models of {day} held back: the day has no offline evaluation" in failed[1]
    assert _files(home, "als_factors") == factors_before
    assert table(home, "member_cards", f"as_of_date = '{day}'").empty


def test_the_freshness_check_says_whether_the_days_cards_are_ready(home):
    defs = build_definitions(local_resources(home))
    job = defs.resolve_job_def("cards_freshness_job")
    for day, ready in ((DAY, True), (DAY - timedelta(days=1), False)):
        result = job.execute_in_process(
            instance=dagster_instance(home), run_config=QUIET, tags={"reco/as_of": str(day)}
        )
        (check,) = result.get_asset_check_evaluations()
        assert check.passed is ready, day


def test_a_release_refresh_brings_new_styles_in_and_sold_out_styles_out(home):
    """The 11:00 snapshot of the next day (written by the simulator) with one carded style sold out on purpose:
    the release's cards hold styles launched since the batch, not the sold-out one, and every style is on sale
    with stock at 11:00 (checked here with pandas against the snapshot)."""
    from reco_assets.resources.landing import release_file
    from reco_assets.serving.published import published_release

    morning = table(home, "member_cards")
    carded = pd.Series([s for ids in morning.style_ids for s in ids]).value_counts()
    path = release_file(home / "landing", DAY, "1100")
    snapshot = pd.read_csv(path)
    sold_out = int(next(style for style in carded.index if style in set(snapshot.style_id)))  # the most carded on sale
    snapshot.loc[snapshot.style_id == sold_out, "qty_on_hand"] = 0
    snapshot.to_csv(path, index=False)

    assert _run(home, "release_job", MultiPartitionKey({"date": DAY.isoformat(), "release": "1100"})).success
    serving = served(home).current()  # the batch's version, until the release's cards are loaded
    assert serving.source == "member_cards" and str(sold_out) in served(home).withdrawn(serving.version).style_ids
    released = table(home, "release_cards", f"as_of_date = '{DAY}' AND release = '1100'")
    styles = {s for ids in released.style_ids for s in ids}
    at = pd.Timestamp(f"{DAY + timedelta(days=1)} 11:00", tz="America/New_York").tz_convert("UTC")
    on_sale = snapshot.assign(
        live_from=pd.to_datetime(snapshot.live_from, utc=True), live_until=pd.to_datetime(snapshot.live_until, utc=True)
    ).set_index("style_id")
    rows = on_sale.loc[sorted(styles)]
    assert ((rows.live_from <= at) & (rows.live_until > at) & (rows.qty_on_hand >= 3)).all()
    assert sold_out not in styles
    launched_since = set(on_sale.index[(on_sale.live_from >= pd.Timestamp(DAY + timedelta(days=1), tz="UTC"))])
    assert styles & launched_since  # new styles of the serving day are in the cards
    assert set(released.member_id) == set(morning.member_id)  # the day's affinities, every member
    assert published_release(Lakehouse(root=str(home / "lakehouse")), DAY) == "1100"
    with pytest.raises(SystemExit) as exit_code:  # the next release, from the command line
        main(["release", "--home", str(home), "--release", "1500"])
    assert exit_code.value.code == 0
    assert published_release(Lakehouse(root=str(home / "lakehouse")), DAY) == "1500"
    assert served(home).current().source == "release_cards:1500"  # the command loaded the release's cards
    later = table(home, "release_cards", f"as_of_date = '{DAY}' AND release = '1500'")
    assert not later.empty and not table(home, "release_cards", f"as_of_date = '{DAY}' AND release = '1100'").empty


def test_a_broken_model_loses_to_a_baseline_which_is_then_published(home):
    """An untrained model (the ALS engine with zero iterations: random factors), with the blend left out of the
    candidates, loses every cohort to a baseline; the day is not held back: its cards are built from the
    baseline's ranking, which `diversified_affinities` names, and the published model version says so."""
    import mlflow

    from reco_assets.pipeline.methods import BASELINE_METHODS

    untrained = SETTINGS.changed(
        {
            "factor_model.engine": "implicit",
            "evaluation.ablations": False,
            "evaluation.styles": False,
            "evaluation.champion_methods": ["popularity", "cohort_popularity", "repeat", "no_boost", "model"],
        }
    ).changed({"factor_model.max_iter": 0})
    evaluated = _run(home, "evaluation_job", DAY.isoformat(), untrained)
    (chosen,) = evaluated.get_asset_check_evaluations()
    assert chosen.passed and evaluated.success
    champions = table(home, "ranking_champions", f"as_of_date = '{DAY}'").set_index("cohort")
    assert set(champions.method) <= set(BASELINE_METHODS)  # random factors lose to every baseline
    overall = champions.loc["all"]
    assert overall.ndcg >= overall.versus_ndcg and overall.ci_low <= overall.ndcg <= overall.ci_high

    cohort = table(home, "member_cohorts").cohort.value_counts().idxmax()
    key = MultiPartitionKey({"date": DAY.isoformat(), "cohort": cohort})
    assert _run(home, "cohort_job", key, untrained).success
    where = f"as_of_date = '{DAY}' AND cohort = '{cohort}'"
    ranking = table(home, "diversified_affinities", where)
    method = champions.loc[cohort, "method"]
    assert set(ranking.method) == {method}
    # the published ranking is the baseline's, by hand: for popularity, every member gets the same list
    if method in ("popularity", "cohort_popularity"):  # one list per cohort
        firsts = ranking[ranking["rank"] <= 5].groupby("member_id").subclass_brand_id.apply(tuple)
        assert firsts.nunique() == 1
    cards = table(home, "member_cards", where)
    assert set(cards.member_id) == set(ranking.member_id)  # published, not held back
    mlflow.set_tracking_uri(f"sqlite:///{home / 'mlflow.db'}")
    version = mlflow.MlflowClient().get_model_version_by_alias(f"reco_factors_{cohort}", "published")
    assert version.tags["published_method"] == method
    registered = mlflow.MlflowClient().get_registered_model(f"reco_factors_{cohort}")
    assert {a: v for a, v in registered.aliases.items() if a.startswith("published_")} == {
        f"published_{method}": version.version
    }
