"""The invariant checks must catch broken tables, not only pass on good ones."""

from datetime import date, datetime, timezone

import pyarrow as pa

from reco_assets import invariants


def test_duplicate_event_ids():
    assert invariants.duplicate_event_ids(pa.table({"event_id": ["a", "b", "c"]})) == 0
    assert invariants.duplicate_event_ids(pa.table({"event_id": ["a", "b", "a"]})) == 1


def test_days_not_reconciled():
    d1, d2 = date(2026, 10, 30), date(2026, 10, 31)
    read = pa.table({"event_date": [d1, d2], "records": [3, 1]})
    assert (
        invariants.days_not_reconciled(read, pa.table({"event_date": [d1, d1, d2]}), pa.table({"event_date": [d1]}))
        == 0
    )
    assert invariants.days_not_reconciled(read, pa.table({"event_date": [d1, d1]}), pa.table({"event_date": [d1]})) == 1
    assert (
        invariants.days_not_reconciled(read, pa.table({"event_date": [d1, d1, d2, d2]}), pa.table({"event_date": [d1]}))
        == 1
    )


def test_one_cohort_per_rated_member():
    ratings = pa.table({"member_id": [1, 1, 2, 3]})
    assert invariants.members_without_one_cohort(ratings, pa.table({"member_id": [1, 2, 3]})) == 0
    assert invariants.members_without_one_cohort(ratings, pa.table({"member_id": [1, 2]})) == 1  # 3 has none
    assert invariants.members_without_one_cohort(ratings, pa.table({"member_id": [1, 2, 3, 3]})) == 1  # 3 has two
    assert invariants.members_without_one_cohort(ratings, pa.table({"member_id": [1, 2, 3, 4]})) == 1  # 4 unrated


def test_non_finite_factors():
    good = pa.table({"factors": pa.array([[0.1, -2.0], [3.0, 4.0]], pa.list_(pa.float32()))})
    bad = pa.table(
        {"factors": pa.array([[0.1, float("nan")], [float("inf"), 4.0], [1.0, 1.0]], pa.list_(pa.float32()))}
    )
    assert invariants.non_finite_factors(good) == 0
    assert invariants.non_finite_factors(bad) == 2


def test_rank_violations():
    def table(ranks, values):
        return pa.table({"member_id": [1] * len(ranks), "rank": ranks, "prediction": values})

    assert invariants.rank_violations(table([1, 2, 3], [0.9, 0.9, 0.1]), "prediction") == 0
    assert invariants.rank_violations(table([1, 3, 4], [0.9, 0.5, 0.1]), "prediction") == 1  # gap
    assert invariants.rank_violations(table([1, 2, 3], [0.9, 0.95, 0.1]), "prediction") == 1  # rises


# hierarchy keys (`level_key`): the level's path from the division, as JSON text
MEN_TEES = '["men","tops","Tees"]'
WOMEN_TEES = '["women","tops","Tees"]'
MEN_GRAPHIC_TEES = '["men","tops","Tees","Graphic Tees"]'
WOMEN_GRAPHIC_TEES = '["women","tops","Tees","Graphic Tees"]'


def test_boosts_outside_intent():
    groups = pa.table(
        {
            "subclass_brand_id": [1, 2, 3, 4],
            "subclass": ["a", "b", "c", "d"],
            "subclass_key": ['["w","x","y","a"]', '["w","x","y","b"]', '["w","x","y","c"]', '["w","x","y","d"]'],
        }
    )
    boosted = pa.table({"member_id": [1, 1, 1, 1], "subclass_brand_id": [1, 2, 3, 4], "boost": [0.5, 0.5, 0.5, 0.0]})
    assert invariants.boosts_outside_intent(boosted, groups, 3) == 0
    assert invariants.boosts_outside_intent(boosted, groups, 2) == 1


def test_boosts_outside_intent_count_subclasses_by_key_not_name():
    # groups 1, 2: men's Graphic Tees; 3, 4: women's Graphic Tees (same subclass and class names)
    groups = pa.table(
        {
            "subclass_brand_id": [1, 2, 3, 4],
            "subclass": ["Graphic Tees"] * 4,
            "subclass_key": [MEN_GRAPHIC_TEES, MEN_GRAPHIC_TEES, WOMEN_GRAPHIC_TEES, WOMEN_GRAPHIC_TEES],
        }
    )
    # member 1: boosts in both divisions' Graphic Tees (two subclasses); member 2: two groups of one subclass
    boosted = pa.table(
        {
            "member_id": [1, 1, 2, 2, 2],
            "subclass_brand_id": [1, 3, 1, 2, 3],
            "boost": [0.5, 0.5, 0.5, 0.5, 0.0],
        }
    )
    assert invariants.boosts_outside_intent(boosted, groups, 1) == 1
    assert invariants.boosts_outside_intent(boosted, groups, 2) == 0


def test_classes_over_limit():
    x, y = '["d","dep","x"]', '["d","dep","y"]'
    diversified = pa.table({"member_id": [1, 1, 1, 2], "class_key": [x, x, y, x]})
    assert invariants.classes_over_limit(diversified, 2) == 0
    assert invariants.classes_over_limit(diversified, 1) == 1


def test_classes_over_limit_count_classes_by_key_not_name():
    # member 1: one group in men's Tees and one in women's Tees; member 2: two in women's Tees
    diversified = pa.table(
        {
            "member_id": [1, 1, 2, 2],
            "class": ["Tees"] * 4,
            "class_key": [MEN_TEES, WOMEN_TEES, WOMEN_TEES, WOMEN_TEES],
        }
    )
    assert invariants.classes_over_limit(diversified, 1) == 1  # member 2 only
    assert invariants.classes_over_limit(diversified, 2) == 0


def test_styles_not_saleable():
    utc = timezone.utc
    catalog = pa.table(
        {
            "style_id": [1, 2, 3],
            "live_from": pa.array([datetime(2026, 10, 30, tzinfo=utc)] * 3, pa.timestamp("us", tz="UTC")),
            "live_until": pa.array(
                [
                    datetime(2026, 11, 2, tzinfo=utc),
                    datetime(2026, 10, 30, 12, tzinfo=utc),
                    datetime(2026, 11, 2, tzinfo=utc),
                ],
                pa.timestamp("us", tz="UTC"),
            ),
            "qty_on_hand": [5, 5, 1],
        }
    )
    start, end = datetime(2026, 10, 31, tzinfo=utc), datetime(2026, 11, 1, tzinfo=utc)
    assert invariants.styles_not_saleable(pa.table({"style_id": [1]}), catalog, start, end, 3) == 0
    # 2 ended before the day, 3 is nearly sold out, 4 is unknown
    assert invariants.styles_not_saleable(pa.table({"style_id": [1, 2, 3, 4]}), catalog, start, end, 3) == 3


def test_card_violations_and_styles():
    cards = pa.table({"feed": ["products", "brands", "products"], "style_ids": [[1, 2, 3], [4, 4], list(range(400))]})
    assert invariants.card_violations(cards, 300) == 2
    assert sorted(invariants.card_styles(pa.table({"style_ids": [[1, 2], [2, 3]]})).column("style_id").to_pylist()) == [
        1,
        2,
        3,
    ]


def test_neighbor_violations():
    good = {
        "subclass_brand_id": [1, 1, 1, 2],
        "neighbor_id": [2, 3, 4, 1],
        "rank": [1, 2, 3, 1],
        "score": [0.9, 0.5, 0.5, 0.9],
        "co_sessions": [7, 3, 4, 7],
    }
    assert invariants.neighbor_violations(pa.table(good), 3) == 0

    def broken(column: str, values: list) -> int:
        return invariants.neighbor_violations(pa.table(good | {column: values}), 3)

    assert broken("neighbor_id", [2, 1, 4, 1]) == 1  # its own neighbour
    assert broken("neighbor_id", [2, 3, 2, 1]) == 2  # a neighbour twice
    assert broken("co_sessions", [7, 2, 4, 7]) == 1  # fewer shared sessions than the minimum
    assert broken("rank", [1, 3, 4, 1]) == 2  # ranks with a gap
    assert broken("score", [0.5, 0.9, 0.5, 0.9]) == 1  # a score above the rank before it
    assert broken("score", [0.9, 0.5, 0.0, 0.9]) == 1  # not positive
    assert broken("score", [0.9, 0.5, float("nan"), 0.9]) == 1


def test_rule_violations():
    good = {
        "antecedent": [[1], [1], [1, 2]],
        "consequent": [2, 3, 3],
        "rank": [1, 2, 1],
        "confidence": [0.5, 0.4, 1.0],
        "lift": [2.0, 2.0, 1.5],
        "baskets": [6, 5, 5],
    }
    assert invariants.rule_violations(pa.table(good), 5, 2) == 0

    def broken(column: str, values: list, max_antecedent_items: int = 2) -> int:
        return invariants.rule_violations(pa.table(good | {column: values}), 5, max_antecedent_items)

    assert broken("consequent", [2, 3, 2]) == 1  # in its antecedent
    assert broken("antecedent", [[1], [1], [2, 1]]) == 1  # unsorted
    assert broken("antecedent", [[1], [1], []]) == 1  # empty
    assert broken("antecedent", [[1], [1], [1, 2]], max_antecedent_items=1) == 1  # too long
    assert broken("baskets", [6, 4, 5]) == 1  # below the minimum
    assert broken("confidence", [0.5, 1.2, 1.0]) == 1  # above 1 (one row, whatever else it breaks)
    assert broken("lift", [2.0, 0.0, 1.5]) == 1
    assert broken("rank", [1, 3, 1]) == 1  # a gap
    assert broken("lift", [2.0, 3.0, 1.5]) == 1  # lift x confidence above the rank before it


def test_rules_not_recomputed():
    """Baskets {1, 2}, {1, 2, 3}, {1}, {2}: 1 => 2 held by 2 of 4 baskets, confidence 2/3, lift (2/3) / (3/4)."""
    at = datetime(2026, 10, 30, 10, tzinfo=timezone.utc)
    bought = [(1, "a", 1), (1, "a", 2), (2, "b", 1), (2, "b", 2), (2, "b", 3), (3, "c", 1), (4, "d", 2)]
    events = pa.table(
        {
            "member_id": [m for m, _, _ in bought] + [5],
            "session_id": [s for _, s, _ in bought] + ["e"],
            "subclass_brand_id": [g for _, _, g in bought] + [3],
            "event_type": ["purchase"] * len(bought) + ["product_view"],
            "event_time": [at] * (len(bought) + 1),
            "event_date": [date(2026, 10, 30)] * (len(bought) + 1),
        }
    )
    right = {"antecedent": [[1]], "consequent": [2], "support": [0.5], "confidence": [2 / 3], "lift": [8 / 9]}
    right["baskets"] = [2]

    def wrong(**changes) -> int:
        rules = pa.table(right | changes)
        return invariants.rules_not_recomputed(rules, events, date(2026, 10, 30), date(2026, 10, 30), 10)

    assert wrong() == 0
    assert wrong(support=[0.4]) == wrong(confidence=[0.7]) == wrong(lift=[1.0]) == wrong(baskets=[3]) == 1
    assert wrong(antecedent=[[1, 3]], support=[0.25], confidence=[1.0], lift=[4 / 3], baskets=[1]) == 0
    # a cap of one item per basket: {1}, {1}, {1}, {2} hold 1 => 2 nowhere
    assert invariants.rules_not_recomputed(pa.table(right), events, date(2026, 10, 30), date(2026, 10, 30), 1) == 1


def test_style_list_violations():
    listings = pa.table({"style_id": [11, 12, 21, 22, 31], "subclass_brand_id": [1, 1, 2, 2, 3]})
    good = {
        "kind": ["similar", "similar", "similar", "bought", "bought"],
        "subclass_brand_id": [1, 1, 3, 1, 1],
        "fallback": [False, False, True, False, False],
        "position": [1, 2, 1, 1, 2],
        "style_id": [21, 31, 31, 21, 22],
        "group_id": [2, 3, 3, 2, 2],
        "score": [0.9, 0.5, 4.0, 2.0, 1.0],
    }
    assert invariants.style_list_violations(pa.table(good), listings, 2) == 0

    def broken(column: str, values: list, length: int = 2) -> int:
        return invariants.style_list_violations(pa.table(good | {column: values}), listings, length)

    assert broken("style_id", [21, 99, 31, 21, 22]) == 1  # not listed
    assert broken("group_id", [2, 2, 3, 2, 2]) == 1  # under another group than its listing's
    assert broken("style_id", [21, 21, 31, 21, 22]) == 2  # twice in a list (both rows count)
    assert broken("fallback", [False, False, False, False, False]) == 1  # its own group, not flagged
    assert broken("score", [0.9, 0.5, 4.0, 2.0, 0.0]) == 1  # not positive
    assert broken("score", [0.5, 0.9, 4.0, 2.0, 1.0]) == 1  # above the entry before it
    assert broken("score", [0.9, float("nan"), 4.0, 2.0, 1.0]) == 1
    assert broken("position", [1, 3, 1, 1, 2], length=3) == 1  # a gap
    assert broken("position", [1, 2, 1, 1, 2], length=1) == 2  # longer than the length


def test_similar_fill():
    listings = pa.table({"style_id": [11, 12, 21, 31], "subclass_brand_id": [1, 1, 2, 3]})
    lists = pa.table(
        {
            "kind": ["similar"] * 3 + ["similar"] * 2 + ["bought"] * 2,
            "subclass_brand_id": [1, 1, 1, 2, 2, 3, 3],
            "fallback": [False] * 3 + [True] * 2 + [False] * 2,
        }
    )
    # at least 3 of its own: group 1's two styles; group 2's list is a fallback, group 3's is bought together
    assert invariants.similar_fill(lists, listings, 3) == 0.5
    assert invariants.similar_fill(lists, listings, 4) == 0.0
