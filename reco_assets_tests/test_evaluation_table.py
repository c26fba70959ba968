"""The long `offline_evaluation` table assembled from a backtest's lists, by hand."""

from datetime import date

import pandas as pd
import pyarrow as pa
import pytest

from reco_assets.evaluation.backtest import Backtest, Level, holdout_split
from reco_assets.evaluation.report import SCHEMA, evaluation_table, quality_gate

DAY = date(2026, 10, 31)


def ranking(lists: dict[int, list[int]]) -> pd.DataFrame:
    return pd.DataFrame(
        [(m, item, 0.0, rank) for m, items in lists.items() for rank, item in enumerate(items, 1)],
        columns=["member_id", "item_id", "score", "rank"],
    )


def backtest() -> Backtest:
    members = pd.DataFrame({"member_id": [1, 2], "cohort": ["women_1", "men_3"]})
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


def test_segments_methods_and_values():
    table = evaluation_table(backtest(), DAY, [1, 2], "key")
    assert set(table.segment) == {"all", "new_styles", "returning_styles", "women_1", "men_3"}
    assert (table.train_end_date == date(2026, 10, 24)).all() and (table.as_of_date == DAY).all()
    assert value(table, "all", "model", "ndcg", 1) == 1.0  # both members' first item is relevant
    assert value(table, "all", "repeat", "ndcg", 1) == 0.0
    assert value(table, "all", "repeat", "mrr", 2) == pytest.approx(0.5)
    assert value(table, "new_styles", "model", "recall", 1) == 1.0  # member 2 only
    assert table.query("segment == 'new_styles'")["members"].unique().tolist() == [1]
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


def test_gate_on_the_table():
    table = evaluation_table(backtest(), DAY, [10], "key")
    verdict = quality_gate(table, margin=0.1)
    assert verdict.passed and verdict.best_baseline == "repeat" and verdict.model == pytest.approx(1.0)
    empty = evaluation_table(
        Backtest(holdout_split(DAY, 7), pd.DataFrame(columns=["member_id", "cohort"])), DAY, [10], "key"
    )
    assert empty.empty and not quality_gate(empty, 0.1).evaluated
    assert pa.Table.from_pandas(empty, schema=SCHEMA, preserve_index=False).num_rows == 0
