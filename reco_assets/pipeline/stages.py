"""The stages of the daily pipeline, each wired once: what it reads, in which window, with which settings.

Every caller runs the pipeline through these functions: the assets (which add the checks and the publish),
the backtest (which runs them on a training day and scores the days after it), tuning and the benchmarks.
A stage reads the lakehouse through a `Reader` (or takes frames a caller already holds) and returns Spark
frames; none writes.
"""

from dataclasses import dataclass, field
from datetime import date, timedelta

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from reco_assets.pipeline.affinities import Hierarchy, cohort_items, intent_subclasses, ranking_inputs, recent_buyers
from reco_assets.pipeline.cards import member_cards, member_groups, product_feed, with_source_ids
from reco_assets.pipeline.catalog import candidate_groups, group_hierarchy, sale_window
from reco_assets.pipeline.cohorts import member_cohorts
from reco_assets.pipeline.factorization import GLOBAL, fit_cohorts
from reco_assets.pipeline.listings import style_listings
from reco_assets.pipeline.neighbors import group_neighbors, session_groups
from reco_assets.pipeline.ratings import implicit_ratings
from reco_assets.pipeline.rules import basket_popularity, co_purchase_rules, purchase_baskets
from reco_assets.pipeline.style_lists import blended_neighbors, bought_lists, popular_styles, similar_lists
from reco_assets.resources.lakehouse import Lakehouse, partition_predicate, range_predicate
from reco_assets.settings import FactorModelSettings, RecoSettings


@dataclass
class Reader:
    """The stages' reads of the lakehouse, as Spark frames of one session. With `keep`, a window of events is
    read once and kept in memory until `release`, and any window within it is taken from it (a rolling
    evaluation reads the span of all its origins' windows once; each origin's ratings, cohorts, popularity,
    boost and listing windows are cut from it). Not `strict`, a partition never written reads as empty (a backtest's
    origin before the log began has nothing to rank) rather than failing. A keeping reader also keeps the
    neighbours it computed (`neighbors`), which several evaluations of one origin read."""

    session: SparkSession
    lakehouse: Lakehouse
    keep: bool = False
    strict: bool = True
    kept: dict = field(default_factory=dict)
    computed: dict = field(default_factory=dict)

    def events(self, end: date, days: int) -> DataFrame:
        """`raw_events` of the `days` days ending with `end` (those of them present)."""
        first = end - timedelta(days=days - 1)
        covering = [(e, d) for (e, d) in self.kept if e >= end and e - timedelta(days=d - 1) <= first]
        if covering:
            kept_end, kept_days = min(covering, key=lambda window: window[1])
            kept = self.kept[kept_end, kept_days]
            if (kept_end, kept_days) == (end, days):
                return kept
            return kept.where(F.col("event_date").between(F.lit(first), F.lit(end)))
        events = self.lakehouse.read_spark(self.session, "raw_events", range_predicate("event_date", first, end))
        if self.keep:
            self.kept[end, days] = events = events.cache()
        return events

    def release(self) -> None:
        """Drop the kept windows from memory."""
        for frame in [*self.kept.values(), *self.computed.values()]:
            frame.unpersist()
        self.kept.clear()
        self.computed.clear()

    def day(self, table: str, day: date, cohorts: list[str] | None = None) -> DataFrame:
        """The partition of `day` of a table partitioned by `as_of_date` (its `cohorts` only, when given), which
        must have been written (else `MissingPartition`, naming it) unless the reader is not `strict`."""
        partition = {"as_of_date": day} | ({"cohort": cohorts} if cohorts is not None else {})
        if self.strict:
            return self.lakehouse.read_spark(self.session, table, partition=partition)
        return self.lakehouse.read_spark(self.session, table, partition_predicate(partition))


# --- ratings and cohorts --------------------------------------------------------------------------------


def ratings(reader: Reader, day: date, settings: RecoSettings) -> DataFrame:
    """Implicit ratings of `day`: event points per member x subclass-brand over the look-back window."""
    return implicit_ratings(reader.events(day, settings.ratings.lookback_days), settings.ratings.weights)


def cohorts(reader: Reader, day: date, rated: DataFrame, settings: RecoSettings) -> DataFrame:
    """Each rated member's cohort on `day`, from the same look-back window as the ratings `rated`."""
    return member_cohorts(
        reader.events(day, settings.ratings.lookback_days),
        rated,
        settings.ratings.weights,
        settings.cohorts.spend_buckets,
        settings.cohorts.spend_percentile,
        settings.cohorts.division_aliases,
    )


# --- factor models -----------------------------------------------------------------------------------------


def factor_models(
    rated: DataFrame,
    members: DataFrame,
    params: FactorModelSettings,
    cohorts: list[str] | None = None,
    start: DataFrame | None = None,
) -> DataFrame:
    """The models of `cohorts` (default: every cohort of `members`), from the earlier models `start` when
    given (`earlier_models`). A global model is fitted on every cohort's ratings even when only some cohorts
    are asked for: a backfill of one cohort gets the factors the whole day's run gets."""
    if cohorts is not None and params.scope != GLOBAL:
        members = members.where(F.col("cohort").isin(cohorts))
    fitted = fit_cohorts(rated.join(members.select("member_id", "cohort"), "member_id"), params, start)
    return fitted if cohorts is None else fitted.where(F.col("cohort").isin(cohorts))


def earlier_models(reader: Reader, day: date, settings: RecoSettings) -> DataFrame | None:
    """The stored models of the day before `day` fitted with these settings (`model_key`): where a fit of
    `day` starts from; None when there are none (a cold start)."""
    if settings.factor_model.engine != "softmax" or settings.factor_model.warm_iterations == 0:
        return None
    if reader.lakehouse.table("als_factors") is None:
        return None
    before = day - timedelta(days=1)
    factors = reader.lakehouse.read_spark(reader.session, "als_factors", where=f"as_of_date = '{before}'")
    earlier = factors.where(F.col("model_key") == settings.model_key())
    return earlier if earlier.limit(1).count() else None


# --- the ranking pass --------------------------------------------------------------------------------------


def candidates(catalog: DataFrame, day: date, settings: RecoSettings) -> list[int]:
    """The groups ranked on `day`: live on the day or going live within the horizon."""
    return candidate_groups(catalog, day, settings.ranking.live_horizon_hours)


@dataclass
class RankingPass:
    """What the ranking pass of a day needs besides the members' factors: the candidate groups of every
    model with their popularity features (`models`), their hierarchy codes, and the per-member inputs."""

    candidates: list[int]
    groups: DataFrame  # subclass_brand_id and its class and subclass keys
    models: dict
    hierarchy: Hierarchy
    rated: DataFrame
    intents: DataFrame
    day: date

    def inputs(self, factors: DataFrame) -> DataFrame:
        """One row per member of `factors` (member rows) with their ratings and browsing intents."""
        return ranking_inputs(factors, self.rated, self.intents, self.day)


def ranking_pass(
    reader: Reader,
    day: date,
    factors: DataFrame,
    rated: DataFrame,
    members: DataFrame,
    settings: RecoSettings,
    only: DataFrame | None = None,
) -> RankingPass:
    """The ranking pass of `day` over the models `factors`: candidates are the groups live on the day or
    within the horizon; the popularity features count the cohorts' (`members`) recent buyers; the boost reads
    the boost window's browsing. With `only` (member_id), the per-member inputs are read for those members
    alone (a backtest scores a sample)."""
    ranking = settings.ranking
    catalog = reader.day("catalog", day)
    ranked = candidates(catalog, day, settings)
    groups = group_hierarchy(catalog)
    recent = reader.events(day, settings.evaluation.popularity_window_days)
    buyers = recent_buyers(recent, members, settings.evaluation.relevant_events)
    models, hierarchy = cohort_items(factors, ranked, groups, (buyers, members))
    browsing = reader.events(day, ranking.boost_window_days)
    if only is not None:
        browsing = browsing.join(only, "member_id", "left_semi")
        rated = rated.join(only, "member_id", "left_semi")
    intents = intent_subclasses(browsing, ranking.boost_subclasses)
    return RankingPass(ranked, groups, models, hierarchy, rated, intents, day)


# --- item to item ------------------------------------------------------------------------------------------


def neighbors(reader: Reader, day: date, settings: RecoSettings) -> DataFrame:
    """Each subclass-brand's most similar ones on `day`, from the sessions of the neighbours' window (kept by a
    keeping reader)."""
    chosen = settings.neighbors
    key = ("neighbors", day, chosen.model_dump_json())
    if key in reader.computed:
        return reader.computed[key]
    sessions = session_groups(reader.events(day, chosen.window_days), chosen.event_weights, chosen.max_session_groups)
    neighbours = group_neighbors(sessions, chosen)
    if reader.keep:
        reader.computed[key] = neighbours = neighbours.cache()
    return neighbours


def rules(reader: Reader, day: date, settings: RecoSettings) -> DataFrame:
    """The co-purchase rules of `day`, from the baskets of the rules' window."""
    chosen = settings.rules
    return co_purchase_rules(purchase_baskets(reader.events(day, chosen.window_days), chosen.max_basket_items), chosen)


@dataclass(frozen=True)
class StyleLists:
    """A day's lists for a style's page, per listed group (`style_lists.LIST_COLUMNS`)."""

    similar: DataFrame
    bought: DataFrame
    popular: DataFrame
    """The styles of the groups in most baskets: a cart's fallback."""


def style_lists(
    reader: Reader,
    day: date,
    listings: DataFrame,
    neighbors: DataFrame,
    rules: DataFrame,
    settings: RecoSettings,
    length: int,
    factor_similar: DataFrame | None = None,
) -> StyleLists:
    """The similar and bought-together lists (`length` styles) of the groups of `listings`, from the day's
    `neighbors` (completed by `factor_similar`, the factor model's, where given) and `rules`; the
    bought-together fallback from the baskets of the rules' window."""
    chosen = settings.rules
    baskets = purchase_baskets(reader.events(day, chosen.window_days), chosen.max_basket_items)
    popular = popular_styles(basket_popularity(baskets, length), listings, length)
    similar = blended_neighbors(neighbors, factor_similar, settings.neighbors.neighbors_per_group)
    return StyleLists(
        similar=similar_lists(listings, similar, length),
        bought=bought_lists(listings, rules, popular, length),
        popular=popular,
    )


# --- listings and cards ------------------------------------------------------------------------------------


def listings(
    reader: Reader, day: date, catalog: DataFrame, settings: RecoSettings, release: str | None = None
) -> DataFrame:
    """The listings of a catalog snapshot of `day` (or of a release's, `release`): the styles on sale in its
    window ranked with the day's interaction window of events."""
    chosen = settings.listings
    return style_listings(
        catalog,
        reader.events(day, chosen.interaction_window_days),
        sale_window(day, release),
        chosen.interaction_window_days,
        chosen.style_weights,
        chosen.min_qty_on_hand,
        chosen.new_style_hours,
        chosen.styles_per_group,
    )


def cards(affinities: DataFrame, listed: DataFrame, settings: RecoSettings, id_map: DataFrame | None = None):
    """The three feeds of the members' diversified affinities over the listed styles (with the source's ids
    when the data was imported: `id_map`)."""
    built = member_cards(affinities, listed, settings.card_limits())
    return built if id_map is None else with_source_ids(built, id_map)


def product_feeds(affinities: DataFrame, listed: DataFrame, settings: RecoSettings) -> DataFrame:
    """The full product feed of each member of `affinities` (grouped by its `cohort` column), as the cards
    stage builds it."""
    return product_feed(member_groups(affinities, listed), settings.card_limits()).where(F.col("variant") == "full")
