"""The cards a day publishes, as the serving layer reads them: its latest release refresh, else the day's
`member_cards`; with the checks that a loaded version matches them (DuckDB over the lakehouse files)."""

from dataclasses import dataclass
from datetime import date, datetime, timezone

import duckdb
import orjson
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession

from reco_assets.adapters.ids import ID_MAP
from reco_assets.constants import COHORTS, RELEASES
from reco_assets.evaluation.gate import published_rankings
from reco_assets.resources.lakehouse import Lakehouse, MissingPartition, partitions_predicate
from reco_assets.serving.payloads import FEEDS, fallback_payload
from reco_assets.serving.store import MEMBER, ServingStore
from reco_assets.settings import RecoSettings


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def published_release(lakehouse: Lakehouse, day: date) -> str | None:
    """The latest release whose cards of `day` are published and newer than the day's `member_cards`, or
    None (the day's `member_cards` stand: none yet, or the day's cards were published again since)."""
    delta = lakehouse.table("release_cards")
    if delta is None:
        return None
    released = {
        partition["release"]
        for partition in delta.partitions()
        if partition["as_of_date"] == day.isoformat() and partition["release"] in RELEASES
    }
    cards_at = lakehouse.written_at("member_cards", {"as_of_date": day})
    current = [
        release
        for release in released
        if lakehouse.written_at("release_cards", {"as_of_date": day, "release": release}) >= cards_at
    ]
    return max(current) if current else None


@dataclass(frozen=True)
class PublishedCards:
    lakehouse: Lakehouse
    day: date
    release: str | None

    @property
    def table(self) -> str:
        return "release_cards" if self.release else "member_cards"

    @property
    def source(self) -> str:
        return f"release_cards:{self.release}" if self.release else "member_cards"

    @property
    def label(self) -> str:
        """Short name of the source in version names: `batch` or the release (HHMM)."""
        return self.release or "batch"

    @property
    def partition(self) -> dict:
        extra = {"release": self.release} if self.release else {}
        return {"as_of_date": self.day, "cohort": list(COHORTS)} | extra

    @property
    def listings(self) -> tuple[str, dict]:
        if self.release:
            return "release_listings", {"as_of_date": self.day, "release": self.release}
        return "style_listings", {"as_of_date": self.day}

    def written_at(self) -> float:
        """When these cards were published, or the day's champions (whose margins their payloads carry)
        chosen again since, whichever is later (epoch seconds): tells one publication of a day from the next."""
        written = self.lakehouse.written_at(self.table, self.partition)
        try:
            return max(written, self.lakehouse.written_at("ranking_champions", {"as_of_date": self.day}))
        except MissingPartition:  # cards of a day without an evaluation (`gate_unevaluated` = "publish")
            return written

    def rankings(self) -> dict[str, dict]:
        """Cohort -> the payload's `ranking`: the method its cards were built from, its margin when it is the
        day's champion (`gate.published_rankings`)."""
        return published_rankings(self.lakehouse, self.day)

    def is_served_by(self, manifest) -> bool:
        """`manifest` (a served version's) was built from exactly this publication of the cards."""
        return manifest is not None and (manifest.as_of_date, manifest.source, manifest.cards_written_at) == (
            str(self.day),
            self.source,
            self.written_at(),
        )

    def spark(self, session: SparkSession) -> DataFrame:
        return self.lakehouse.read_spark(session, self.table, partition=self.partition)

    def sql(self, query: str, **tables) -> list[tuple]:
        """`query` over the cards (as `cards`, only this day and source) and other named Arrow datasets."""
        self.lakehouse.require(self.table, self.partition)
        with duckdb.connect() as con:
            con.register("all_cards", self.lakehouse.dataset(self.table))
            con.execute(f"CREATE VIEW cards AS SELECT * FROM all_cards WHERE {partitions_predicate(self.partition)}")
            for name, data in tables.items():
                con.register(name, data)
            return con.execute(query).fetchall()


def cards(lakehouse: Lakehouse, day: date) -> PublishedCards:
    return PublishedCards(lakehouse, day, published_release(lakehouse, day))


def fallback(cards: PublishedCards, version: str, settings: RecoSettings) -> dict:
    """The fallback payload of the version: the `product_feed_max` styles of the day's listings with the
    most clicks and purchases (`popularity_score`), then the best listing score."""
    table, partition = cards.listings
    cards.lakehouse.require(table, partition)
    id_map = cards.lakehouse.dataset(ID_MAP)
    with duckdb.connect() as con:
        con.register("listings", cards.lakehouse.dataset(table))
        top = con.execute(
            f"""SELECT style_id FROM listings WHERE {partitions_predicate(partition)}
                ORDER BY popularity_score DESC NULLS LAST, score DESC NULLS LAST, style_id
                LIMIT {int(settings.cards.product_feed_max)}"""
        ).fetchall()
        styles = [str(s) for (s,) in top]
        source_ids = None
        if id_map is not None:
            con.register("id_map", id_map)
            con.register("top", pa.table({"style_id": [int(s) for s in styles], "at": list(range(len(styles)))}))
            mapped = con.execute(
                """SELECT m.source_id FROM top t
                   LEFT JOIN (SELECT * FROM id_map WHERE namespace = 'style') m ON m.id = t.style_id ORDER BY t.at"""
            ).fetchall()
            source_ids = [s for (s,) in mapped]
    return fallback_payload(styles, source_ids, settings.cards.product_card_size, str(cards.day), version, cards.source)


@dataclass(frozen=True)
class Expected:
    members: int
    sources: int


def expected_keys(cards: PublishedCards) -> Expected:
    """Members with cards, and distinct source member ids among them (imported data)."""
    source = "count(DISTINCT member_source_id)" if _imported(cards) else "0"
    members, sources = cards.sql(f"SELECT count(DISTINCT member_id), {source} FROM cards")[0]
    return Expected(members, sources)


def _imported(cards: PublishedCards) -> bool:
    return "member_source_id" in cards.lakehouse.dataset(cards.table).schema.names


def expected_payload(
    rows: list[dict], as_of_date: str, version: str, source: str, rankings: dict[str, dict] | None = None
) -> dict:
    """A member's payload rebuilt in plain Python from their card rows (the check's independent path)."""
    first = rows[0]
    feeds: dict[str, dict] = {feed: {} for feed in FEEDS}
    imported = "style_source_ids" in first
    for row in rows:
        group = feeds[row["feed"]].setdefault(
            row["position"],
            {k: row[k] for k in ("position", "group_key", "group_name", "affinity")},
        )
        group["card" if row["variant"] == "card" else "full"] = [str(s) for s in row["style_ids"]]
        if imported:
            group[f"{row['variant']}_source_ids"] = row["style_source_ids"]
    document = {
        "member_id": str(first["member_id"]),
        "as_of_date": as_of_date,
        "version": version,
        "source": source,
        "cohort": first["cohort"],
        "fallback": False,
        "feeds": {feed: [groups[p] for p in sorted(groups)] for feed, groups in feeds.items()},
    }
    if (rankings or {}).get(first["cohort"]) is not None:
        document["ranking"] = dict(rankings[first["cohort"]])
    if imported and first.get("member_source_id") is not None:
        document["member_source_id"] = first["member_source_id"]
    return document


def mismatched_payloads(cards: PublishedCards, store: ServingStore, version: str, sample: int) -> int:
    """Of `sample` members (a fixed hash order), how many have a stored payload that differs from the one
    rebuilt from their card rows."""
    chosen = cards.sql(f"SELECT DISTINCT member_id FROM cards ORDER BY hash(member_id), member_id LIMIT {sample}")
    members = pa.table({"member_id": pa.array([m for (m,) in chosen], pa.int64())})
    with duckdb.connect() as con:
        con.register("all_cards", cards.lakehouse.dataset(cards.table))
        con.register("members", members)
        rows = (
            con.sql(
                f"""SELECT c.* FROM all_cards c JOIN members USING (member_id)
                    WHERE {partitions_predicate(cards.partition)}"""
            )
            .to_arrow_table()
            .to_pylist()
        )
    by_member: dict[int, list[dict]] = {}
    for row in rows:
        by_member.setdefault(row["member_id"], []).append(row)
    wrong, rankings = 0, cards.rankings()
    for member, member_rows in by_member.items():
        stored = store.get(version, MEMBER + str(member).encode())
        expected = expected_payload(member_rows, str(cards.day), version, cards.source, rankings)
        wrong += stored is None or orjson.loads(stored) != expected
    return wrong + len(chosen) - len(by_member)
