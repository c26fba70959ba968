from reco_assets.pipeline.cards import CardLimits, member_cards, member_groups, with_source_ids

LIMITS = CardLimits(
    product_feed_max=5, product_card_size=2, group_cards=2, group_card_size=2, group_full_size=3, group_min_styles=2
)

LISTINGS = (
    "subclass_brand_id long, style_id long, rank int, brand string, division string, department string, class string"
)
AFFINITIES = "cohort string, member_id long, subclass_brand_id long, score double, rank int"


def test_feeds_by_hand(spark):
    listings = spark.createDataFrame(
        [
            (100, 1, 1, "aldo", "women", "apparel", "dresses"),
            (100, 2, 2, "aldo", "women", "apparel", "dresses"),
            (100, 3, 3, "aldo", "women", "apparel", "dresses"),
            (200, 4, 1, "aldo", "women", "apparel", "tops"),
            (200, 5, 2, "aldo", "women", "apparel", "tops"),
            (300, 6, 1, "bema", "women", "apparel", "dresses"),
        ],
        LISTINGS,
    )
    affinities = spark.createDataFrame(
        [("women_2", 1, g, s, r) for g, s, r in [(300, 0.9, 1), (100, 0.8, 2), (200, 0.3, 3), (999, 0.2, 4)]],
        AFFINITIES,  # 999: nothing on sale
    )
    rows = member_cards(affinities, listings, LIMITS).collect()
    assert {r["cohort"] for r in rows} == {"women_2"}
    cards = {
        (r["feed"], r["variant"], r["position"]): (
            r["group_key"],
            r["group_name"],
            round(r["affinity"], 6),
            r["style_ids"],
        )
        for r in rows
    }
    assert cards == {
        ("products", "full", 1): ("all", "Picked for you", 2.0, [6, 1, 2, 3, 4]),
        ("products", "card", 1): ("all", "Picked for you", 2.0, [6, 1]),
        # bema has one saleable style, fewer than the minimum of 2: dropped
        ("brands", "full", 1): ("aldo", "Aldo you might like", 1.1, [1, 2, 3]),
        ("brands", "card", 1): ("aldo", "Aldo you might like", 1.1, [1, 2]),
        # categories are keyed by the class's path, titled by its name
        ("categories", "full", 1): ('["women","apparel","dresses"]', "Dresses for you", 1.7, [6, 1, 2]),
        ("categories", "card", 1): ('["women","apparel","dresses"]', "Dresses for you", 1.7, [6, 1]),
        ("categories", "full", 2): ('["women","apparel","tops"]', "Tops for you", 0.3, [4, 5]),
        ("categories", "card", 2): ('["women","apparel","tops"]', "Tops for you", 0.3, [4, 5]),
    }


def test_same_named_classes_of_two_divisions_are_two_category_cards(spark):
    listings = spark.createDataFrame(
        [
            (100, 1, 1, "aldo", "men", "tops", "Tees"),
            (100, 2, 2, "aldo", "men", "tops", "Tees"),
            (200, 3, 1, "aldo", "women", "tops", "Tees"),
            (200, 4, 2, "aldo", "women", "tops", "Tees"),
            (300, 5, 1, "bema", "women", "tops", "Tees"),
        ],
        LISTINGS,
    )
    affinities = spark.createDataFrame(
        [("women_2", 1, g, s, r) for g, s, r in [(100, 0.9, 1), (200, 0.6, 2), (300, 0.5, 3)]], AFFINITIES
    )
    men, women = '["men","tops","Tees"]', '["women","tops","Tees"]'
    groups = member_groups(affinities, listings)
    assert sorted((r["subclass_brand_id"], r["class"], r["class_key"]) for r in groups.collect()) == [
        (100, "Tees", men),
        (200, "Tees", women),
        (300, "Tees", women),
    ]
    rows = member_cards(affinities, listings, LIMITS).where("feed = 'categories'").collect()
    cards = {
        (r["variant"], r["position"]): (r["group_key"], r["group_name"], round(r["affinity"], 6), r["style_ids"])
        for r in rows
    }
    # women's Tees: 200 and 300, 0.6 + 0.5 = 1.1; men's Tees: 100, 0.9. One "Tees" card would hold all five.
    assert cards == {
        ("full", 1): (women, "Tees for you", 1.1, [3, 4, 5]),
        ("card", 1): (women, "Tees for you", 1.1, [3, 4]),
        ("full", 2): (men, "Tees for you", 0.9, [1, 2]),
        ("card", 2): (men, "Tees for you", 0.9, [1, 2]),
    }


def test_imported_cards_carry_the_source_ids_in_list_order(spark):
    cards = spark.createDataFrame(
        [(1, "products", "full", 1, "all", "Products", 1.0, [30, 10, 20])],
        "member_id long, feed string, variant string, position int, group_key string, group_name string, "
        "affinity double, style_ids array<long>",
    )
    id_map = spark.createDataFrame(
        [("member", "C-17850", 1), ("style", "85123A", 10), ("style", "71053", 20), ("style", "84406B", 30)],
        "namespace string, source_id string, id long",
    )
    (row,) = with_source_ids(cards, id_map).collect()
    assert row["member_source_id"] == "C-17850"
    assert row["style_ids"] == [30, 10, 20] and row["style_source_ids"] == ["84406B", "85123A", "71053"]
