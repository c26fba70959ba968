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
- `event_id` = a hash of the line: a line repeated verbatim is quarantined as `duplicate_event_id`.
- A record whose time, price or ids do not parse is landed as read, in the day of the previous line, so
  that ingestion quarantines it with its reason (`bad_type:event_time`, `missing_field:member_id`, ...).
"""

from collections.abc import Iterator
from datetime import datetime, timezone
from hashlib import blake2b

from reco_assets.adapters.ids import IdMap
from reco_assets.adapters.landing import ObservedCatalog, Product, iso

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
KINDS = {"view": "product_view", "cart": "add_to_cart", "remove_from_cart": "remove_from_cart", "purchase": "purchase"}
HOME = {"furniture", "appliances", "construction", "country_yard"}


def _time(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S UTC").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def _number(text: str) -> float | str | None:
    try:
        return float(text)
    except ValueError:
        return text or None


def hierarchy(category_id: str, category_code: str) -> tuple[str, str, str, str]:
    """(division, department, class, subclass) of a category."""
    if not category_code:
        return "unisex", "unknown", "unknown", f"category_{category_id}"
    parts = category_code.split(".")
    division = "kids" if parts[0] == "kids" else "home" if parts[0] in HOME else "unisex"
    return division, parts[0], ".".join(parts[:2]), category_code


def records(
    rows: Iterator[tuple[str, dict]], ids: IdMap, catalog: ObservedCatalog
) -> Iterator[tuple[datetime | None, dict]]:
    """(time or None when unparseable, landing record) per input row; `rows` gives (raw line, fields)."""
    for raw, row in rows:
        at = _time(row.get("event_time") or "")
        kind = row.get("event_type") or ""
        user, product, session = row.get("user_id") or "", row.get("product_id") or "", row.get("user_session") or ""
        price = _number(row.get("price") or "")
        record = {
            "event_id": "ocdp-" + blake2b(raw.encode(), digest_size=10).hexdigest(),
            "event_time": iso(at) if at else row.get("event_time"),
            "member_id": ids("member", user) if user else None,
            "event_type": KINDS.get(kind, kind),
            "style_id": ids("style", product) if product else None,
            "session_id": session or None,
            "price": price,
            "quantity": 1 if kind in ("cart", "remove_from_cart", "purchase") else None,
        }
        if at and product and isinstance(price, float):
            division, department, klass, subclass = hierarchy(
                row.get("category_id") or "", row.get("category_code") or ""
            )
            brand = (row.get("brand") or "").strip() or "unknown"
            catalog.observe(
                Product(
                    record["style_id"],
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
        yield at, record
