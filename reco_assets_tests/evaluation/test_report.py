"""The long `offline_evaluation` table and the day's champions assembled from backtests' lists, by hand."""

import math
from datetime import date, timedelta

import pandas as pd
import pyarrow as pa
import pytest

from reco_assets.constants import COHORTS
from reco_assets.evaluation import champion
from reco_assets.evaluation.backtest import Backtest, Level, holdout_split
from reco_assets.evaluation.report import SCHEMA, evaluation_table, gate_verdict

DAY = date(2026, 10, 31)
G = 1 / math.log2(3)  # NDCG of a single relevant item at rank 2


def ranking(lists: dict[int, list[int]]) -> pd.DataFrame:
    return pd.DataFrame(
        [(m, item, 0.0, rank) for m, items in lists.items() for rank, item in enumerate(items, 1)],
        columns=["member_id", "item_id", "score", "rank"],
    )


def backtest() -> Backtest:
    # member 1 rated no group in training (little history), member 2 rated five
    members = pd.DataFrame({"member_id": [1, 2], "cohort": ["women_1", "men_3"], "rated_groups": [0, 5]})
    result = Backtest(holdout_split(DAY, 7), members)
    result.levels["subclass_brand"] = Level(
        rankings={
            "model": ranking({1: [10, 11], 2: [12, 13]}),
            "repeat": ranking({1: [11, 10], 2: [13, 12]}),
        },
        # member 1 bought 10 (a returning style's group); member 2 bought 12 (a new style's group)
        relevant=pd.DataFrame({"member_id": [1, 2], "item_id": [10, 12], "new": [False, True]}),
        recommendable=4,
        popularity=pd.Series({10: 0.5, 11: 0.25, 12: 0.25, 13: 0.125}),
        unseen_share=0.1,
        item_class=pd.Series({10: "a", 11: "b", 12: "a", 13: "a"}),
    )
    return result


def value(table, segment, method, metric, k):
    row = table.query("segment == @segment and method == @method and metric == @metric and k == @k")
    assert len(row) == 1
    return row["value"].item()


def members(table, segment, method):
    counts = table.query("segment == @segment and method == @method")["members"].unique().tolist()
    assert len(counts) == 1
    return counts[0]


def test_segments_methods_and_values():
    table, _ = evaluation_table([backtest()], DAY, [1, 2, 10], "key")
    assert set(table.segment) == {"all", "new_styles", "returning_styles", "little_history", "women_1", "men_3"}
    assert set(table.method) == {"model", "repeat"}  # a single backtest: nothing published before it
    assert (table.train_end_date == date(2026, 10, 24)).all() and (table.as_of_date == DAY).all()
    assert (table.test_end_date == DAY).all() and (table.model_key == "key").all()
    assert value(table, "all", "model", "ndcg", 1) == 1.0  # both members' first item is relevant
    assert value(table, "all", "repeat", "ndcg", 1) == 0.0
    assert value(table, "all", "repeat", "mrr", 2) == pytest.approx(0.5)
    assert value(table, "new_styles", "model", "recall", 1) == 1.0  # member 2 only
    assert table.query("segment == 'new_styles'")["members"].unique().tolist() == [1]
    assert members(table, "little_history", "repeat") == 1  # member 1 only (0 rated groups <= 2)
    assert value(table, "little_history", "repeat", "ndcg", 10) == pytest.approx(G)
    assert value(table, "all", "model", "coverage", 1) == pytest.approx(2 / 4)
    assert value(table, "men_3", "model", "diversity", 2) == 1.0  # 12 and 13 are both class a
    assert value(table, "all", "model", "novelty", 1) == pytest.approx((1.0 + 2.0) / 2)
    pa.Table.from_pandas(table, schema=SCHEMA, preserve_index=False)  # the stored types
    # every mean over members has its bootstrap interval around it; coverage, not a mean, has none
    means = table[table.metric != "coverage"]
    assert means.ci_low.notna().all() and (means.ci_low <= means.value + 1e-12).all()
    assert (means.value <= means.ci_high + 1e-12).all()
    assert table[table.metric == "coverage"].ci_low.isna().all()
    # both members hit within 2 (mrr@2 is 0.5 for each): every resample's mean is 1
    row = table.query("segment == 'all' and method == 'repeat' and metric == 'hit_rate' and k == 2")
    assert (row.ci_low.item(), row.value.item(), row.ci_high.item()) == (1.0, 1.0, 1.0)


def test_the_champions_of_a_single_backtest():
    _, champions = evaluation_table([backtest()], DAY, [10], "key")
    assert champions.columns.tolist() == champion.COLUMNS
    assert champions["cohort"].tolist() == ["all", *COHORTS]
    # two scored members, fewer than min_members (50): every cohort takes the choice over everyone
    assert (champions["method"] == "model").all() and (champions["scope"] == "all").all()
    overall = champions.iloc[0]
    assert overall["ndcg"] == 1.0 and overall["versus"] == "repeat" and overall["versus_ndcg"] == pytest.approx(G)
    assert overall["margin"] == pytest.approx(1 - G) and overall["members"] == 2
    assert (overall["best_baseline"], overall["best_baseline_ndcg"]) == ("repeat", pytest.approx(G))
    # with min_members 1, each cohort chooses on its own member
    _, own = evaluation_table([backtest()], DAY, [10], "key", min_members=1)
    women = own[own["cohort"] == "women_1"].iloc[0]
    assert (women["method"], women["scope"], women["members"]) == ("model", "cohort", 1)
    verdict = gate_verdict(champions)
    assert verdict.passed and verdict.champion == "model" and verdict.best_baseline == "repeat"


def test_a_backtest_without_members_has_no_table_and_no_champion():
    empty = Backtest(holdout_split(DAY, 7), pd.DataFrame(columns=["member_id", "cohort", "rated_groups"]))
    table, champions = evaluation_table([empty], DAY, [10], "key")
    assert table.empty and champions.empty and not gate_verdict(champions).evaluated
    assert pa.Table.from_pandas(table, schema=SCHEMA, preserve_index=False).num_rows == 0


# --- a rolling backtest: three origins, the first only fits -------------------------------------------


def origin(day: date, rated: dict[int, int], model: dict[int, list[int]], repeat: dict[int, list[int]]) -> Backtest:
    """A backtest of `day` whose members (`rated`: member -> rated groups) each bought group 10 + member."""
    cohorts = {1: "women_1", 2: "men_3", 3: "women_1", 4: "men_3"}
    scored = pd.DataFrame(
        {"member_id": list(rated), "cohort": [cohorts[m] for m in rated], "rated_groups": list(rated.values())}
    )
    result = Backtest(holdout_split(day, 7), scored)
    result.levels["subclass_brand"] = Level(
        rankings={"model": ranking(model), "repeat": ranking(repeat)},
        relevant=pd.DataFrame({"member_id": list(rated), "item_id": [10 + m for m in rated], "new": False}),
        recommendable=20,
        popularity=pd.Series({i: 0.25 for i in range(10, 20)}),
        unseen_share=0.1,
        item_class=pd.Series({i: "a" for i in range(10, 20)}),
    )
    return result


def rolling() -> list[Backtest]:
    """NDCG@10 per member (hit at rank 1: 1, at rank 2: G, none: 0), by origin:

    origin 0 (fits only)   model: 1 -> G, 2 -> G          repeat: 1 -> 1, 2 -> 1      repeat wins
    origin 1               model: 1, 2, 3 -> 1            repeat: 1, 2, 3 -> G        model wins
    origin 2               model: 1 -> G, 4 -> 0          repeat: 1 -> 1, 4 -> 1

    Chosen on origin 0: repeat (1 > G); on origins 0 and 1: model ((3 + 2G) / 5 > (2 + 3G) / 5).
    """
    day0, day1, day2 = DAY - timedelta(days=14), DAY - timedelta(days=7), DAY
    return [
        origin(day0, {1: 0, 2: 5}, {1: [99, 11], 2: [99, 12]}, {1: [11, 99], 2: [12, 99]}),
        origin(
            day1,
            {1: 1, 2: 5, 3: 3},
            {1: [11, 99], 2: [12, 99], 3: [13, 99]},
            {1: [99, 11], 2: [99, 12], 3: [99, 13]},
        ),
        origin(day2, {1: 3, 4: 2}, {1: [99, 11], 4: [98, 99]}, {1: [11, 99], 4: [14, 99]}),
    ]


def test_pooled_figures_average_the_reported_origins_only():
    backtests = rolling()
    table, _ = evaluation_table(backtests, DAY, [10], "key")
    assert (table.train_end_date == DAY - timedelta(days=14)).all()  # the first reported origin's
    assert (table.test_end_date == DAY).all()
    # origins 1 and 2: five scored rows (member 1 counts at both); origin 0 is left out
    assert members(table, "all", "model") == 5
    assert value(table, "all", "model", "ndcg", 10) == pytest.approx((3 + G + 0) / 5)
    assert value(table, "all", "repeat", "ndcg", 10) == pytest.approx((3 * G + 2) / 5)
    assert value(table, "all", "model", "hit_rate", 10) == pytest.approx(4 / 5)
    # women_1: members 1 and 3 at origin 1, member 1 at origin 2
    assert members(table, "women_1", "model") == 3
    assert value(table, "women_1", "model", "ndcg", 10) == pytest.approx((1 + 1 + G) / 3)


def test_little_history_holds_the_members_with_few_rated_groups_at_each_origin():
    table, _ = evaluation_table(rolling(), DAY, [10], "key", cold_start=2)
    # origin 1: member 1 (1 rated group; member 3 has 3, member 2 five); origin 2: member 4 (2; member 1 now 3)
    assert members(table, "little_history", "model") == 2
    assert value(table, "little_history", "model", "ndcg", 10) == pytest.approx((1 + 0) / 2)
    assert value(table, "little_history", "repeat", "ndcg", 10) == pytest.approx((G + 1) / 2)
    wider, _ = evaluation_table(rolling(), DAY, [10], "key", cold_start=3)  # members 1, 3 and 1, 4
    assert members(wider, "little_history", "model") == 4


def test_published_scores_each_origin_with_the_champion_chosen_before_it():
    table, champions = evaluation_table(rolling(), DAY, [10], "key")
    # origin 1 publishes repeat (chosen on origin 0): G for each of its three members;
    # origin 2 publishes the model (chosen on origins 0 and 1): G for member 1, 0 for member 4
    published = value(table, "all", "published", "ndcg", 10)
    assert published == pytest.approx((3 * G + G + 0) / 5)
    assert published != pytest.approx(value(table, "all", "model", "ndcg", 10))
    assert published != pytest.approx(value(table, "all", "repeat", "ndcg", 10))
    assert members(table, "all", "published") == 5
    assert value(table, "all", "published", "hit_rate", 10) == pytest.approx(4 / 5)
    assert value(table, "little_history", "published", "ndcg", 10) == pytest.approx((G + 0) / 2)
    assert value(table, "women_1", "published", "ndcg", 10) == pytest.approx((G + G + G) / 3)
    # the day's champion (repeat leads the model on origins 1 and 2, and on all three) is not `published`
    assert set(champions["method"]) == {"repeat"} and set(champions["versus"]) == {"model"}
