import math

import pytest

from reco_assets.pipeline.catalog import sale_window
from reco_assets.pipeline.listings import style_listings
from reco_assets.settings import RecoSettings
from reco_assets_tests.conftest import DAY, utc

CATALOG = (
    "style_id long, subclass_brand_id long, brand string, division string, department string, class string, "
    "subclass string, price double, first_live_at timestamp, live_from timestamp, live_until timestamp, "
    "qty_on_hand long, prior_sales long"
)
EVENTS = "style_id long, subclass_brand_id long, event_type string, event_time timestamp, event_date date"


def _style(style_id, group, first, live_from, until, qty, prior):
    hierarchy = ("Aldo", "women", "apparel", "dresses", "day dresses")
    return (style_id, group, *hierarchy, 50.0, first, live_from, until, qty, prior)


@pytest.fixture
def listings(spark):
    catalog = spark.createDataFrame(
        [
            _style(1, 100, utc(2026, 10, 30, 16), utc(2026, 10, 30, 16), utc(2026, 11, 2), 10, 0),  # new
            _style(2, 100, utc(2026, 9, 1), utc(2026, 10, 29), utc(2026, 11, 1), 5, 2),  # back for a 3rd sale
            _style(3, 100, utc(2026, 10, 30), utc(2026, 10, 30), utc(2026, 11, 1), 1, 0),  # nearly sold out
            _style(4, 100, utc(2026, 10, 27), utc(2026, 10, 27), utc(2026, 10, 30), 9, 0),  # sale ended
            _style(5, 200, utc(2026, 10, 1), utc(2026, 10, 31), utc(2026, 11, 3), 50, 0),
        ],
        CATALOG,
    )
    events = [(1, 100, "product_view", utc(2026, 10, 30, 17 + i), DAY.replace(day=30)) for i in range(4)]
    events += [(1, 100, "purchase", utc(2026, 10, 30, 21), DAY.replace(day=30))]
    events += [(2, 100, "product_view", utc(2026, 10, 29, i), DAY.replace(day=29)) for i in range(9)]
    events += [(2, 100, "remove_from_cart", utc(2026, 10, 29, 10), DAY.replace(day=29))]
    s = RecoSettings()
    return style_listings(
        catalog,
        spark.createDataFrame(events, EVENTS),
        sale_window(DAY),
        30,
        s.listings.style_weights,
        s.listings.min_qty_on_hand,
        s.listings.new_style_hours,
        styles_per_group=2,
    )


def test_hybrid_score_by_hand(listings):
    got = {r["style_id"]: r for r in listings.collect()}
    assert set(got) == {1, 2, 5}  # 3 is nearly sold out, 4 is off sale
    # Style 1: 4 views, 1 purchase, new for 8 hours (first day), half of its group is new.
    popularity_1 = math.log(5) + 3 * math.log(2) + 2 * 1 / 5
    launch_1 = (1.5 + math.log(1 + 4 + 5)) * (1.5 - 0.5)
    age_1 = -0.5 * (8 / 24) + 2 / 30  # 8 hours on site; the group drew events on 2 of 30 days
    assert got[1]["popularity_score"] == pytest.approx(popularity_1)
    assert got[1]["launch_score"] == pytest.approx(launch_1)
    assert got[1]["score"] == pytest.approx(popularity_1 + launch_1 + age_1)
    # Style 2: 9 views, one remove from cart, two sales before, 2 days into this sale.
    popularity_2 = math.log(10) - math.log(2)
    age_2 = 0.5 * math.log(3) - 0.5 * 2 + 2 / 30
    assert got[2]["launch_score"] == 0
    assert got[2]["score"] == pytest.approx(popularity_2 + age_2)
    assert got[5]["score"] == pytest.approx(0.0)


def test_styles_ranked_inside_their_group(listings):
    ranks = sorted((r["subclass_brand_id"], r["rank"], r["style_id"]) for r in listings.collect())
    assert ranks == [(100, 1, 1), (100, 2, 2), (200, 1, 5)]


def test_listings_carry_the_hierarchy_path(listings):
    """The class's path (division, department, class) travels with each style: class names repeat across
    divisions, so the cards key a category by the path."""
    assert listings.columns[:7] == [
        "subclass_brand_id", "style_id", "brand", "division", "department", "class", "subclass"
    ]  # fmt: skip
    hierarchy = sorted(
        (r["style_id"], r["brand"], r["division"], r["department"], r["class"], r["subclass"])
        for r in listings.collect()
    )
    assert hierarchy == [
        (1, "Aldo", "women", "apparel", "dresses", "day dresses"),
        (2, "Aldo", "women", "apparel", "dresses", "day dresses"),
        (5, "Aldo", "women", "apparel", "dresses", "day dresses"),
    ]
