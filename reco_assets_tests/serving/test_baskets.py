"""The cart rule's plain functions on hand-worked examples."""

from reco_assets.serving.baskets import PAIR_GROUPS, antecedent_key, antecedents, complementary_groups, spread


def test_an_antecedent_key_sorts_its_groups_as_numbers():
    assert antecedent_key((10, 9)) == "9,10"
    assert antecedent_key([100, 20]) == "20,100"
    assert antecedent_key((7,)) == "7"


def test_antecedents_are_the_distinct_groups_in_cart_order_then_their_pairs():
    assert antecedents([30, 10, 30, 20]) == ["30", "10", "20", "10,30", "20,30", "10,20"]
    assert antecedents([5]) == ["5"]
    assert antecedents([]) == []


def test_pairs_are_formed_among_the_first_groups_only():
    groups = list(range(1, PAIR_GROUPS + 3))  # 12 groups: 11 and 12 are past the cap
    keys = antecedents(groups)
    assert keys[:12] == [str(g) for g in groups]
    assert len(keys) == 12 + PAIR_GROUPS * (PAIR_GROUPS - 1) // 2  # 45 pairs of the first 10
    assert "9,10" in keys and "1,10" in keys
    assert not any(k in keys for k in ("1,11", "10,11", "11,12", "1,12"))


def test_complementary_groups_take_each_best_rule_without_the_carts_groups():
    consequents = [[(3, 0.5), (2, 9.0), (4, 0.2)], [(4, 0.7), (3, 0.1)], [(5, 0.5)]]
    # 4: max(0.2, 0.7); 3: max(0.5, 0.1); 5: 0.5, tied with 3 (the smaller id first); 2 is in the cart
    assert complementary_groups([1, 2], consequents) == [(4, 0.7), (3, 0.5), (5, 0.5)]
    assert complementary_groups([1], []) == []


def test_spread_divides_a_groups_score_by_the_listing_rank_and_keeps_excluded_styles_ranks():
    groups = [(9, 10.0), (7, 6.0), (8, 4.0)]  # 9 has no listing
    listings = {7: [70, 71, 72], 8: [80, 81]}
    # 70: 6/1, 71 excluded, 72: 6/3 (its rank stays 3), 80: 4/1, 81: 4/2; 72 and 81 tie at 2.0
    expected = [(70, 6.0, 7), (80, 4.0, 8), (72, 2.0, 7), (81, 2.0, 8)]
    assert spread(groups, listings, {71}, 10) == expected
    assert spread(groups, listings, {71}, 3) == expected[:3]
    assert spread(groups, listings, {70, 71, 72, 80, 81}, 10) == []


def test_spread_breaks_ties_by_the_smaller_id_as_a_number():
    assert spread([(1, 2.0), (2, 2.0)], {1: [100], 2: [99]}, set(), 5) == [(99, 2.0, 2), (100, 2.0, 1)]
