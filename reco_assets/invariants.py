"""The invariants of the table contract, as SQL over Arrow tables (DuckDB).

Each function returns the number of violating rows (0 = the invariant holds); assets run them on the
partition they have just written, read back from the lakehouse, and report them as asset checks.
"""

import tempfile
from pathlib import Path

import duckdb
import pyarrow as pa

from reco_assets.pipeline.methods import DIVERSIFIED

DUCKDB_CONFIG = {"memory_limit": "4GB", "temp_directory": str(Path(tempfile.gettempdir()) / "reco-duckdb")}
"""Checks of a large partition (a million members' affinities) spill to disk rather than take the driver's RAM."""


def _count(sql: str, **tables: pa.Table) -> int:
    with duckdb.connect(config=DUCKDB_CONFIG) as con:
        for name, table in tables.items():
            con.register(name, table)
        return int(con.execute(sql).fetchone()[0])


def unknown_cohorts(cohorts: pa.Table, known: tuple[str, ...]) -> int:
    """Members whose cohort key is not one of the partitions (they would get no cards)."""
    listed = pa.table({"cohort": list(known)})
    return _count(
        "SELECT count(*) FROM members WHERE cohort NOT IN (SELECT cohort FROM listed)", members=cohorts, listed=listed
    )


def duplicate_event_ids(events: pa.Table) -> int:
    return _count("SELECT count(*) - count(DISTINCT event_id) FROM events", events=events)


def days_not_reconciled(read: pa.Table, accepted: pa.Table, rejected: pa.Table, day: str = "event_date") -> int:
    """Days where accepted + rejected records differ from the records read (`day`, `records`)."""
    return _count(
        f"""
        WITH stored AS (SELECT {day}, count(*) AS n
                        FROM (SELECT {day} FROM accepted UNION ALL SELECT {day} FROM rejected) GROUP BY ALL)
        SELECT count(*) FROM read FULL JOIN stored USING ({day})
        WHERE coalesce(read.records, 0) <> coalesce(stored.n, 0)
        """,
        read=read,
        accepted=accepted,
        rejected=rejected,
    )


def members_without_one_cohort(ratings: pa.Table, cohorts: pa.Table) -> int:
    """Members with a rating that have no cohort or more than one, plus cohort rows without a rating."""
    return _count(
        """
        WITH r AS (SELECT DISTINCT member_id FROM ratings),
             c AS (SELECT member_id, count(*) AS n FROM cohorts GROUP BY member_id)
        SELECT count(*) FROM r FULL JOIN c USING (member_id) WHERE c.n IS NULL OR c.n <> 1 OR r.member_id IS NULL
        """,
        ratings=ratings,
        cohorts=cohorts,
    )


def non_finite_factors(factors: pa.Table) -> int:
    return _count(
        "SELECT count(*) FROM factors WHERE list_bool_or(list_transform(factors, lambda x: NOT isfinite(x)))",
        factors=factors,
    )


def rank_violations(affinities: pa.Table, order_column: str) -> int:
    """Members whose ranks are not exactly 1..n, or whose `order_column` rises with rank."""
    return _count(
        f"""
        WITH s AS (
            SELECT member_id, rank, {order_column} AS v,
                   row_number() OVER (PARTITION BY member_id ORDER BY rank) AS expected,
                   lag({order_column}) OVER (PARTITION BY member_id ORDER BY rank) AS previous
            FROM affinities)
        SELECT count(DISTINCT member_id) FROM s WHERE rank <> expected OR v > previous
        """,
        affinities=affinities,
    )


def boosts_outside_intent(boosted: pa.Table, groups: pa.Table, max_subclasses: int) -> int:
    """Members with boosted groups in more than `max_subclasses` subclasses (by key: names repeat)."""
    return _count(
        f"""
        SELECT count(*) FROM (
            SELECT b.member_id FROM boosted b JOIN groups g USING (subclass_brand_id)
            WHERE b.boost > 0 GROUP BY b.member_id HAVING count(DISTINCT g.subclass_key) > {int(max_subclasses)})
        """,
        boosted=boosted,
        groups=groups,
    )


def classes_over_limit(diversified: pa.Table, per_class: int) -> int:
    """Member x class pairs over the limit, among the rows of methods that diversify (a baseline that is a
    cohort's champion is published as it was scored, without the limit) and of groups with a class."""
    diversifying = ", ".join(f"'{m}'" for m in DIVERSIFIED)
    only = "WHERE coalesce(class_key, '') <> ''"  # a group without a class is not limited
    if "method" in diversified.schema.names:
        only += f" AND method IN ({diversifying})"
    return _count(
        f"""SELECT count(*) FROM (SELECT member_id, class_key FROM diversified {only} GROUP BY ALL
            HAVING count(*) > {int(per_class)})""",
        diversified=diversified,
    )


def styles_not_saleable(styles: pa.Table, catalog: pa.Table, day_start, day_end, min_qty: int) -> int:
    """Styles (column `style_id`) not on sale during the day or below `min_qty` units in the catalog
    (an unknown stock, NULL, is not below anything)."""
    with duckdb.connect() as con:
        con.register("styles", styles)
        con.register("catalog", catalog)
        return int(
            con.execute(
                """
                SELECT count(*) FROM styles s LEFT JOIN catalog c USING (style_id)
                WHERE c.style_id IS NULL OR NOT (c.live_from < $end AND c.live_until > $start)
                   OR c.qty_on_hand < $min_qty
                """,
                {"start": day_start, "end": day_end, "min_qty": min_qty},
            ).fetchone()[0]
        )


def card_violations(cards: pa.Table, product_feed_max: int) -> int:
    """Lists with a style twice, or product feeds longer than `product_feed_max`."""
    return _count(
        f"""SELECT count(*) FROM cards
            WHERE len(style_ids) <> len(list_distinct(style_ids))
               OR (feed = 'products' AND len(style_ids) > {int(product_feed_max)})""",
        cards=cards,
    )


def card_styles(cards: pa.Table) -> pa.Table:
    """Every style id named in the cards, once."""
    with duckdb.connect() as con:
        con.register("cards", cards)
        return con.sql("SELECT DISTINCT unnest(style_ids) AS style_id FROM cards").to_arrow_table()


def neighbor_violations(neighbors: pa.Table, min_co_sessions: int) -> int:
    """Neighbour rows that name their own group, share fewer than `min_co_sessions` sessions, repeat a
    neighbour of the group, break the group's ranks 1..n, or score above the rank before them."""
    return _count(
        f"""
        WITH ranked AS (
            SELECT *, row_number() OVER (PARTITION BY subclass_brand_id ORDER BY rank) AS position,
                   lag(score) OVER (PARTITION BY subclass_brand_id ORDER BY rank) AS before,
                   count(*) OVER (PARTITION BY subclass_brand_id, neighbor_id) AS times
            FROM neighbors)
        SELECT count(*) FROM ranked
        WHERE neighbor_id = subclass_brand_id OR co_sessions < {int(min_co_sessions)} OR times > 1
              OR rank <> position OR score > before OR NOT isfinite(score) OR score <= 0
        """,
        neighbors=neighbors,
    )


def rule_violations(rules: pa.Table, min_baskets: int, max_antecedent_items: int) -> int:
    """Rules whose consequent is in their antecedent, whose antecedent is unsorted, empty or too long, held
    by fewer than `min_baskets` baskets, with a confidence outside (0, 1] or a lift not positive, or breaking
    their antecedent's ranks 1..n in non-increasing lift x confidence."""
    return _count(
        f"""
        WITH ranked AS (
            SELECT *, row_number() OVER (PARTITION BY antecedent ORDER BY rank) AS position,
                   lag(lift * confidence) OVER (PARTITION BY antecedent ORDER BY rank) AS before
            FROM rules)
        SELECT count(*) FROM ranked
        WHERE list_contains(antecedent, consequent) OR antecedent <> list_sort(antecedent)
              OR len(antecedent) NOT BETWEEN 1 AND {int(max_antecedent_items)} OR baskets < {int(min_baskets)}
              OR NOT (confidence > 0 AND confidence <= 1) OR NOT (lift > 0) OR rank <> position
              OR lift * confidence > before
        """,
        rules=rules,
    )


def rules_not_recomputed(rules: pa.Table, events, first, last, max_basket_items: int, sample: int = 100) -> int:
    """Of a sample of `rules`, those whose support, confidence and lift differ from a count over the
    purchase baskets of `events` (a dataset of `raw_events`) from `first` to `last`, rebuilt here in SQL:
    each member's session, its distinct groups, the first `max_basket_items` bought."""
    return _count(
        f"""
        WITH bought AS (
            SELECT member_id, session_id, subclass_brand_id AS g, min(event_time) AS t FROM events
            WHERE event_type = 'purchase' AND subclass_brand_id IS NOT NULL
              AND event_date BETWEEN DATE '{first}' AND DATE '{last}'
            GROUP BY ALL),
        baskets AS (
            SELECT row_number() OVER () AS basket, list(g ORDER BY t, g)[1:{int(max_basket_items)}] AS items
            FROM bought GROUP BY member_id, session_id),
        total AS (SELECT count(*) AS n FROM baskets),
        held AS (SELECT basket, unnest(items) AS g FROM baskets),
        sampled AS (
            SELECT row_number() OVER () AS rule, * FROM (
                SELECT * FROM rules
                ORDER BY hash(antecedent::VARCHAR || '>' || consequent::VARCHAR) LIMIT {int(sample)})),
        parts AS (SELECT rule, unnest(antecedent) AS g FROM sampled),
        hits AS (SELECT rule, basket, count(*) AS k FROM parts JOIN held USING (g) GROUP BY ALL),
        with_antecedent AS (
            SELECT rule, basket FROM hits JOIN sampled USING (rule) WHERE k = len(antecedent)),
        with_consequent AS (
            SELECT rule, basket FROM sampled JOIN held ON held.g = sampled.consequent),
        together AS (
            SELECT rule, count(*) AS t FROM with_antecedent JOIN with_consequent USING (rule, basket) GROUP BY rule),
        antecedents AS (SELECT rule, count(*) AS a FROM with_antecedent GROUP BY rule),
        consequents AS (SELECT rule, count(*) AS c FROM with_consequent GROUP BY rule)
        SELECT count(*) FROM sampled LEFT JOIN together USING (rule) LEFT JOIN antecedents USING (rule)
            LEFT JOIN consequents USING (rule), total
        WHERE t IS NULL OR baskets <> t OR abs(support - t / n) > 1e-9 OR abs(confidence - t / a) > 1e-9
              OR abs(lift - (t / a) / (c / n)) > 1e-9 * lift
        """,
        rules=rules,
        events=events,
    )


def style_list_violations(lists: pa.Table, listings: pa.Table, length: int) -> int:
    """Entries of the style lists (`kind`, then `style_lists.LIST_COLUMNS`) naming a style not in
    `listings` or under another group than its listing's, a style twice in a list, or (not fallback) the
    list's own group or a score not positive; breaking positions 1..n, longer than `length`, or scoring
    above the entry before them."""
    return _count(
        f"""
        WITH ranked AS (
            SELECT *, row_number() OVER (PARTITION BY kind, subclass_brand_id ORDER BY position) AS nth,
                   lag(score) OVER (PARTITION BY kind, subclass_brand_id ORDER BY position) AS before,
                   count(*) OVER (PARTITION BY kind, subclass_brand_id, style_id) AS times
            FROM lists)
        SELECT count(*) FROM ranked r LEFT JOIN listings s ON s.style_id = r.style_id
        WHERE s.style_id IS NULL OR s.subclass_brand_id <> r.group_id OR times > 1
              OR (NOT fallback AND (r.group_id = r.subclass_brand_id OR score <= 0))
              OR nth <> position OR position > {int(length)} OR score > before OR NOT isfinite(score)
        """,
        lists=lists,
        listings=listings,
    )


def similar_fill(lists: pa.Table, listings: pa.Table, least: int) -> float:
    """The share of `listings`' styles whose group has at least `least` similar styles of its own (not the
    fallback)."""
    with duckdb.connect(config=DUCKDB_CONFIG) as con:
        con.register("lists", lists)
        con.register("listings", listings)
        return float(
            con.execute(
                f"""WITH own AS (SELECT subclass_brand_id, count(*) AS n FROM lists
                                 WHERE kind = 'similar' AND NOT fallback GROUP BY subclass_brand_id)
                    SELECT coalesce(avg(CASE WHEN coalesce(o.n, 0) >= {int(least)} THEN 1.0 ELSE 0.0 END), 0)
                    FROM listings s LEFT JOIN own o USING (subclass_brand_id)"""
            ).fetchone()[0]
        )
