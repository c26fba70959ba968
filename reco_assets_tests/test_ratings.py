from reco_assets.pipeline.ratings import implicit_ratings
from reco_assets.settings import RecoSettings
from reco_assets_tests.conftest import rows, utc

EVENTS = "member_id long, subclass_brand_id long, event_type string, event_time timestamp"


def test_points_are_summed_per_member_and_group_with_reference_weights(spark):
    events = spark.createDataFrame(
        [
            (1, 100, "product_view", utc(2026, 10, 30, 9)),
            (1, 100, "product_view", utc(2026, 10, 30, 10)),
            (1, 100, "add_to_cart", utc(2026, 10, 30, 11)),
            (1, 100, "purchase", utc(2026, 10, 31, 8)),
            (1, 200, "still_want_it", utc(2026, 10, 29, 8)),
            (1, 200, "remove_from_cart", utc(2026, 10, 29, 9)),
            (2, 100, "page_view", utc(2026, 10, 31, 1)),  # no item signal
            (2, 300, "product_view", utc(2026, 10, 31, 2)),
        ],
        EVENTS,
    )
    result = implicit_ratings(events, RecoSettings().event_weights())
    # 3 + 3 + 10 + 40 = 56; 30 - 5 = 25; 3
    assert rows(result, "member_id", "subclass_brand_id", "rating") == [(1, 100, 56.0), (1, 200, 25.0), (2, 300, 3.0)]
    latest = {(r["member_id"], r["subclass_brand_id"]): r["last_event_time"] for r in result.collect()}
    assert latest[(1, 100)] == utc(2026, 10, 31, 8).replace(tzinfo=None)
