"""The answers' schemas, for the OpenAPI document (answers are stored bytes or built from them, not from these),
and the cart's request body."""

from typing import Literal

from pydantic import BaseModel, Field

ID_TEXT = (
    "Decimal string. Ids are 63-bit integers, beyond the 53 bits a JavaScript number holds exactly, so every "
    "id travels as a string."
)


class Group(BaseModel):
    position: int = Field(description="1-based rank of the group in its feed.")
    group_key: str = Field(
        description="`all` (products), the brand, or the class key (JSON path [division, department, class]); "
        "`popular` in a fallback."
    )
    group_name: str = Field(description="Title to show, e.g. 'Nike you might like'.")
    affinity: float | None = Field(description="Summed affinity of the member's groups behind it (null: fallback).")
    card: list[str] = Field(description=f"Style ids of the short card, best first. {ID_TEXT}")
    full: list[str] = Field(description=f"Style ids of the full list, best first; `card` is its head. {ID_TEXT}")
    card_source_ids: list[str] | None = Field(None, description="Imported data: the source's ids of `card`.")
    full_source_ids: list[str] | None = Field(None, description="Imported data: the source's ids of `full`.")


class Feeds(BaseModel):
    products: list[Group] = Field(description="One group: the member's product feed (at most 300 styles).")
    brands: list[Group] = Field(description="Brand cards, best first.")
    categories: list[Group] = Field(description="Category (class) cards, best first.")


class Ranking(BaseModel):
    method: str = Field(
        description="The method the cohort's lists were ranked by, its champion on the rolling backtest: `model`, "
        "`no_boost`, `blend` or a baseline (`repeat`, `cohort_popularity`, `popularity`)."
    )
    versus: str | None = Field(None, description="The runner-up on the rolling backtest.")
    margin: float | None = Field(
        None,
        description="NDCG@10 over subclass-brands of the method minus the runner-up's (the best other "
        "candidate); negative when the cohort keeps the choice made over everyone though its own best leads it "
        "within noise.",
    )
    margin_ci: list[float] | None = Field(None, description="The margin's 95 % interval (bootstrap over members).")


class SessionSummary(BaseModel):
    reranked: bool = Field(description="True: the list was re-ranked by the session's events.")
    events: int = Field(description="The session's recent events it was re-ranked from.")


class Payload(BaseModel):
    member_id: str | None = Field(description=f"The lakehouse's member id. {ID_TEXT}")
    member_source_id: str | None = Field(None, description="Imported data: the source's member id.")
    as_of_date: str = Field(description="Day of the data the cards were computed from (served the next day).")
    version: str = Field(description="The served version (also in the `X-Reco-Version` header).")
    source: str = Field(description="`member_cards` (the nightly batch) or `release_cards:<HHMM>` (a release).")
    cohort: str | None = Field(description="The member's cohort, e.g. `women_3` (null: fallback).")
    fallback: bool = Field(
        description="True when the member has no recommendations of their own (new, or nothing rated): the "
        "day's most popular styles on sale instead."
    )
    feeds: Feeds
    ranking: Ranking | None = Field(None, description="How the cohort's lists were ranked; absent in a fallback.")
    session_id: str | None = Field(None, description="The session asked about (`/v1/sessions/{session_id}/...`).")
    session: SessionSummary | None = Field(
        None, description="Present when the shopper's session had events: the product feed re-ranked by them."
    )


class StyleEntry(BaseModel):
    style_id: str = Field(description=f"A recommended style. {ID_TEXT}")
    score: float = Field(
        description="Higher first; comparable within one list only. A cart's: the best lift x confidence of a "
        "rule from the cart to the style's group, divided by the style's rank in its group's listing."
    )
    group_key: str = Field(description="The style's subclass-brand id (decimal string).")
    style_source_id: str | None = Field(None, description="Imported data: the source's id of the style.")


class StyleList(BaseModel):
    style_id: str = Field(description=f"The style asked about, by the lakehouse's id. {ID_TEXT}")
    style_source_id: str | None = Field(None, description="Asked by source id (`id_namespace=source`): that id.")
    group_key: str = Field(
        description="The style's subclass-brand id (decimal string): the list is the same for every style of it."
    )
    version: str = Field(description="The served version (also in the `X-Reco-Version` header).")
    as_of_date: str = Field(description="Day of the data the lists were computed from.")
    fallback: bool = Field(
        description="True when the subclass-brand has no list of its own: the popular styles of its class "
        "(similar) or of the baskets (bought together) instead."
    )
    styles: list[StyleEntry] = Field(
        description="Best first, without the style asked about and the styles sold out or ended since the version "
        "was built; at most `limit`."
    )
    session: SessionSummary | None = Field(
        None, description="Present when `session_id` had events: the list re-ranked by them."
    )


class Basket(BaseModel):
    style_ids: list[str] = Field(
        min_length=1,
        max_length=100,
        description=f"The cart's styles (1 to 100), in the order they were added. {ID_TEXT} (Source ids with "
        "`id_namespace=source`.)",
    )


class BasketList(BaseModel):
    style_ids: list[str] = Field(description="The cart's styles, as given.")
    version: str = Field(description="The served version (also in the `X-Reco-Version` header).")
    as_of_date: str = Field(description="Day of the data the rules and listings were computed from.")
    fallback: bool = Field(
        description="True when no co-purchase rule matches the cart (or none of its styles is known): the styles "
        "most often bought, without the cart's, instead."
    )
    unknown_style_ids: list[str] = Field(
        description="The cart's styles (as given) that the served version does not know; they are ignored."
    )
    styles: list[StyleEntry] = Field(
        description="Styles of the subclass-brands bought with the cart's, best first (ties: the smaller id), "
        "without the cart's subclass-brands and styles and the styles sold out or ended since the version was "
        "built; at most `limit`."
    )
    session: SessionSummary | None = Field(
        None, description="Present when `session_id` had events: the list re-ranked by them."
    )


class Event(BaseModel):
    """An event in the landing format (README, "Ingestion rules"); fields outside it are kept and ignored."""

    event_id: str = Field(description="Unique per event: an id posted twice counts once.")
    event_time: str = Field(description="ISO 8601 with an offset, e.g. `2026-11-01T10:00:00Z`, on the served day.")
    member_id: int | None = Field(None, description="The member (a JSON integer); absent for an anonymous shopper.")
    event_type: str = Field(description="`product_view`, `add_to_cart`, `purchase`, … (8 kinds).")
    style_id: int | None = Field(None, description="The style (a JSON integer); required on item events.")
    session_id: str = Field(description="The shopper's session, unique across shoppers (e.g. a cookie).")
    price: float | None = Field(None, description="Required on item events.")
    quantity: int | None = Field(None, description="Optional, at least 1.")


class EventBatch(BaseModel):
    events: list[Event] = Field(description="The events, at most `sessions.max_batch_events` (500).")


class EventStatus(BaseModel):
    event_id: str | None = Field(description="The event's id as posted (null when it is not a string).")
    status: Literal["accepted", "rejected"]
    reason: str | None = Field(
        None,
        description="Why it was rejected: ingestion's rule (`missing_field:style_id`, `outside_day`, …), "
        "`day_closed` (the served day's batch has begun) or `duplicate_event_id`.",
    )


class EventsAnswer(BaseModel):
    version: str = Field(description="The served version, whose day the events must fall on.")
    serving_day: str = Field(description="The served day (the day after the cards' day): the API's today.")
    accepted: int
    rejected: int
    events: list[EventStatus] = Field(description="One per event posted, in the batch's order.")


FeedName = Literal["products", "brands", "categories"]
Namespace = Literal["lakehouse", "source"]
