"""Payloads built in Spark from card rows, checked against documents written out by hand; loaded from the
Spark tasks into a real LMDB store."""

import json

import pytest
from pyspark.sql import types as T

from reco_assets.serving.lmdb_store import LmdbStore
from reco_assets.serving.loading import load
from reco_assets.serving.payloads import carded_styles, member_payloads, store_rows

CARDS = T.StructType(
    [
        T.StructField("member_id", T.LongType()),
        T.StructField("feed", T.StringType()),
        T.StructField("variant", T.StringType()),
        T.StructField("position", T.IntegerType()),
        T.StructField("group_key", T.StringType()),
        T.StructField("group_name", T.StringType()),
        T.StructField("affinity", T.DoubleType()),
        T.StructField("style_ids", T.ArrayType(T.LongType())),
        T.StructField("cohort", T.StringType()),
        T.StructField("member_source_id", T.StringType()),
        T.StructField("style_source_ids", T.ArrayType(T.StringType())),
    ]
)
BIG = 2**62 + 1  # beyond a JavaScript number's exact integers
ROWS = [
    (BIG, "products", "card", 1, "all", "Picked for you", 2.5, [30, 10], "men_2", "C-1", ["s30", "s10"]),
    (BIG, "products", "full", 1, "all", "Picked for you", 2.5, [30, 10, 20], "men_2", "C-1", ["s30", "s10", "s20"]),
    (BIG, "brands", "card", 2, "Nike", "Nike you might like", 0.5, [20], "men_2", "C-1", ["s20"]),
    (BIG, "brands", "full", 2, "Nike", "Nike you might like", 0.5, [20], "men_2", "C-1", ["s20"]),
    (BIG, "brands", "card", 1, "Acme", "Acme you might like", 2.0, [30], "men_2", "C-1", ["s30"]),
    (BIG, "brands", "full", 1, "Acme", "Acme you might like", 2.0, [30, 10], "men_2", "C-1", ["s30", "s10"]),
    (7, "products", "card", 1, "all", "Picked for you", 1.0, [10], "kids_1", "C-2", ["s10"]),
    (7, "products", "full", 1, "all", "Picked for you", 1.0, [10], "kids_1", "C-2", ["s10"]),
]


def group(position, key, name, affinity, card, full, sources=None):
    document = {"position": position, "group_key": key, "group_name": name, "affinity": affinity, "card": card}
    document["full"] = full
    if sources:
        document |= {"card_source_ids": sources[0], "full_source_ids": sources[1]}
    return document


@pytest.fixture(scope="module")
def imported(spark):
    return spark.createDataFrame(ROWS, CARDS)


def test_one_document_per_member_with_every_feed_and_variant_and_source_ids(imported):
    payloads = {r.member_id: r for r in member_payloads(imported, "2026-10-31", "v1", "member_cards").collect()}
    assert set(payloads) == {BIG, 7}
    first = json.loads(payloads[BIG].payload)
    assert first == {
        "member_id": str(BIG),
        "member_source_id": "C-1",
        "as_of_date": "2026-10-31",
        "version": "v1",
        "source": "member_cards",
        "cohort": "men_2",
        "fallback": False,
        "feeds": {
            "products": [
                group(
                    1,
                    "all",
                    "Picked for you",
                    2.5,
                    ["30", "10"],
                    ["30", "10", "20"],
                    (["s30", "s10"], ["s30", "s10", "s20"]),
                )
            ],
            "brands": [  # by position, whatever the rows' order
                group(1, "Acme", "Acme you might like", 2.0, ["30"], ["30", "10"], (["s30"], ["s30", "s10"])),
                group(2, "Nike", "Nike you might like", 0.5, ["20"], ["20"], (["s20"], ["s20"])),
            ],
            "categories": [],
        },
    }
    assert payloads[BIG].member_source_id == "C-1"


def test_without_source_ids_the_document_has_none(imported):
    lakehouse_only = imported.drop("member_source_id", "style_source_ids")
    (row,) = [
        r for r in member_payloads(lakehouse_only, "2026-10-31", "v1", "member_cards").collect() if r.member_id == 7
    ]
    document = json.loads(row.payload)
    assert "member_source_id" not in document and row.member_source_id is None
    assert document["feeds"]["products"] == [group(1, "all", "Picked for you", 1.0, ["10"], ["10"])]


def test_the_rows_load_from_the_spark_tasks_under_member_and_source_keys(imported, tmp_path):
    payloads = member_payloads(imported, "2026-10-31", "v1", "member_cards")
    store = LmdbStore(str(tmp_path / "serving"))
    assert load(store_rows(payloads).repartition(2), store, "v1") == 4  # two payloads, two source ids
    assert store.get("v1", b"s:C-1") == str(BIG).encode() and store.get("v1", b"s:C-2") == b"7"
    assert json.loads(store.get("v1", f"m:{BIG}".encode()))["member_source_id"] == "C-1"
    assert store.count("v1", b"m:") == 2 and store.count("v1", b"s:") == 2


def test_carded_styles_are_every_style_named_once(imported):
    assert sorted(r.style_id for r in carded_styles(imported).collect()) == ["10", "20", "30"]


def test_the_payload_names_the_ranking_of_the_members_cohort(imported):
    cohorts = {r.member_id: r.cohort for r in imported.select("member_id", "cohort").distinct().collect()}
    blend = {"method": "blend", "versus": "no_boost", "margin": 0.0071, "margin_ci": [0.0052, 0.0093]}
    rankings = {cohorts[7]: {"method": "repeat"}} | {c: blend for c in set(cohorts.values()) - {cohorts[7]}}
    documents = {
        r.member_id: json.loads(r.payload)
        for r in member_payloads(imported, "2026-10-31", "v1", "member_cards", rankings).collect()
    }
    assert documents[7]["ranking"] == {"method": "repeat"}  # no margin known: the fields are left out
    assert documents[BIG]["ranking"] == rankings[cohorts[BIG]]
    # without the cohorts' methods (cards built before there were any), the field is left out
    (plain,) = [r for r in member_payloads(imported, "2026-10-31", "v1", "member_cards").collect() if r.member_id == 7]
    assert "ranking" not in json.loads(plain.payload)
