"""Every tunable number of the pipeline, grouped by what it governs, with the reference value as default.

"Reference" means the flash-sale retailer's recommendation engine described in the product brief
(`system.md`); numbers the reference does not give are project choices and say so. The evidence behind each
tuned default (which backtest, which values, which figures) is in `benchmarks/TUNING.md`.

The settings in force for a home are one file, `<home>/settings.json` (`load_settings`): the command line
writes it (`--set group.name=value`), and every entry point of that home reads it (the CLI, the Dagster UI,
its sensors and schedules, the lineage of the definitions; a running UI once its definitions are reloaded).
A run config given in the UI replaces the whole settings of that run: what it leaves out takes the defaults.
"""

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from dagster import Config, ConfigurableResource
from pydantic import ConfigDict, Field, field_validator, model_validator

from reco_assets.constants import COHORTS, DIVISIONS, EVENT_TYPES, SCORING_EVENTS, SPEND_BUCKETS
from reco_assets.serving.rerank import Weights

SETTINGS_FILE = "settings.json"
SPEED_ONLY = {"num_threads", "checkpoint_interval"}
"""Factor model settings that change how fast a model is fitted, not which model: not part of `model_key`."""


class Group(Config):
    """A group of settings: a name that belongs to no field of the group is an error, not ignored."""

    model_config = ConfigDict(extra="forbid")


class IngestionSettings(Group):
    """What a landed record may hold, and how far back its event id is looked for."""

    dedupe_window_days: int = Field(
        7, description="Days either side searched for an event_id accepted before (project choice)."
    )
    max_quantity: int = Field(
        10_000,
        ge=1,
        le=2**31 - 1,  # accepted quantities are stored as int
        description="Units a landed record may hold at most; more is rejected as `out_of_range:quantity` "
        "(project choice, see the tuning log).",
    )
    max_price: float = Field(
        100_000.0,
        description="Unit price a landed record may hold at most; more is rejected as `out_of_range:price` "
        "(project choice, see the tuning log).",
    )


class RatingsSettings(Group):
    """Implicit ratings: points per event kind, summed over a look-back window."""

    weights: dict[str, float] = Field(
        default_factory=lambda: {
            "product_view": 3.0,
            "add_to_cart": 10.0,
            "still_want_it": 30.0,
            "purchase": 40.0,
            # disengagement: the reference names the signal, not its weight (project choice: half a cart)
            "remove_from_cart": -5.0,
            # a returned or cancelled unit takes back its purchase (project choice: clickstreams have no returns)
            "return": -40.0,
        },
        description="Points per scoring event kind (reference: view 3, cart 10, still-want-it 30, purchase "
        "40; remove from cart -5 and return -40 are project choices). Every scoring kind has a weight.",
    )
    lookback_days: int = Field(
        60,
        ge=1,
        description="Days of events summed into implicit ratings (project choice; the reference does not say).",
    )

    @field_validator("weights")
    @classmethod
    def _every_scoring_event(cls, value: dict[str, float]) -> dict[str, float]:
        if set(value) != set(SCORING_EVENTS):
            raise ValueError(
                f"weights must name exactly the scoring events {list(SCORING_EVENTS)}, got {sorted(value)}"
            )
        return value


class CohortSettings(Group):
    """Member cohorts: division affinity x spend bucket."""

    spend_buckets: int = Field(
        SPEND_BUCKETS,
        description="Spend buckets of near-equal size (reference: 5). Fixed: the cohort partitions are the "
        "5 divisions x 5 buckets of `constants.COHORTS`, and a bucket no partition runs would get no cards.",
    )
    spend_percentile: float = Field(
        0.9, description="Percentile of a member's purchase prices that sets their spend (reference: 90th)."
    )
    division_aliases: dict[str, str] = Field(
        default_factory=lambda: {
            "womens": "women",
            "women's": "women",
            "ladies": "women",
            "mens": "men",
            "men's": "men",
            "children": "kids",
            "kid's": "kids",
            "homeware": "home",
            "home & living": "home",
        },
        description="Division values of the catalog (any case) that mean one of the five cohort divisions "
        "women, men, kids, home, unisex. Events of any other division value do not count towards a member's "
        "division affinity (project choice).",
    )

    @field_validator("spend_buckets")
    @classmethod
    def _buckets_match_the_partitions(cls, value: int) -> int:
        if value != SPEND_BUCKETS:
            raise ValueError(
                f"spend_buckets must be {SPEND_BUCKETS}: the cohort partitions are {len(COHORTS)} fixed keys"
            )
        return value

    @field_validator("division_aliases")
    @classmethod
    def _aliases_name_cohort_divisions(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value.values()) - set(DIVISIONS))
        if unknown:
            raise ValueError(f"division_aliases map to {unknown}, which are not cohort divisions {list(DIVISIONS)}")
        return value


# --- the factor model: one class per engine, so that a setting of one engine cannot be given to another ----


class FactorModel(Group):
    """What every engine reads: the scope of the fit and its seed."""

    scope: Literal["cohort", "global"] = Field(
        "global",
        description="`cohort`: one model per cohort, fitted on the cohort's members only (the reference design); "
        "`global`: one model fitted on every member, each cohort's model its members' factors and every group's "
        "(the cohorts still set the partitions, the popularity features and each cohort's champion). Project "
        "choice (tuning log). The evaluation keeps the other scope as an ablation.",
    )
    seed: int = Field(42, description="Seed of the initialisation, so that a re-run is identical.")


class SoftmaxModel(FactorModel):
    """A softmax choice of the member's next group over factor dot products (`pipeline/softmax.py`), every
    cohort in one Spark job. The default engine (tuning log)."""

    engine: Literal["softmax"] = "softmax"
    rank: int = Field(16, ge=1, description="Latent factors (the group bias comes on top).")
    reg_param: float = Field(
        20.0,
        description="Precision of the Gaussian prior on every factor but the group bias (lambda / 2 |w|^2), the "
        "same in every model (a cohort's included).",
    )
    iterations: int = Field(150, ge=1, description="Full-batch Adam steps.")
    warm_iterations: int = Field(
        30,
        ge=0,
        description="Adam steps of a fit started from an earlier model of the same settings (the day before's "
        "stored model, or the evaluation's previous origin): its members' and groups' factors, new ones drawn "
        "as in a cold start. 0: every fit starts cold (project choice: on the demo, 30 steps from a model a "
        "week older rank as well as 150 from scratch).",
    )
    learning_rate: float = Field(0.05, description="Adam's step size.")
    sampled_groups: int = Field(
        1000,
        ge=0,
        description="Past this many groups, each member's normaliser is its own groups plus this many groups "
        "drawn per step (log-Q corrected), so that a step costs the ratings, not members x groups; at or below "
        "it, and at 0, the full softmax (`pipeline/softmax.py`).",
    )
    num_threads: int = Field(
        1,
        ge=0,
        description="BLAS threads of one fit. One Spark task fits one cohort and Spark runs one task per core, so "
        "1 keeps the cores from being oversubscribed (raise it with spark.task.cpus); a global model, the only "
        "task of its job, uses every core of its executor.",
    )


class AlsModel(FactorModel):
    """What both ALS engines read: implicit-feedback ALS with MLlib's confidence, c = 1 + alpha * r."""

    rank: int = Field(50, ge=1, description="Latent factors (reference: 50).")
    max_iter: int = Field(10, ge=0, description="Iterations (reference: 10; 0 leaves the random start).")
    alpha: float = Field(0.05, description="Implicit confidence scale, c = 1 + alpha * r (reference: 0.05).")


class ImplicitAls(AlsModel):
    """The `implicit` library's CPU ALS (the reference's model), every cohort in one Spark job."""

    engine: Literal["implicit"] = "implicit"
    reg_param: float = Field(
        0.8,
        description="Regularization per rating: a model gets this times its mean count of ratings per member "
        "(MLlib's lambda * n_u for an average member; see `pipeline/factorization.py`).",
    )
    num_threads: int = Field(
        1,
        ge=0,
        description="`implicit`'s own threads of one fit (it keeps one BLAS thread): 1 per Spark task, as for "
        "the softmax engine; a global model uses every core of its executor.",
    )
    conjugate_gradient: bool = Field(
        True,
        description="Solve each row's least squares by a few conjugate-gradient steps (implicit's default, "
        "faster) instead of exactly (as MLlib does, by Cholesky).",
    )


class MllibAls(AlsModel):
    """Spark MLlib's ALS (the reference's engine), cohort after cohort, each fit distributed: for a cohort too
    large for one executor."""

    engine: Literal["mllib"] = "mllib"
    reg_param: float = Field(
        0.3,
        description="Regularization, scaled by each row's count of ratings (reference: 0.01, which fits millions "
        "of members, not cohorts of hundreds).",
    )
    item_blocks_divisor: int = Field(
        5_000, description="Subclass-brands per item block: ceil(items / divisor) blocks (project choice)."
    )
    user_blocks_threshold: int = Field(
        100_000,
        description="Cohort size above which the large user-block divisor applies (the reference picks a "
        "small or a large divisor by a size threshold; the values are project choices).",
    )
    user_blocks_divisor_small: int = Field(5_000, description="Members per user block in small cohorts.")
    user_blocks_divisor_large: int = Field(50_000, description="Members per user block in large cohorts.")
    checkpoint_interval: int = Field(
        -1,
        description="Iterations between checkpoints; -1: none. Checkpoints cut the lineage of long fits on a "
        "cluster (set e.g. 5 there); on one machine they only cost time.",
    )


FactorModelSettings = SoftmaxModel | ImplicitAls | MllibAls
ENGINES = {cls.model_fields["engine"].default: cls for cls in (SoftmaxModel, ImplicitAls, MllibAls)}


class RankingSettings(Group):
    """The ranking pass: top K over the groups on sale, the intent boost, diversification."""

    top_k: int = Field(
        5000,
        ge=1,
        description="K: each member's candidate pool, their best K subclass-brands by prediction, over which the "
        "boost's spread is taken and the boosted and diversified lists are ranked (reference: 5000, which it "
        "also keeps for other uses such as sorting boutiques).",
    )
    stored_ranks: int = Field(
        500,
        ge=1,
        description="Ranks of each affinity table stored per member (of K): what the cards and the evaluation read. "
        "A product feed of 300 styles needs at most 300 groups when each keeps a style after the stock culling; "
        "the evaluation reads at most its largest k. Project choice: K rows per member of a 10,000-group "
        "catalogue would be 5,000 x members rows per table.",
    )
    live_horizon_hours: int = Field(
        24, description="Groups going live within this many hours of the day's end are candidates (reference: 24)."
    )
    boost_window_days: int = Field(10, ge=1, description="Days of browsing looked at for intent (reference: 10).")
    boost_subclasses: int = Field(3, description="Browsed-not-bought subclasses boosted per member (reference: 3).")
    boost_strength: float = Field(
        0.05,
        description="Boost as a share of the member's prediction spread (max - min), added to the prediction "
        "(the reference does not give the size; tuned, see the tuning log).",
    )
    max_groups_per_class: int = Field(3, description="Subclass-brands kept per class per member (reference: 3).")


class ListingSettings(Group):
    """Style listings: the live styles of each group, ranked by the hybrid style score."""

    interaction_window_days: int = Field(
        30, ge=1, description="Days of clicks and purchases behind a style's popularity (project choice)."
    )
    styles_per_group: int = Field(15, description="Styles kept per subclass-brand (reference: ~15).")
    min_qty_on_hand: int = Field(
        3, description="Styles with fewer units left count as nearly sold out and are dropped (reference: 3)."
    )
    new_style_hours: int = Field(72, description="Hours a style counts as new (reference: 72).")
    style_weights: dict[str, float] = Field(
        default_factory=lambda: {
            "views": 1.0,
            "purchases": 3.0,
            "conversion": 2.0,
            "cancellations": 1.0,
            "first_day": 1.5,
            "early_popularity": 1.0,
            "prior_sales": 0.5,
            "days_on_site": 0.5,
            "brand_persistence": 1.0,
        },
        description="Weights of the hybrid style score (the reference names the factors, not their weights: "
        "project choices). See reco_assets/pipeline/listings.py for the formula. Every factor has a weight.",
    )

    @field_validator("style_weights")
    @classmethod
    def _every_style_factor(cls, value: dict[str, float]) -> dict[str, float]:
        factors = set(cls.model_fields["style_weights"].default_factory())
        if set(value) != factors:
            raise ValueError(f"style_weights must name exactly the factors {sorted(factors)}, got {sorted(value)}")
        return value


class CardSettings(Group):
    """The lengths of a member's feeds."""

    product_feed_max: int = Field(300, description="Styles in a member's product feed (reference: 300).")
    product_card_size: int = Field(20, description="Styles in the short product card (project choice).")
    group_cards: int = Field(5, description="Brand or category groups per member (project choice).")
    group_card_size: int = Field(10, description="Styles in a brand or category card (project choice).")
    group_full_size: int = Field(100, description="Styles in a brand or category full list (project choice).")
    group_min_styles: int = Field(
        4, description="Groups with fewer saleable styles are dropped (reference: minimum saleable styles)."
    )


class NeighborSettings(Group):
    """Similar subclass-brands from the groups members' sessions hold together (`pipeline/neighbors.py`)."""

    window_days: int = Field(30, ge=1, description="Days of sessions behind the neighbours (project choice).")
    event_weights: dict[str, float] = Field(
        default_factory=lambda: {"product_view": 1.0, "add_to_cart": 2.0, "still_want_it": 2.0, "purchase": 3.0},
        description="Weight of a group in a session, by its strongest event (project choice: a purchase ties two "
        "groups more than a view).",
    )
    max_session_groups: int = Field(
        50, ge=2, description="Sessions with more groups are dropped: robots and list dumps (project choice)."
    )
    min_co_sessions: int = Field(
        3, ge=1, description="Sessions two groups must share to be neighbours (Amazon Personalize SIMS: 3)."
    )
    popularity_discount: float = Field(
        0.5,
        ge=0.0,
        description="Exponent of the two groups' totals dividing their co-occurrence: 0 ranks by raw "
        "co-occurrence, 0.5 by cosine (Amazon Personalize SIMS's popularity_discount_factor: 0.5).",
    )
    neighbors_per_group: int = Field(20, ge=1, description="Neighbours kept per subclass-brand (project choice).")

    @field_validator("event_weights")
    @classmethod
    def _scoring_kinds(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(SCORING_EVENTS))
        if unknown or any(weight <= 0 for weight in value.values()):
            raise ValueError(f"event_weights: positive weights of scoring events only (unknown: {unknown})")
        return value


class RuleSettings(Group):
    """Co-purchase rules over the groups of members' baskets (`pipeline/rules.py`)."""

    window_days: int = Field(30, ge=1, description="Days of baskets behind the rules (project choice).")
    min_baskets: int = Field(
        5, ge=1, description="Baskets a rule must hold (FPGrowth's minSupport as a count; project choice)."
    )
    min_confidence: float = Field(0.01, gt=0.0, le=1.0, description="Least confidence of a rule (project choice).")
    max_basket_items: int = Field(
        10, ge=2, description="Groups of a basket mined, the first bought (bounds FPGrowth's work; project choice)."
    )
    max_antecedent_items: int = Field(2, ge=1, description="Groups of a rule's antecedent (a page, a small cart).")
    consequents_per_antecedent: int = Field(20, ge=1, description="Consequents kept per antecedent.")


class EvaluationSettings(Group):
    """The rolling backtest, the champion per cohort and the quality gate."""

    holdout_days: int = Field(
        7,
        ge=1,
        description="Days of future interactions a backtest is scored on: the evaluation of day D trains on "
        "what was known through D - holdout_days and tests on the days after it, through D (project choice).",
    )
    relevant_events: list[str] = Field(
        default_factory=lambda: ["purchase", "add_to_cart"],
        description="Event kinds of the test window that count as relevant, and whose recent members make the "
        "popularity features of the ranking pass (the published rankings read them too; project choice).",
    )
    ks: list[int] = Field(default_factory=lambda: [10, 50], description="Cut-offs k of every metric.")
    popularity_window_days: int = Field(
        14,
        ge=1,
        description="Days of purchases and carts behind the popularity baselines and the ranking pass's popularity "
        "features (the published rankings read them too; project choice).",
    )
    seed: int = Field(7, description="Seed of the random baseline and of the member sample.")
    max_members: int = Field(
        20_000,
        description="Members scored by a backtest at most: beyond it, a seeded sample of the members active in the "
        "test window (their rankings and metrics are computed on the driver; 20,000 members give NDCG@10 a "
        "standard error below 0.003).",
    )
    bootstrap_draws: int = Field(
        200,
        ge=20,
        description="Bootstrap resamples of the scored members behind each figure's 95 % interval (`ci_low`, "
        "`ci_high` of `offline_evaluation`); the same resamples for every method (project choice).",
    )
    ablations: bool = Field(
        True,
        description="Also backtest without the boost, without diversification and with the factor model's other "
        "scope (`cohort_scope` beside a global model, `global_scope` beside cohort models).",
    )
    styles: bool = Field(True, description="Also score the product feeds against the styles bought.")
    origins: int = Field(
        4,
        ge=1,
        description="Origins of the rolling backtest reported for a day: the day and the `origin_days` apart "
        "before it, plus one earlier origin that only fits the blend and the first champion (project choice).",
    )
    origin_days: int = Field(7, ge=1, description="Days between two origins of the rolling backtest.")
    cold_start_max_groups: int = Field(
        2,
        description="Members with at most this many positively rated groups in training make the "
        "`little_history` segment of the evaluation (the cold-start share).",
    )
    champion_methods: list[str] = Field(
        default_factory=lambda: ["popularity", "cohort_popularity", "repeat", "no_boost", "model", "blend"],
        description="Ranking methods a cohort's champion is chosen from (`pipeline/methods.py`); leave `model` "
        "alone to publish the reference design whatever the backtest says.",
    )
    champion_min_members: int = Field(
        1000,
        description="A cohort with fewer scored members (summed over the origins) publishes the champion chosen "
        "over everyone rather than its own: below about a thousand, a cohort's NDCG@10 interval is wider than the "
        "usual gap between two methods (project choice).",
    )
    gate_unevaluated: Literal["hold", "publish"] = Field(
        "hold",
        description="Cards of a day whose offline evaluation ran but had no member to score (the first days of a "
        "log, before a test window exists): `hold` them back (default: the gate fails closed) or `publish` them, "
        "marked as not evaluated. A day with no evaluation at all, a stale one or a failed one is always held.",
    )

    @field_validator("relevant_events")
    @classmethod
    def _known_events(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(EVENT_TYPES))
        if unknown or not value:
            raise ValueError(f"relevant_events must be event kinds of {list(EVENT_TYPES)}, got {value}")
        return value

    @field_validator("champion_methods")
    @classmethod
    def _known_methods(cls, value: list[str]) -> list[str]:
        from reco_assets.pipeline.methods import BASELINE_METHODS

        known = {"model", "no_boost", "blend", *BASELINE_METHODS}
        unknown = sorted(set(value) - known)
        if unknown or not value:
            raise ValueError(f"champion_methods must be ranking methods of {sorted(known)}, got {value}")
        return value

    @model_validator(mode="after")
    def _origins_do_not_overlap(self) -> "EvaluationSettings":
        # the blend and champion of an origin learn from the earlier origins' test windows, which must end by
        # its training day: with origins closer than the holdout, they would see what it is scored on
        if self.origin_days < self.holdout_days:
            raise ValueError(
                f"origin_days ({self.origin_days}) must be at least holdout_days ({self.holdout_days}): an "
                "origin's test window would reach past the next origin's training day"
            )
        return self


class ServingSettings(Group):
    """The serving store's versions and the API's readiness."""

    previous_versions: int = Field(
        2,
        ge=1,
        description="Served versions kept besides the current one, for rollback (project choice; at least one, "
        "so that a request that read the pointer just before a switch still finds its version).",
    )
    max_age_hours: float = Field(
        36.0,
        description="`/readyz` fails when the served version was loaded longer ago than this: a day's load "
        "was missed (project choice: a daily load plus half a day).",
    )


class SessionSettings(Group):
    """Events posted to the API and the lists re-ranked by them at request time (`serving/rerank.py`)."""

    max_events: int = Field(50, ge=1, description="Recent events kept per shopper (project choice).")
    window_minutes: int = Field(
        120, ge=1, description="Events kept are at most this much older than the shopper's newest (project choice)."
    )
    max_batch_events: int = Field(500, ge=1, description="Events one `POST /v1/events` may carry (project choice).")
    group_boost: float = Field(
        0.0,
        description="Added to an item whose subclass-brand the session browsed and did not buy, beyond its "
        "subclass's boost (the replay cannot fit it: its targets are groups the session has not shown).",
    )
    subclass_boost: float = Field(
        1.0,
        description="Added to an item whose subclass the session browsed and bought nothing of (fitted by replay "
        "on the demo: `offline_evaluation`'s `session_rerank` metadata).",
    )
    neighbor_weight: float = Field(
        0.1, ge=0.0, description="Scale of the items drawn in from the session groups' similar lists (fitted)."
    )
    neighbor_groups: int = Field(
        3, ge=0, description="The session's most recent subclass-brands whose similar lists are drawn in."
    )
    neighbor_items: int = Field(20, ge=0, description="Items drawn in from the head of each similar list.")

    def weights(self) -> Weights:
        chosen = self.group_boost, self.subclass_boost, self.neighbor_weight, self.neighbor_groups
        return Weights(*chosen, self.neighbor_items)


class LakehouseSettings(Group):
    """Upkeep of the Delta tables."""

    vacuum_retention_hours: int = Field(
        168,
        ge=0,
        description="Hours `vacuum` keeps the files of replaced partitions (so versions of that age still load) "
        "and files no version names (a killed write's) before deleting them (Delta's default: a week). Shorter "
        "than the longest write, it would delete the files of a write in progress.",
    )


class RecoSettings(ConfigurableResource):
    """The settings of the daily recommendation run, one group per part of the pipeline."""

    ingestion: IngestionSettings = Field(default_factory=IngestionSettings)
    ratings: RatingsSettings = Field(default_factory=RatingsSettings)
    cohorts: CohortSettings = Field(default_factory=CohortSettings)
    factor_model: FactorModelSettings = Field(default_factory=SoftmaxModel, discriminator="engine")
    ranking: RankingSettings = Field(default_factory=RankingSettings)
    listings: ListingSettings = Field(default_factory=ListingSettings)
    cards: CardSettings = Field(default_factory=CardSettings)
    neighbors: NeighborSettings = Field(default_factory=NeighborSettings)
    rules: RuleSettings = Field(default_factory=RuleSettings)
    evaluation: EvaluationSettings = Field(default_factory=EvaluationSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)
    sessions: SessionSettings = Field(default_factory=SessionSettings)
    lakehouse: LakehouseSettings = Field(default_factory=LakehouseSettings)

    @model_validator(mode="after")
    def _stored_ranks_cover_the_metrics(self) -> "RecoSettings":
        if self.ranking.stored_ranks < max(self.evaluation.ks):
            raise ValueError(
                f"ranking.stored_ranks ({self.ranking.stored_ranks}) must be at least the evaluation's largest k "
                f"({max(self.evaluation.ks)}): the published lists are scored to that depth"
            )
        return self

    # --- windows: how far back each stage reads, computed here only ------------------------------------

    def lookback_days(self) -> int:
        """The longest window of events a day's tables read, the day included (ratings and cohorts, listings,
        the boost, the popularity features of the ranking pass, the neighbours, the co-purchase rules)."""
        return max(
            self.ratings.lookback_days,
            self.listings.interaction_window_days,
            self.ranking.boost_window_days,
            self.evaluation.popularity_window_days,
            self.neighbors.window_days,
            self.rules.window_days,
        )

    def evaluation_reach(self) -> int:
        """Days from the evaluated day back to the training day of its oldest origin."""
        return self.evaluation.holdout_days + self.evaluation.origins * self.evaluation.origin_days

    def events_reach(self) -> int:
        """Days of events the evaluation of a day reads, the day included: every origin's training windows."""
        return self.evaluation_reach() + self.lookback_days()

    # --- what the stages are given ----------------------------------------------------------------------

    def model_key(self) -> str:
        """A short fingerprint of what a stored model was fitted with: the factor model's settings (its engine's
        only, but for `SPEED_ONLY`) and those of the ratings and cohorts. A stored model with the same key is
        the one these settings would fit again."""
        text = json.dumps(
            {
                "factor_model": self.factor_model.model_dump(exclude=SPEED_ONLY),
                "ratings": self.ratings.model_dump(),
                "cohorts": self.cohorts.model_dump(),
            },
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def rank_params(self):
        """The parameters of the ranking pass (top K, boost, per-class limit)."""
        from reco_assets.pipeline.affinities import RankParams

        return RankParams(
            top_k=self.ranking.top_k,
            boost_strength=self.ranking.boost_strength,
            max_groups_per_class=self.ranking.max_groups_per_class,
            purchase_points=self.ratings.weights["purchase"],
            keep=self.ranking.stored_ranks,
        )

    def input_limits(self):
        """What a landed record may hold."""
        from reco_assets.pipeline.ingestion import InputLimits

        return InputLimits(max_quantity=self.ingestion.max_quantity, max_price=self.ingestion.max_price)

    def card_limits(self):
        """The feed lengths the cards stage builds."""
        from reco_assets.pipeline.cards import CardLimits

        return CardLimits(**self.cards.model_dump())

    def changed(self, overrides: dict[str, Any]) -> "RecoSettings":
        """These settings with `overrides` (`group.name` or `group.name.key` -> value). Naming another engine
        (`factor_model.engine`) starts from that engine's defaults, keeping the scope and seed (naming the engine
        in force changes nothing); a name the group does not have is an error."""
        values = self.model_dump()
        engine = overrides.get("factor_model.engine")
        if engine is not None and engine != self.factor_model.engine:  # first: its own settings may follow
            if engine not in ENGINES:
                raise ValueError(f"factor_model.engine: {engine!r} is not one of {list(ENGINES)}")
            old = values["factor_model"]
            values["factor_model"] = ENGINES[engine](scope=old["scope"], seed=old["seed"]).model_dump()
        for path, value in overrides.items():
            if path == "factor_model.engine":
                continue
            group, _, rest = path.partition(".")
            if group not in type(self).model_fields or not rest:
                raise ValueError(
                    f"no setting {path!r}: settings are named group.name, groups {list(type(self).model_fields)}"
                )
            *parents, leaf = rest.split(".")
            target = values[group]
            for name in parents:
                if not isinstance(target.get(name), dict):
                    raise ValueError(f"no setting {path!r}")
                target = target[name]
            if leaf not in target:  # a key of a dict too: to add keys, give the dict whole
                raise ValueError(f"no setting {path!r} (there are {sorted(target)})")
            target[leaf] = value
        return settings_from(values)


def settings_from(values: dict[str, Any]) -> RecoSettings:
    """Settings from their nested form (`model_dump`, the settings file)."""
    if not isinstance(values, dict) or not all(isinstance(group, dict) for group in values.values()):
        raise ValueError("settings are an object of groups, each an object of settings")
    groups = {}
    for name, field in RecoSettings.model_fields.items():
        if name not in values:
            continue
        if name == "factor_model":
            engine = values[name].get("engine", RecoSettings().factor_model.engine)
            if engine not in ENGINES:
                raise ValueError(f"factor_model.engine: {engine!r} is not one of {list(ENGINES)}")
            groups[name] = ENGINES[engine](**values[name])
        else:
            groups[name] = field.annotation(**values[name])
    unknown = set(values) - set(RecoSettings.model_fields)
    if unknown:
        raise ValueError(f"unknown settings groups {sorted(unknown)}; groups are {list(RecoSettings.model_fields)}")
    return RecoSettings(**groups)


def load_settings(home: Path) -> RecoSettings:
    """The settings in force for `home`: its settings file over the defaults (the defaults without one). A file
    that is not valid settings is a `ValueError` naming it."""
    path = Path(home) / SETTINGS_FILE
    if not path.is_file():
        return RecoSettings()
    try:
        return settings_from(json.loads(path.read_text()))
    except (ValueError, TypeError, AttributeError) as error:  # pydantic's ValidationError is a ValueError
        raise ValueError(f"{path} does not hold valid settings: {error}") from error


def save_settings(home: Path, settings: RecoSettings) -> Path:
    """Write `settings` as the settings in force for `home`, whole (written beside, then renamed into place):
    the engine, and the fields that differ from the defaults (a dict-valued field whole), so that a later change
    of another default reaches the home."""
    path = Path(home) / SETTINGS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    defaults = RecoSettings().model_dump()
    engine = settings.factor_model.engine
    if engine != defaults["factor_model"]["engine"]:  # the engine's settings against its own defaults
        defaults["factor_model"] = {"engine": None} | ENGINES[engine]().model_dump(exclude={"engine"})
    changed = _difference(settings.model_dump(), defaults)
    changed["factor_model"] = {"engine": engine} | changed.get("factor_model", {})
    partial = path.with_name(f".{path.name}.tmp")
    partial.write_text(json.dumps(changed, indent=2, sort_keys=True) + "\n")
    partial.replace(path)
    return path


def _difference(values: dict, defaults: dict) -> dict:
    """The groups' fields of `values` that differ from `defaults` (dict-valued fields whole)."""
    out = {}
    for group, fields in values.items():
        base = defaults.get(group, {})
        diff = {name: value for name, value in fields.items() if base.get(name) != value}
        if diff:
            out[group] = diff
    return out
