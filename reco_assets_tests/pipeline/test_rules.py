import itertools
import random

import pytest

from reco_assets.pipeline.rules import co_purchase_rules, purchase_baskets
from reco_assets.settings import RuleSettings
from reco_assets_tests.conftest import rows, utc

EVENTS = "member_id long, session_id string, event_type string, subclass_brand_id long, event_time timestamp"
A, B, C, D, E, F, G = 10, 20, 30, 40, 50, 60, 70


def _events(baskets: list[list[int]], kind: str = "purchase") -> list[tuple]:
    """Each basket a session of its own member, its groups bought a minute apart in the listed order."""
    return [
        (member, "s", kind, group, utc(2026, 10, 30, 10, minute))
        for member, basket in enumerate(baskets, start=1)
        for minute, group in enumerate(basket)
    ]


def _rules(spark, events, settings):
    baskets = purchase_baskets(spark.createDataFrame(events, EVENTS), settings.max_basket_items)
    return rows(
        co_purchase_rules(baskets, settings), "antecedent", "rank", "consequent", "baskets", "confidence", "lift"
    )


def test_a_basket_is_a_sessions_distinct_groups_the_first_bought_up_to_the_cap(spark):
    events = _events([[G, E, F, E]]) + [
        (1, "s", "product_view", A, utc(2026, 10, 30, 9)),
        (1, "t", "purchase", B, None),
    ]
    baskets = purchase_baskets(spark.createDataFrame(events, EVENTS), 2)
    assert rows(baskets, "member_id", "session_id", "items") == [(1, "s", [G, E]), (1, "t", [B])]


def test_hand_built_baskets_give_the_hand_computed_rules(spark):
    """Six baskets: A 4, B 4, C 2, D 2; A+B 3, A+C 2, the rest once. With two baskets at least: A => B
    (confidence 3/4, lift 3/4 / (4/6) = 1.125) before A => C (1/2, lift 1.5: 0.75 < 0.84), C => A (1, 1.5)."""
    baskets = [[A, B, C], [A, B], [A, B, D], [A, C], [B], [D]]
    settings = RuleSettings(min_baskets=2, min_confidence=0.01)
    got = _rules(spark, _events(baskets) + _events([[C, D]], "product_view"), settings)
    assert [r[:4] for r in got] == [([A], 1, B, 3), ([A], 2, C, 2), ([B], 1, A, 3), ([C], 1, A, 2)]
    assert [x for r in got for x in r[4:]] == pytest.approx([0.75, 1.125, 0.5, 1.5, 0.75, 1.125, 1.0, 1.5])


def test_confidence_and_the_consequents_cap_prune(spark):
    baskets = [[A, B, C], [A, B], [A, B, D], [A, C], [B], [D]]
    confident = RuleSettings(min_baskets=2, min_confidence=0.6)
    assert [r[:3] for r in _rules(spark, _events(baskets), confident)] == [([A], 1, B), ([B], 1, A), ([C], 1, A)]
    one = RuleSettings(min_baskets=2, min_confidence=0.01, consequents_per_antecedent=1)
    assert [r[:3] for r in _rules(spark, _events(baskets), one)] == [([A], 1, B), ([B], 1, A), ([C], 1, A)]
    assert _rules(spark, _events(baskets), RuleSettings(min_baskets=4, min_confidence=0.01)) == []


def _reference(baskets: list[list[int]], settings: RuleSettings) -> list[tuple]:
    """The rules by plain Python: every itemset of up to max_antecedent_items + 1 groups counted."""
    held = [set(b[: settings.max_basket_items]) for b in baskets]
    counts: dict = {}
    for items in held:
        for size in range(1, settings.max_antecedent_items + 2):
            for subset in itertools.combinations(sorted(items), size):
                counts[subset] = counts.get(subset, 0) + 1
    ranked: dict = {}
    for itemset, together in counts.items():
        if len(itemset) < 2 or together < settings.min_baskets:
            continue
        for consequent in itemset:
            antecedent = tuple(i for i in itemset if i != consequent)
            confidence = together / counts[antecedent]
            lift = confidence / (counts[(consequent,)] / len(held))
            if confidence >= settings.min_confidence:
                ranked.setdefault(antecedent, []).append((-lift * confidence, consequent, together, confidence, lift))
    out = []
    for antecedent, rules in ranked.items():
        for rank, (_, consequent, together, confidence, lift) in enumerate(
            sorted(rules)[: settings.consequents_per_antecedent], start=1
        ):
            out.append((list(antecedent), rank, consequent, together, confidence, lift))
    return sorted(out)


@pytest.mark.parametrize("seed", [3, 4])
def test_random_baskets_agree_with_a_plain_python_count(spark, seed):
    rng = random.Random(seed)
    popular = list(range(1, 13))
    baskets = [
        list(dict.fromkeys(rng.choices(popular, weights=range(12, 0, -1), k=rng.randint(1, 9)))) for _ in range(400)
    ]
    settings = RuleSettings(min_baskets=8, min_confidence=0.2, max_basket_items=5, consequents_per_antecedent=3)
    got, want = _rules(spark, _events(baskets), settings), _reference(baskets, settings)
    assert len(want) > 30 and any(len(r[0]) == 2 for r in want)
    assert [r[:4] for r in got] == [r[:4] for r in want]
    assert [x for r in got for x in r[4:]] == pytest.approx([x for r in want for x in r[4:]])
