"""Serving: the day's published cards loaded into the serving store as a new version, and exported.

`served_feeds` builds one JSON payload per member in Spark, loads them from the tasks into a new version
of the store, checks the version against the cards, and only then switches the API to it. A day held back
by the quality gate, or a version failing a check, is never switched to. `feed_exports` writes the served
day's payloads and cards as files for downstream systems, in a folder that appears whole.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from reco_assets.assets.common import partition_date, publish
from reco_assets.assets.releases import release_partition
from reco_assets.checks import check, spec
from reco_assets.constants import COHORTS, PUBLISHING
from reco_assets.evaluation.gate import require_gate
from reco_assets.partitions import daily_partitions, daily_release_partitions
from reco_assets.resources.lakehouse import Lakehouse
from reco_assets.resources.serving import ServingResource
from reco_assets.resources.spark import SparkResource
from reco_assets.serving import published
from reco_assets.serving.exports import write_export
from reco_assets.serving.inventory import withdrawn_styles
from reco_assets.serving.item_lists import load_lists
from reco_assets.serving.loading import load
from reco_assets.serving.payloads import carded_styles, member_payloads, store_rows
from reco_assets.serving.store import (
    MEMBER,
    NOTHING_WITHDRAWN,
    SOURCE,
    STYLES,
    Manifest,
    ServingStore,
    Withdrawn,
    new_version,
)
from reco_assets.settings import RecoSettings

SAMPLE_MEMBERS = 200
"""Members whose stored payload is compared with their cards, read back from the store."""


@dataclass
class LoadedVersion:
    """A loaded, not yet served version: `publish` switches to it after its checks, or discards it."""

    store: ServingStore
    manifest: Manifest
    withdrawals: Callable[[], Withdrawn]
    """The version's withdrawn styles per the latest snapshot, computed at the switch (one may land while
    the version loads)."""
    table: str = "served_feeds"
    similar_fill: float = 0.0
    """The share of listed styles with `item_lists.SIMILAR_FILL` similar styles of their own (not the fallback)."""
    withdrawn: Withdrawn = NOTHING_WITHDRAWN
    served: Manifest | None = None
    """What the store serves after `commit`: this version, or a later day's or publication's that an
    overlapping run switched to (the store then discarded this one: a backfill never replaces it)."""
    dropped: list[str] = field(default_factory=list)

    @property
    def is_served(self) -> bool:
        return self.served is not None and self.served.version == self.manifest.version

    def commit(self) -> None:
        self.withdrawn = self.withdrawals()
        self.store.set_withdrawn(self.manifest.version, self.withdrawn)
        switched = self.store.switch(self.manifest)  # checks the served day and switches in one step
        self.served, self.dropped = switched.served, switched.dropped
        if not self.is_served:
            return
        later = self.withdrawals()  # a snapshot that landed during the switch applies to the new version
        if later != self.withdrawn:
            self.withdrawn = later
            self.store.set_withdrawn(self.manifest.version, later)

    def discard(self) -> None:
        self.store.discard(self.manifest.version)


@asset(
    partitions_def=daily_partitions,
    deps=[
        "member_cards",
        "release_cards",
        "style_listings",
        "release_listings",
        "group_neighbors",
        "co_purchase_rules",
    ],
    group_name=PUBLISHING,
    kinds={"spark", "lmdb", "redis"},
    check_specs=[
        spec("served_feeds", "every_member_served", "one payload per member with cards, each source id mapped"),
        spec("served_feeds", "payloads_match_cards", "sampled payloads read back equal the members' cards"),
        spec(
            "served_feeds",
            "style_lists_well_formed",
            "every listed style and group has its lists; list entries are listed styles under their own group, "
            "once per list, never the list's own group unless flagged fallback, in non-increasing score",
        ),
    ],
)
def served_feeds(
    context: AssetExecutionContext,
    spark: SparkResource,
    lakehouse: Lakehouse,
    serving: ServingResource,
    settings: RecoSettings,
):
    """One JSON payload per member (every feed and variant), and the similar and bought-together lists of
    the listed styles, in a new version of the serving store; the API switches to it once its checks pass.
    The cards are the day's latest published ones: those of its latest release refresh, else its
    `member_cards`, and the lists are over the same listings. The previous versions stay for rollback."""
    day = partition_date(context)
    require_gate(lakehouse, day, settings, "served feeds", list(COHORTS))
    lakehouse.require("member_cards", {"as_of_date": day, "cohort": list(COHORTS)})
    cards = published.cards(lakehouse, day)
    store = serving.open(settings.serving.previous_versions)
    version = new_version(str(day), cards.label)
    try:
        staged, results = load_and_check(spark, lakehouse, cards, store, version, settings)
    except BaseException:
        store.discard(version)  # a load that did not get to its checks leaves nothing behind
        raise
    yield from publish([staged], results)
    served, current = staged.is_served, staged.served.as_of_date
    yield MaterializeResult(
        metadata={
            "version": MetadataValue.text(version),
            "served": MetadataValue.bool(served),
            "cards": MetadataValue.text(cards.source),
            "payloads": MetadataValue.int(staged.manifest.members),
            "withdrawn_styles": MetadataValue.int(len(staged.withdrawn.style_ids)),
            "similar_fill": MetadataValue.float(round(staged.similar_fill, 4)),
            "store": MetadataValue.text(serving.store),
            "dropped_versions": MetadataValue.json(staged.dropped),
            **({} if served else {"not_served": MetadataValue.text(f"later cards (of {current}) are served")}),
        }
    )


def load_and_check(
    spark: SparkResource,
    lakehouse: Lakehouse,
    cards: published.PublishedCards,
    store: ServingStore,
    version: str,
    settings: RecoSettings,
) -> tuple[LoadedVersion, list]:
    """Load the cards' payloads into `version` from the Spark tasks, with the styles they name and the
    fallback; return the version ready to switch to and its check results."""
    day = cards.day
    frame = cards.spark(spark.session())
    payloads = member_payloads(frame, str(day), version, cards.source, cards.rankings()).cache()
    loaded = load(store_rows(payloads), store, version)
    payloads.unpersist()
    fallback = published.fallback(cards, version, settings)
    lists = load_lists(spark.session(), lakehouse, cards, store, version, settings)
    # bounded by the catalog's styles: the driver holds them as the serving layer's inventory of the version
    styles = frozenset(carded_styles(frame).toArrow().column("style_id").to_pylist()) | lists.styles
    styles |= frozenset(fallback["feeds"]["products"][0]["full"])
    store.write(version, [(STYLES, orjson.dumps(sorted(styles)))])
    manifest = Manifest(
        version=version,
        as_of_date=str(day),
        source=cards.source,
        members=store.count(version, MEMBER),
        loaded_at=published.now(),
        fallback=orjson.dumps(fallback),
        cards_written_at=cards.written_at(),
    )
    staged = LoadedVersion(
        store,
        manifest,
        lambda: withdrawn_styles(lakehouse, day, styles, settings.listings.min_qty_on_hand),
        similar_fill=lists.similar_fill,
    )
    expected = published.expected_keys(cards)
    sources = store.count(version, SOURCE)
    results = [
        check(
            "every_member_served",
            abs(manifest.members - expected.members) + abs(sources - expected.sources),
            "members with cards without a payload (or payloads without cards), and unmapped source ids",
            members_with_cards=expected.members,
            payloads=manifest.members,
            source_ids=sources,
            pairs_written=loaded,
        ),
        check(
            "payloads_match_cards",
            published.mismatched_payloads(cards, store, version, SAMPLE_MEMBERS),
            f"payloads of {SAMPLE_MEMBERS} sampled members that differ from their cards",
        ),
        check(
            "style_lists_well_formed",
            lists.violations,
            "malformed list entries, and listed styles or groups without their keys",
            listed_styles=lists.listed_styles,
            listed_groups=lists.listed_groups,
            similar_fill=round(lists.similar_fill, 4),
        ),
    ]
    return staged, results


@asset(
    partitions_def=daily_partitions,
    deps=["served_feeds"],
    group_name=PUBLISHING,
    kinds={"spark", "parquet", "json"},
)
def feed_exports(
    context: AssetExecutionContext,
    spark: SparkResource,
    lakehouse: Lakehouse,
    serving: ServingResource,
    settings: RecoSettings,
):
    """The day's payloads (JSON lines) and cards (Parquet, with source ids) in `<exports>/<day>/`, for a
    customer-data platform to pick up: the folder appears whole or not at all. The payloads carry the
    served version's name when the day's published cards are the ones served, else a version name of
    their own (an older day, backfilled: `served` false in the manifest)."""
    day = partition_date(context)
    require_gate(lakehouse, day, settings, "exports", list(COHORTS))
    cards = published.cards(lakehouse, day)
    current = serving.open(settings.serving.previous_versions).current()
    served = cards.is_served_by(current)
    version = current.version if served else new_version(str(day), cards.label)
    frame = cards.spark(spark.session())
    payloads = member_payloads(frame, str(day), version, cards.source, cards.rankings())
    manifest = write_export(serving.exports_root, day, version, payloads, frame, served)
    return MaterializeResult(
        metadata={
            "folder": MetadataValue.path(manifest["folder"]),
            "version": MetadataValue.text(version),
            "served": MetadataValue.bool(served),
            "payloads": MetadataValue.int(manifest["payloads"]),
            "card_rows": MetadataValue.int(manifest["card_rows"]),
        }
    )


@asset(
    partitions_def=daily_release_partitions,
    deps=["release_catalog"],
    group_name=PUBLISHING,
    kinds={"duckdb"},
)
def served_withdrawals(
    context: AssetExecutionContext, lakehouse: Lakehouse, serving: ServingResource, settings: RecoSettings
):
    """As soon as a release snapshot is in the lakehouse, the served version of its day stops showing the
    styles it says are sold out or ended (the API drops them at request time), before, or without, the
    release's cards being rebuilt."""
    day, release = release_partition(context)
    store = serving.open(settings.serving.previous_versions)
    current = store.current()
    if current is None or current.as_of_date != str(day):
        served = current.as_of_date if current else "nothing"
        return MaterializeResult(metadata={"applied": False, "reason": f"{day} is not served ({served} is)"})
    styles = frozenset(orjson.loads(store.get(current.version, STYLES) or b"[]"))
    withdrawn = withdrawn_styles(lakehouse, day, styles, settings.listings.min_qty_on_hand)
    store.set_withdrawn(current.version, withdrawn)
    return MaterializeResult(
        metadata={
            "applied": True,
            "version": MetadataValue.text(current.version),
            "snapshot": MetadataValue.text(withdrawn.as_of),
            "withdrawn_styles": MetadataValue.int(len(withdrawn.style_ids)),
        }
    )
