import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from reco_assets import invariants
from reco_assets.pipeline import cards
from reco_assets.pipeline.cards import (
    CARD_COLUMNS,
    FEEDS,
    CardLimits,
    member_cards,
    member_groups,
    with_source_ids,
)

LIMITS = CardLimits(
    product_feed_max=5, product_card_size=2, group_cards=2, group_card_size=2, group_full_size=3, group_min_styles=2
)

LISTINGS = (
    "subclass_brand_id long, style_id long, rank int, brand string, division string, department string, class string"
)
AFFINITIES = "cohort string, member_id long, subclass_brand_id long, score double, rank int"


def test_feeds_by_hand(spark):
    listings = spark.createDataFrame(
        [
            (100, 1, 1, "aldo", "women", "apparel", "dresses"),
            (100, 2, 2, "aldo", "women", "apparel", "dresses"),
            (100, 3, 3, "aldo", "women", "apparel", "dresses"),
            (200, 4, 1, "aldo", "women", "apparel", "tops"),
            (200, 5, 2, "aldo", "women", "apparel", "tops"),
            (300, 6, 1, "bema", "women", "apparel", "dresses"),
        ],
        LISTINGS,
    )
    affinities = spark.createDataFrame(
        [("women_2", 1, g, s, r) for g, s, r in [(300, 0.9, 1), (100, 0.8, 2), (200, 0.3, 3), (999, 0.2, 4)]],
        AFFINITIES,  # 999: nothing on sale
    )
    rows = member_cards(affinities, listings, LIMITS).collect()
    assert {r["cohort"] for r in rows} == {"women_2"}
    cards = {
        (r["feed"], r["variant"], r["position"]): (
            r["group_key"],
            r["group_name"],
            round(r["affinity"], 6),
            r["style_ids"],
        )
        for r in rows
    }
    assert cards == {
        ("products", "full", 1): ("all", "Picked for you", 2.0, [6, 1, 2, 3, 4]),
        ("products", "card", 1): ("all", "Picked for you", 2.0, [6, 1]),
        # bema has one saleable style, fewer than the minimum of 2: dropped
        ("brands", "full", 1): ("aldo", "Aldo you might like", 1.1, [1, 2, 3]),
        ("brands", "card", 1): ("aldo", "Aldo you might like", 1.1, [1, 2]),
        # categories are keyed by the class's path, titled by its name
        ("categories", "full", 1): ('["women","apparel","dresses"]', "Dresses for you", 1.7, [6, 1, 2]),
        ("categories", "card", 1): ('["women","apparel","dresses"]', "Dresses for you", 1.7, [6, 1]),
        ("categories", "full", 2): ('["women","apparel","tops"]', "Tops for you", 0.3, [4, 5]),
        ("categories", "card", 2): ('["women","apparel","tops"]', "Tops for you", 0.3, [4, 5]),
    }


def test_same_named_classes_of_two_divisions_are_two_category_cards(spark):
    listings = spark.createDataFrame(
        [
            (100, 1, 1, "aldo", "men", "tops", "Tees"),
            (100, 2, 2, "aldo", "men", "tops", "Tees"),
            (200, 3, 1, "aldo", "women", "tops", "Tees"),
            (200, 4, 2, "aldo", "women", "tops", "Tees"),
            (300, 5, 1, "bema", "women", "tops", "Tees"),
        ],
        LISTINGS,
    )
    affinities = spark.createDataFrame(
        [("women_2", 1, g, s, r) for g, s, r in [(100, 0.9, 1), (200, 0.6, 2), (300, 0.5, 3)]], AFFINITIES
    )
    men, women = '["men","tops","Tees"]', '["women","tops","Tees"]'
    groups = member_groups(affinities, listings)
    assert sorted((r["subclass_brand_id"], r["class"], r["class_key"]) for r in groups.collect()) == [
        (100, "Tees", men),
        (200, "Tees", women),
        (300, "Tees", women),
    ]
    rows = member_cards(affinities, listings, LIMITS).where("feed = 'categories'").collect()
    cards = {
        (r["variant"], r["position"]): (r["group_key"], r["group_name"], round(r["affinity"], 6), r["style_ids"])
        for r in rows
    }
    # women's Tees: 200 and 300, 0.6 + 0.5 = 1.1; men's Tees: 100, 0.9. One "Tees" card would hold all five.
    assert cards == {
        ("full", 1): (women, "Tees for you", 1.1, [3, 4, 5]),
        ("card", 1): (women, "Tees for you", 1.1, [3, 4]),
        ("full", 2): (men, "Tees for you", 0.9, [1, 2]),
        ("card", 2): (men, "Tees for you", 0.9, [1, 2]),
    }


def test_imported_cards_carry_the_source_ids_in_list_order(spark):
    cards = spark.createDataFrame(
        [(1, "products", "full", 1, "all", "Products", 1.0, [30, 10, 20])],
        "member_id long, feed string, variant string, position int, group_key string, group_name string, "
        "affinity double, style_ids array<long>",
    )
    id_map = spark.createDataFrame(
        [("member", "C-17850", 1), ("style", "85123A", 10), ("style", "71053", 20), ("style", "84406B", 30)],
        "namespace string, source_id string, id long",
    )
    (row,) = with_source_ids(cards, id_map).collect()
    assert row["member_source_id"] == "C-17850"
    assert row["style_ids"] == [30, 10, 20] and row["style_source_ids"] == ["84406B", "85123A", "71053"]


# --- the vectorized pass against a plain reference -----------------------------------------------------------


def initcap(text: str) -> str:
    """Spark's `initcap`: lower case, then the first letter and every letter after a space in title case."""
    lowered = text.lower()
    return "".join(
        c.title() if (i == 0 or lowered[i - 1] == " ") and len(c.title()) == 1 else c for i, c in enumerate(lowered)
    )


def reference_cards(affinities: pd.DataFrame, listings: pd.DataFrame, limits: CardLimits) -> list[tuple]:
    """The cards, row by row: (cohort, member_id, feed, variant, position, group_key, group_name, affinity,
    style ids)."""
    groups = {}
    for row in listings.to_dict("records"):
        key = None
        if row["class"] is not None:
            path = [row["division"] or "", row["department"] or "", row["class"]]
            key = json.dumps(path, ensure_ascii=False, separators=(",", ":"))
        entry = (row["subclass_brand_id"], row["brand"], row["class"], key)
        groups.setdefault(entry, []).append((row["rank"], row["style_id"]))
    listed = {}
    for (group, brand, name, key), styles in groups.items():
        ids = []
        for _, style in sorted(styles):
            if style not in ids:
                ids.append(style)
        listed.setdefault(group, []).append({"brand": brand, "class": name, "class_key": key, "styles": ids})

    def distinct(rows):
        ids = []
        for row in sorted(rows, key=lambda r: (r["rank"], r["styles"])):
            ids += [s for s in row["styles"] if s not in ids]
        return ids

    out = []
    for (cohort, member), rows in affinities.groupby(["cohort", "member_id"]):
        joined = [
            {"rank": r.rank, "score": r.score, **g}
            for r in rows.itertuples()
            for g in listed.get(r.subclass_brand_id, [])
        ]
        if not joined:
            continue
        ids, total = distinct(joined), sum(r["score"] for r in joined)
        for variant, size in (("card", limits.product_card_size), ("full", limits.product_feed_max)):
            out.append((cohort, member, "products", variant, 1, "all", "Picked for you", total, tuple(ids[:size])))
        for feed, key, name, template in [
            ("brands", "brand", "brand", "%s you might like"),
            ("categories", "class_key", "class", "%s for you"),
        ]:
            found = []
            for value in {r[key] for r in joined if r[key] is not None}:
                members = [r for r in joined if r[key] == value]
                ids = distinct(members)
                if len(ids) >= limits.group_min_styles:
                    found.append((-sum(r["score"] for r in members), value, template % initcap(members[0][name]), ids))
            for position, (minus, value, title, ids) in enumerate(sorted(found)[: limits.group_cards], start=1):
                for variant, size in (("card", limits.group_card_size), ("full", limits.group_full_size)):
                    out.append((cohort, member, feed, variant, position, value, title, -minus, tuple(ids[:size])))
    return out


BRANDS = ["aldo", "ALDO big", "o'neil  co", "élan", None]
CLASSES = ["tees", "Tees", "dress SHIRTS", "boots", None]


def random_world(seed: int):
    """Random listings and affinities: ranks with ties in scores (exact binary fractions, so sums are exact),
    classes of one name in two divisions, groups without brand or class or listed styles; with odd seeds,
    also what the catalog never has: a style in two groups, a group whose styles differ in brand."""
    rng = np.random.default_rng(seed)
    listings, next_style = [], 1
    for group in range(1, 31):
        if rng.random() < 0.2:
            continue  # nothing listed
        brand, name = rng.choice(len(BRANDS)), rng.choice(len(CLASSES))
        division, department = rng.choice(["men", "women"]), rng.choice(["tops", "shoes"])
        for rank in range(1, int(rng.integers(1, 7)) + 1):
            style = next_style
            next_style += 1
            if seed % 2 and rank > 1 and rng.random() < 0.15:
                style = int(rng.integers(1, style))  # listed in another group too
            chosen_brand = BRANDS[(brand + 1) % len(BRANDS)] if seed % 2 and rng.random() < 0.1 else BRANDS[brand]
            listings.append((group, style, rank, chosen_brand, division, department, CLASSES[name]))
    affinities = []
    for member in range(1, 61):
        cohort = f"c{member % 3}"
        groups = rng.permutation(np.arange(1, 36))[: int(rng.integers(0, 20))]
        for rank, group in enumerate(groups, start=1):
            affinities.append((cohort, member, int(group), float(rng.integers(0, 8)) / 8, rank))
    return listings, affinities


@pytest.mark.parametrize("seed", range(6))
def test_the_cards_are_those_of_the_plain_reference(spark, seed):
    listings, affinities = random_world(seed)
    rng = np.random.default_rng(100 + seed)
    limits = CardLimits(
        product_feed_max=int(rng.integers(3, 30)),
        product_card_size=int(rng.integers(1, 10)),
        group_cards=int(rng.integers(1, 4)),
        group_card_size=int(rng.integers(1, 6)),
        group_full_size=int(rng.integers(2, 12)),
        group_min_styles=int(rng.integers(1, 4)),
    )
    built = member_cards(
        spark.createDataFrame(affinities, AFFINITIES), spark.createDataFrame(listings, LISTINGS), limits
    )
    assert [(f.name, f.dataType.simpleString()) for f in built.schema.fields] == [
        ("cohort", "string"),
        ("member_id", "bigint"),
        ("feed", "string"),
        ("variant", "string"),
        ("position", "int"),
        ("group_key", "string"),
        ("group_name", "string"),
        ("affinity", "double"),
        ("style_ids", "array<bigint>"),
    ]
    table = built.toArrow()
    got = sorted(tuple(r[c] if c != "style_ids" else tuple(r[c]) for c in CARD_COLUMNS) for r in table.to_pylist())
    members = pd.DataFrame(affinities, columns=["cohort", "member_id", "subclass_brand_id", "score", "rank"])
    listed = pd.DataFrame(listings, columns=[c.split()[0] for c in LISTINGS.split(", ")]).astype(object)
    listed = listed.where(listed.notna(), None)
    want = sorted(reference_cards(members, listed, limits))
    assert len(got) == len(want) and {r[2] for r in want} == set(FEEDS)
    for g, w in zip(got, want):
        assert g[:7] == w[:7] and g[8] == w[8] and abs(g[7] - w[7]) < 1e-9, (g, w)
    assert invariants.card_violations(table, limits.product_feed_max) == 0


def test_blocks_end_between_members(monkeypatch):
    """A task's rows cut into blocks give the cards of the rows built at once: no member is split."""
    listings = pa.table(
        {
            "entry": pa.array([0, 1, 2], pa.int32()),
            "subclass_brand_id": [10, 20, 30],
            "brand": ["a", "a", None],
            "class": ["x", "y", "x"],
            "class_key": ['["m","t","x"]', '["m","t","y"]', '["m","t","x"]'],
            "styles": [[1, 2], [3], [4, 5, 6]],
            "brand_title": ["A you might like", "A you might like", None],
            "class_title": ["X for you", "Y for you", "X for you"],
        }
    )
    rows = pa.table(
        {
            "cohort": ["c"] * 9 + ["d"] * 3,
            "member_id": pa.array([1, 1, 1, 2, 2, 3, 3, 3, 4, 1, 1, 1], pa.int64()),
            "score": [0.5, 0.25, 0.125] * 4,
            "group_rank": pa.array([3, 1, 2] * 4, pa.int32()),
            "entry": pa.array([0, 1, 2] * 4, pa.int32()),
        }
    )
    shipped = cards._listed(listings)
    whole = pa.Table.from_batches(list(cards.card_batches(rows.to_batches(), shipped, LIMITS, FEEDS)))
    monkeypatch.setattr(cards, "ROWS_PER_BLOCK", 2)
    blocks = list(cards.card_batches(rows.to_batches(max_chunksize=1), shipped, LIMITS, FEEDS))
    by_block = pa.Table.from_batches(blocks)
    assert len(blocks) > 6 and sorted(by_block.to_pylist(), key=str) == sorted(whole.to_pylist(), key=str)
