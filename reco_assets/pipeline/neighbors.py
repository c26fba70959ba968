"""Similar subclass-brands: the groups a member's sessions hold together, discounted for popularity.

A session (a member's `session_id`; an invoice in the retail sample) is one sitting of one shopper: two
groups browsed or bought in it are alike for that shopper. Each session's groups carry the weight of their
strongest event (`neighbors.event_weights`: a purchase says more than a view), and sessions holding more
than `max_session_groups` groups are dropped (robots and list dumps tie everything to everything). For two
groups a and b:

    co(a, b) = sum over the sessions holding both of min(weight of a, weight of b)
    score(a, b) = co(a, b) / (total(a) ^ d * total(b) ^ d)

where total(g) is the sum of g's weights over all sessions and d the `popularity_discount` (Amazon
Personalize's SIMS has the same knob, 0.5 by default: the cosine of the two groups' session vectors, at
most 1; at 0 the raw co-occurrence, which ranks the popular groups first). A pair needs
`min_co_sessions` sessions in common (SIMS: 3) to be scored at all; each group keeps its
`neighbors_per_group` best, ties broken by the neighbour's id so that a re-run is identical.
"""

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

SESSION = ["member_id", "session_id"]
"""A session's key: session ids are the site's, unique per member only."""


def session_groups(events: DataFrame, event_weights: dict[str, float], max_session_groups: int) -> DataFrame:
    """(member_id, session_id, subclass_brand_id, weight): each session's groups, weighted by their strongest
    event, sessions of more than `max_session_groups` groups left out."""
    weights = F.create_map(*[F.lit(x) for kind, weight in event_weights.items() for x in (kind, float(weight))])
    groups = (
        events.where(F.col("event_type").isin(*event_weights) & F.col("subclass_brand_id").isNotNull())
        .groupBy(*SESSION, "subclass_brand_id")
        .agg(F.max(weights[F.col("event_type")]).alias("weight"))
    )
    size = F.count("*").over(Window.partitionBy(*SESSION))
    return groups.withColumn("size", size).where(F.col("size") <= max_session_groups).drop("size")


def co_occurrence(sessions: DataFrame) -> DataFrame:
    """(subclass_brand_id, neighbor_id, co_sessions, co_weight) of every ordered pair of distinct groups
    sharing a session of `sessions` (`session_groups`): both orders, so each group finds its neighbours
    under its own id."""
    left = sessions.select(*SESSION, "subclass_brand_id", F.col("weight").alias("left_weight"))
    right = sessions.select(*SESSION, F.col("subclass_brand_id").alias("neighbor_id"), F.col("weight"))
    return (
        left.join(right, SESSION)
        .where(F.col("subclass_brand_id") != F.col("neighbor_id"))
        .groupBy("subclass_brand_id", "neighbor_id")
        .agg(F.count("*").alias("co_sessions"), F.sum(F.least("left_weight", "weight")).alias("co_weight"))
    )


def group_neighbors(sessions: DataFrame, settings) -> DataFrame:
    """Each group's `neighbors_per_group` most similar groups (`subclass_brand_id`, `neighbor_id`, `rank` from
    1, `score`, `co_sessions`) from its sessions (`session_groups`), per the module's formula."""
    totals = sessions.groupBy("subclass_brand_id").agg(F.sum("weight").alias("total"))
    discount = float(settings.popularity_discount)
    pairs = (
        co_occurrence(sessions)
        .where(F.col("co_sessions") >= settings.min_co_sessions)
        .join(totals, "subclass_brand_id")
        .join(
            totals.select(F.col("subclass_brand_id").alias("neighbor_id"), F.col("total").alias("neighbor_total")),
            "neighbor_id",
        )
        .withColumn(
            "score",
            F.col("co_weight") / (F.pow("total", F.lit(discount)) * F.pow("neighbor_total", F.lit(discount))),
        )
    )
    order = Window.partitionBy("subclass_brand_id").orderBy(F.col("score").desc(), F.col("neighbor_id"))
    return (
        pairs.withColumn("rank", F.row_number().over(order))
        .where(F.col("rank") <= settings.neighbors_per_group)
        .select("subclass_brand_id", "neighbor_id", F.col("rank").cast("int"), "score", "co_sessions")
    )
