"""Open CDP / REES46 e-commerce clickstream -> landing records.

Columns `event_time` (`YYYY-MM-DD HH:MM:SS UTC`), `event_type`, `product_id`, `category_id`, `category_code`,
`brand`, `price`, `user_id`, `user_session`.

- Kinds: view -> product_view, cart -> add_to_cart, remove_from_cart, purchase; any other kind is kept as
  it is and quarantined by ingestion as `unknown_event_type`.
- Hierarchy from the dotted `category_code`: department = first part, class = first two parts, subclass =
  the whole code. An empty code becomes department and class `unknown` and subclass `category_<category_id>`
  (the numeric category still groups the products). An empty brand becomes `unknown`.
- Division (for the cohorts): kids -> kids; furniture, appliances, construction, country_yard -> home;
  everything else -> unisex. The data has no gender, so Women and Men cohorts stay empty.
- `event_id` = a hash of the record's text: a line repeated verbatim is quarantined as `duplicate_event_id`.
- A record whose time, price or ids do not parse is landed as read, in the day of the previous line, so
  that ingestion quarantines it with its reason (`bad_type:event_time`, `missing_field:member_id`, ...); so is
  a negative price or one above `max_price` (neither reaches the catalog). Rejected here, with the rows the
  CSV reader rejects: a field longer than 256 bytes (`too_long:<field>`), a name the catalog snapshot cannot
  hold on one line (`unsafe_character:brand`, `:category_code`, `:category_id`: a line break), a price that
  is NaN or infinite (`non_finite:price`).
"""

from collections.abc import Callable
from datetime import datetime, timezone
from hashlib import blake2b

from reco_assets.adapters.ids import IdMap
from reco_assets.adapters.landing import ObservedCatalog, Product, iso
from reco_assets.adapters.source import check_text, number

COLUMNS = [
    "event_time",
    "event_type",
    "product_id",
    "category_id",
    "category_code",
    "brand",
    "price",
    "user_id",
    "user_session",
]
NAMES = ["category_id", "category_code", "brand"]
"""The fields the catalog's names are made of."""
KINDS = {"view": "product_view", "cart": "add_to_cart", "remove_from_cart": "remove_from_cart", "purchase": "purchase"}
HOME = {"furniture", "appliances", "construction", "country_yard"}


def _time(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S UTC").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def hierarchy(category_id: str, category_code: str) -> tuple[str, str, str, str]:
    """(division, department, class, subclass) of a category."""
    if not category_code:
        return "unisex", "unknown", "unknown", f"category_{category_id}"
    parts = category_code.split(".")
    division = "kids" if parts[0] == "kids" else "home" if parts[0] in HOME else "unisex"
    return division, parts[0], ".".join(parts[:2]), category_code


def reader(ids: IdMap, catalog: ObservedCatalog) -> Callable[[str, dict[str, str]], tuple[datetime | None, dict]]:
    """A function of (record text, fields) -> (time or None when unparseable, landing record); raises `Rejected`."""

    def record(text: str, row: dict[str, str]) -> tuple[datetime | None, dict]:
        check_text(row, COLUMNS, NAMES)
        price = number(row, "price")
        at = _time(row["event_time"])
        kind = row["event_type"]
        user, product, session = row["user_id"], row["product_id"], row["user_session"]
        landed = {
            "event_id": "ocdp-" + blake2b(text.encode(), digest_size=10).hexdigest(),
            "event_time": iso(at) if at else row["event_time"],
            "member_id": ids("member", user) if user else None,
            "event_type": KINDS.get(kind, kind),
            "style_id": ids("style", product) if product else None,
            "session_id": session or None,
            "price": price,
            "quantity": 1 if kind in ("cart", "remove_from_cart", "purchase") else None,
        }
        if at and product and isinstance(price, float):
            division, department, klass, subclass = hierarchy(row["category_id"], row["category_code"])
            brand = row["brand"].strip() or "unknown"
            catalog.observe(
                Product(
                    landed["style_id"],
                    ids("subclass_brand", f"{subclass}|{brand}"),
                    brand,
                    division,
                    department,
                    klass,
                    subclass,
                    price,
                    at,
                    at,
                )
            )
        return at, landed

    return record
