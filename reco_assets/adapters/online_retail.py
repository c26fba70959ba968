"""Retail invoice lines (UCI Online Retail) -> landing records, in a degraded mode without brand or hierarchy.

Columns `InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice, CustomerID, Country`.

- Every line is a `purchase` of `Quantity` units (its points count per unit). A cancellation (invoice `C…`
  or a negative quantity) is a `return` of the absolute quantity, which takes the points back.
- A line without a `CustomerID` is landed without a member and quarantined by ingestion as
  `missing_field:member_id`; a zero quantity as `non_positive_quantity`; a negative price (bad-debt
  adjustments) as `negative_price`, a price above `max_price` as `out_of_range:price` (neither reaches the
  catalog). Rejected here, with the rows the CSV reader rejects: a field read longer than 256 bytes
  (`too_long:<field>`), a price that is NaN or infinite (`non_finite:UnitPrice`).
- Degraded hierarchy: there is no brand or category. A product's group (its "subclass-brand") is its item
  group: the first three digits of the stock code (`85123A` -> `851`); class = the first two digits;
  codes that do not start with digits (postage, fees, manual lines) form the group `other`. Brand
  `unbranded`, department `all`, division `unisex`: the cohorts are by spend only (`unisex_1` .. `unisex_5`).
- `InvoiceDate` is the shop's local time, taken as UTC. `event_id` = `invoice/stock code/n` (n counts repeats
  of a code in one invoice), so re-importing the same file gives the same ids; the session is the invoice.
"""

import re
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timezone

from reco_assets.adapters.ids import IdMap
from reco_assets.adapters.landing import ObservedCatalog, Product, iso
from reco_assets.adapters.source import check_text, number

COLUMNS = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"]
READ = ["InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID"]
"""The fields this adapter reads, each bounded (`Description` and `Country` are not read)."""
LEADING_DIGITS = re.compile(r"^\d+")


def _time(text: str) -> datetime | None:
    for layout in ("%Y-%m-%d %H:%M:%S", "%m/%d/%Y %H:%M"):  # the UCI file and its common CSV export
        try:
            return datetime.strptime(text, layout).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    return None


def item_group(stock_code: str) -> tuple[str, str]:
    """(class, subclass) of a stock code: its first two and three digits, or `other`."""
    digits = LEADING_DIGITS.match(stock_code)
    if not digits or len(digits.group()) < 3:
        return "other", "other"
    return digits.group()[:2], digits.group()[:3]


def customer(text: str) -> str:
    """`17850.0` (a spreadsheet export) and `17850` are one customer."""
    return text[:-2] if text.endswith(".0") else text


def reader(ids: IdMap, catalog: ObservedCatalog) -> Callable[[str, dict[str, str]], tuple[datetime | None, dict]]:
    """A function of (record text, fields) -> (time or None when unparseable, landing record); raises `Rejected`."""
    repeats: Counter = Counter()

    def record(_: str, row: dict[str, str]) -> tuple[datetime | None, dict]:
        check_text(row, READ, ())
        price = number(row, "UnitPrice")
        invoice, stock = row["InvoiceNo"].strip(), row["StockCode"].strip()
        at = _time(row["InvoiceDate"].strip())
        try:
            quantity: int | str | None = int(row["Quantity"])
        except ValueError:
            quantity = row["Quantity"] or None
        cancelled = invoice.startswith("C") or (isinstance(quantity, int) and quantity < 0)
        repeats[(invoice, stock)] += 1
        who = customer(row["CustomerID"].strip())
        landed = {
            "event_id": f"{invoice}/{stock}/{repeats[(invoice, stock)]}",
            "event_time": iso(at) if at else row["InvoiceDate"],
            "member_id": ids("member", who) if who else None,
            "event_type": "return" if cancelled else "purchase",
            "style_id": ids("style", stock) if stock else None,
            "session_id": invoice or None,
            "price": price,
            "quantity": abs(quantity) if isinstance(quantity, int) else quantity,
        }
        if at and stock and isinstance(price, float):
            klass, subclass = item_group(stock)
            catalog.observe(
                Product(
                    landed["style_id"],
                    ids("item_group", subclass),
                    "unbranded",
                    "unisex",
                    "all",
                    klass,
                    subclass,
                    price,
                    at,
                    at,
                )
            )
        return at, landed

    return record
