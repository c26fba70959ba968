"""Styles withdrawn since the cards were built: sold out or ended at the latest inventory snapshot.

The cards of a day are built from the day's catalog (or a release's); each later release snapshot that
lands in the lakehouse says which of the day's styles are no longer saleable at its instant. The API drops
those from its answers at request time, until the next version of the cards replaces them.
"""

from datetime import date

import duckdb
import pyarrow as pa

from reco_assets.constants import RELEASES
from reco_assets.pipeline.catalog import release_instant, sale_window
from reco_assets.resources.lakehouse import Lakehouse
from reco_assets.serving.store import NOTHING_WITHDRAWN, Withdrawn


def latest_snapshot(lakehouse: Lakehouse, day: date) -> str | None:
    """The latest release whose snapshot of the cards of `day` is in `release_catalog`, or None."""
    delta = lakehouse.table("release_catalog")
    if delta is None:
        return None
    landed = {p["release"] for p in delta.partitions() if p["as_of_date"] == day.isoformat()}
    return max((r for r in RELEASES if r in landed), default=None)


def withdrawn_styles(lakehouse: Lakehouse, day: date, styles: frozenset[str], min_qty: int) -> Withdrawn:
    """Of the version's `styles`, those the latest snapshot of `day` shows off sale, missing, or below
    `min_qty` units (unknown stock counts as available); none before the first release snapshot."""
    release = latest_snapshot(lakehouse, day)
    if release is None or not styles:
        return NOTHING_WITHDRAWN
    start, end = sale_window(day, release)
    with duckdb.connect() as con:
        con.register("releases", lakehouse.dataset("release_catalog"))
        con.register("styles", pa.table({"style_id": pa.array(sorted(int(s) for s in styles), pa.int64())}))
        withdrawn = con.execute(
            """
            WITH latest AS (SELECT * FROM releases WHERE as_of_date = $day AND release = $release)
            SELECT v.style_id FROM styles v LEFT JOIN latest s USING (style_id)
            WHERE s.style_id IS NULL OR NOT (s.live_from < $end AND s.live_until > $start)
               OR s.qty_on_hand < $min_qty
            """,
            {"day": day, "release": release, "start": start, "end": end, "min_qty": min_qty},
        ).fetchall()
    at = release_instant(day, release)
    return Withdrawn(f"{at:%Y-%m-%d %H:%M %Z}".strip(), frozenset(str(s) for (s,) in withdrawn))
