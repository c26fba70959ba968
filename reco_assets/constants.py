"""Names shared across the project: divisions, cohorts, event kinds, asset groups."""

DIVISIONS = ("women", "men", "kids", "home", "unisex")
"""Division affinities, in the reference's order (Women, Men, Kids, Home, Unisex)."""

SPEND_BUCKETS = 5

COHORTS = tuple(f"{division}_{bucket}" for division in DIVISIONS for bucket in range(1, SPEND_BUCKETS + 1))
"""The 25 cohort keys: division affinity x spend bucket (1 = lowest spend), e.g. ``women_3``."""

RETAIL_TIMEZONE = "America/New_York"
RELEASES = ("1100", "1500", "2000")
"""New styles go live three times a day (HHMM, the retailer's wall clock); each release refreshes the cards."""
AS_OF_TAG = "reco/as_of"
"""Tag of a run that checks a given day (the freshness check; default: yesterday on the retailer's clock)."""

SCORING_EVENTS = ("product_view", "add_to_cart", "remove_from_cart", "still_want_it", "purchase", "return")
"""Kinds that score; `return` (a cancelled or returned purchase) comes from invoice imports."""
QUANTITY_EVENTS = ("purchase", "return")
"""Kinds whose points count once per unit (`quantity`)."""
NON_SCORING_EVENTS = ("page_view", "boutique_view")
"""List-page and boutique views: accepted and stored, but they carry no item signal."""
EVENT_TYPES = SCORING_EVENTS + NON_SCORING_EVENTS
BROWSE_EVENTS = ("product_view", "add_to_cart")
"""Events that show short-term intent for the boost."""

ITEM_EVENTS = SCORING_EVENTS
"""Event kinds that must name a style."""

PARTITIONS_START_ENV = "RECO_PARTITIONS_START"
PARTITIONS_START_DEFAULT = "2026-01-01"

INGESTION = "ingestion"
MODELLING = "modelling"
PUBLISHING = "publishing"
EVALUATION = "evaluation"

TABLES = {
    "raw_events": "event_date",
    "raw_events_rejected": "event_date",
    "catalog": "as_of_date",
    "catalog_rejected": "as_of_date",
    "implicit_ratings": "as_of_date",
    "member_cohorts": "as_of_date",
    "als_factors": "as_of_date",
    "member_affinities": "as_of_date",
    "boosted_affinities": "as_of_date",
    "diversified_affinities": "as_of_date",
    "style_listings": "as_of_date",
    "group_neighbors": "as_of_date",
    "co_purchase_rules": "as_of_date",
    "offline_evaluation": "as_of_date",
    "ranking_champions": "as_of_date",
    "member_cards": "as_of_date",
    "release_catalog": "as_of_date",
    "release_catalog_rejected": "as_of_date",
    "release_listings": "as_of_date",
    "release_cards": "as_of_date",
}
"""Every table of the contract, in pipeline order, with the column that holds its day."""
