from reco_assets.pipeline.ratings import implicit_ratings
from reco_assets.settings import RecoSettings
from reco_assets_tests.conftest import rows, utc

EVENTS = "member_id long, subclass_brand_id long, event_type string, event_time timestamp, quantity int"


def test_points_are_summed_per_member_and_group_with_reference_weights(spark):
    events = spark.createDataFrame(
        [
            (1, 100, "product_view", utc(2026, 10, 30, 9), None),
            (1, 100, "product_view", utc(2026, 10, 30, 10), None),
            (1, 100, "add_to_cart", utc(2026, 10, 30, 11), 1),
            (1, 100, "purchase", utc(2026, 10, 31, 8), None),
            (1, 200, "still_want_it", utc(2026, 10, 29, 8), None),
            (1, 200, "remove_from_cart", utc(2026, 10, 29, 9), 1),
            (2, 100, "page_view", utc(2026, 10, 31, 1), None),  # no item signal
            (2, 300, "product_view", utc(2026, 10, 31, 2), None),
        ],
        EVENTS,
    )
    result = implicit_ratings(events, RecoSettings().ratings.weights)
    # 3 + 3 + 10 + 40 = 56; 30 - 5 = 25; 3
    assert rows(result, "member_id", "subclass_brand_id", "rating") == [(1, 100, 56.0), (1, 200, 25.0), (2, 300, 3.0)]
    latest = {(r["member_id"], r["subclass_brand_id"]): r["last_event_time"] for r in result.collect()}
    assert latest[(1, 100)] == utc(2026, 10, 31, 8).replace(tzinfo=None)


def test_purchases_and_returns_count_per_unit(spark):
    events = spark.createDataFrame(
        [
            (3, 100, "purchase", utc(2026, 10, 30, 9), 6),  # an invoice line of 6 units
            (3, 100, "return", utc(2026, 10, 31, 9), 2),  # 2 of them cancelled
            (3, 200, "add_to_cart", utc(2026, 10, 31, 9), 4),  # carts score once, whatever the quantity
        ],
        EVENTS,
    )
    result = implicit_ratings(events, RecoSettings().ratings.weights)
    # 6 x 40 - 2 x 40 = 160; 10
    assert rows(result, "member_id", "subclass_brand_id", "rating") == [(3, 100, 160.0), (3, 200, 10.0)]
