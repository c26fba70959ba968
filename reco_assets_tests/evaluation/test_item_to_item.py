"""The item-to-item evaluation: hand-computed figures, the cart merge against the API's, baselines against pandas,
and nothing after the origin in the lists it scores."""

import random
from datetime import date, datetime, timedelta, timezone

import pandas as pd
import pyarrow as pa
import pytest

from reco_assets.evaluation import item_to_item as i2i
from reco_assets.pipeline.rules import basket_popularity
from reco_assets.pipeline.stages import Reader
from reco_assets.resources.lakehouse import Lakehouse, range_predicate
from reco_assets.serving import baskets
from reco_assets.settings import RecoSettings
from reco_assets_tests.conftest import rows

ORIGIN = date(2026, 10, 30)
NEXT = ORIGIN + timedelta(days=1)
A, B, C, D, E, UNKNOWN = 10, 20, 30, 40, 50, 99
COLUMNS = ["event_id", "member_id", "session_id", "event_type", "style_id", "subclass_brand_id", "event_time"]
SCHEMA = (
    "event_id string, member_id long, session_id string, event_type string, style_id long, subclass_brand_id long, "
    "event_time timestamp"
)
SETTINGS = RecoSettings().changed(
    {"neighbors.min_co_sessions": 1, "rules.min_baskets": 2, "evaluation.bootstrap_draws": 50}
)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=timezone.utc)


def event(member, session, kind, group, when, style=None, event_id=None) -> tuple:
    """An event on a style of `group` (style `group * 10` unless given); ids in the order built unless given."""
    style = style if style is not None else (None if group is None else group * 10)
    return (event_id, member, session, kind, style, group, when)


def numbered(events: list[tuple]) -> list[tuple]:
    """Events without an id get `x<n>`, n their position."""
    return [(e[0] or f"x{n:05d}",) + e[1:] for n, e in enumerate(events)]


def lake(path, events: list[tuple]) -> Lakehouse:
    """`raw_events` holding `events`, partitioned by their UTC day."""
    events = numbered(events)
    table = pa.Table.from_pylist([dict(zip(COLUMNS, e, strict=True)) for e in events])
    table = table.append_column("event_date", pa.array([e[-1].date() for e in events], pa.date32()))
    house = Lakehouse(root=str(path))
    days = [e[-1].date() for e in events]
    house.replace("raw_events", table, range_predicate("event_date", min(days), max(days)), ["event_date"])
    return house


def figures(table: pd.DataFrame, level: str) -> dict:
    chosen = table[table["level"] == level]
    return {(r.method, r.metric): r.value for r in chosen.itertuples()}


# --- hand-built -------------------------------------------------------------------------------------------

TRAINING = [
    # the origin's sessions: A with B twice, A with C, B with E, C with D; D carted and bought; A alone thrice
    *[
        event(11, "t", kind, group, at(ORIGIN, 9, m))
        for m, (kind, group) in enumerate([("product_view", A), ("product_view", B), ("purchase", B)])
    ],
    *[event(12, "t", "product_view", group, at(ORIGIN, 9, m)) for m, group in enumerate([A, B])],
    *[event(13, "t", "product_view", group, at(ORIGIN, 9, m)) for m, group in enumerate([A, C])],
    *[event(14, "t", "product_view", group, at(ORIGIN, 9, m)) for m, group in enumerate([B, E])],
    *[
        event(15, "t", kind, group, at(ORIGIN, 9, m))
        for m, (kind, group) in enumerate([("add_to_cart", D), ("purchase", D), ("product_view", C)])
    ],
    event(16, "t", "add_to_cart", D, at(ORIGIN, 9)),
    *[event(member, "t", "product_view", A, at(ORIGIN, 9)) for member in (17, 18, 19)],
]
NEXT_DAY = [
    # member 1: A, A again (another style), B viewed and bought, a removal (skipped), E: A -> B, B -> E
    event(1, "a", "product_view", A, at(NEXT, 10), style=101),
    event(1, "a", "product_view", A, at(NEXT, 10, 5), style=102),
    event(1, "a", "product_view", B, at(NEXT, 10, 10)),
    event(1, "a", "purchase", B, at(NEXT, 10, 11)),
    event(1, "a", "remove_from_cart", C, at(NEXT, 10, 12)),
    event(1, "a", "product_view", E, at(NEXT, 10, 20)),
    # member 2: D and C at the same second, C first by its id; a page view (skipped), then A: C -> D, D -> A
    event(2, "b", "product_view", D, at(NEXT, 11), event_id="n2"),
    event(2, "b", "product_view", C, at(NEXT, 11), event_id="n1"),
    event(2, "b", "page_view", None, at(NEXT, 11, 30)),
    event(2, "b", "product_view", A, at(NEXT, 11, 40)),
    # member 3: from a group unknown on the origin: UNKNOWN -> A
    event(3, "c", "product_view", UNKNOWN, at(NEXT, 12)),
    event(3, "c", "product_view", A, at(NEXT, 12, 5)),
]


def test_hand_built_next_items_give_the_hand_computed_figures(spark, tmp_path):
    """Lists as of the origin. Model (cosine over weights view 1, cart 2, purchase 3; totals A 6, B 5, C 2, D 5,
    E 1): A [B 2/sqrt(30), C 1/sqrt(12)], B [E 1/sqrt(5), A], C [D 1/sqrt(10), A], D [C]. Co-occurrence: A [B 2,
    C 1], B [A 2, E 1], C [A 1, D 1], D [C]. Popularity (carts and purchases): D 3, B 1.
    Targets A -> B, B -> E, C -> D, D -> A, UNKNOWN -> A: the model ranks 1, 1, 1, -, -; co-occurrence 1, 2, 2,
    -, -; popularity 2, -, 1, -, -."""
    table = i2i.item_to_item_rows(spark, lake(tmp_path, TRAINING + NEXT_DAY), [ORIGIN], SETTINGS)
    assert figures(table, i2i.SIMILAR_ITEMS) == pytest.approx(
        {
            ("model", "hit_rate"): 3 / 5,
            ("model", "mrr"): 3 / 5,
            # without factor models the served lists are the session neighbours
            ("session_neighbors", "hit_rate"): 3 / 5,
            ("session_neighbors", "mrr"): 3 / 5,
            ("co_occurrence", "hit_rate"): 3 / 5,
            ("co_occurrence", "mrr"): (1 + 1 / 2 + 1 / 2) / 5,
            ("popularity", "hit_rate"): 2 / 5,
            ("popularity", "mrr"): (1 / 2 + 1) / 5,
        }
    )
    similar = table[table["level"] == i2i.SIMILAR_ITEMS]
    assert set(similar["members"]) == {3} and set(similar["targets"]) == {5} and set(similar["k"]) == {i2i.K}
    assert (similar["ci_low"] <= similar["value"]).all() and (similar["value"] <= similar["ci_high"]).all()
    assert set(similar["segment"]) == {"all"}


def test_the_factor_models_similar_groups_complete_the_served_lists(spark, tmp_path):
    """The same day with the origin's factor similarity: D's only neighbour is C, and the models put A next
    to D (and B next to A, already its neighbour): D's served list is [C, A], so D -> A hits at rank 2; the
    session neighbours alone are unchanged."""
    factor_similar = spark.createDataFrame(
        [(D, A, 0.9), (A, B, 0.8), (A, E, 0.1)], "subclass_brand_id long, neighbor_id long, cosine double"
    )
    table = i2i.item_to_item_rows(
        spark, lake(tmp_path, TRAINING + NEXT_DAY), [ORIGIN], SETTINGS, {ORIGIN: factor_similar}
    )
    got = figures(table, i2i.SIMILAR_ITEMS)
    assert got[("model", "hit_rate")] == pytest.approx(4 / 5)
    assert got[("model", "mrr")] == pytest.approx((1 + 1 + 1 + 1 / 2) / 5)
    assert got[("session_neighbors", "hit_rate")] == pytest.approx(3 / 5)


BASKETS = [[A, B], [A, B], [A, C], [B, C], [A, B, C], [D], [D], [D]]
HOLDOUT = [
    # member 1 buys A then C (a view after: not bought): cart [A], C held out
    event(1, "s", "purchase", A, at(NEXT, 10)),
    event(1, "s", "purchase", C, at(NEXT, 10, 5)),
    event(1, "s", "product_view", B, at(NEXT, 10, 6)),
    # member 1's second session: C and A at the same time, then B: cart [A, C], B held out
    event(1, "u", "purchase", C, at(NEXT, 12)),
    event(1, "u", "purchase", A, at(NEXT, 12)),
    event(1, "u", "purchase", B, at(NEXT, 12, 30)),
    event(2, "s", "purchase", B, at(NEXT, 10)),  # cart [B], D held out
    event(2, "s", "purchase", D, at(NEXT, 10, 1)),
    *[event(3, "s", "purchase", group, at(NEXT, 9, m)) for m, group in enumerate([A, C, B])],  # cart [A, C]: B
    event(4, "s", "purchase", B, at(NEXT, 9)),  # one group: no holdout basket
    event(4, "t", "purchase", B, at(NEXT, 9), style=201),
    event(5, "s", "purchase", D, at(NEXT, 9)),  # D and A at the same time: A first by its id, D held out
    event(5, "s", "purchase", A, at(NEXT, 9)),
]


def test_hand_built_baskets_give_the_hand_computed_figures(spark, tmp_path):
    """Rules of the origin (at least two baskets): A => B 3/4 x 1.5, A => C 1/2 x 4/3, B => A, B => C as A's,
    C => A and C => B 2/3 x 4/3. Baskets holding: A 4, B 4, C 3, D 3. Holdout (cart -> held out): [A] -> C: the
    rules rank B, C (2), popularity B, C, D (2); [A, C] -> B twice: 1 and 1 (A => B beats C => B); [B] -> D:
    -, and A, C, D (3); [A] -> D: -, and 3."""
    training = [
        event(member, "s", "purchase", group, at(ORIGIN, 10, m))
        for member, basket in enumerate(BASKETS, start=100)
        for m, group in enumerate(basket)
    ]
    table = i2i.item_to_item_rows(spark, lake(tmp_path, training + HOLDOUT), [ORIGIN], SETTINGS)
    assert figures(table, i2i.BOUGHT_TOGETHER) == pytest.approx(
        {
            ("model", "hit_rate"): 3 / 5,
            ("model", "mrr"): (1 / 2 + 1 + 1) / 5,
            ("co_purchase_popularity", "hit_rate"): 1.0,
            ("co_purchase_popularity", "mrr"): (1 / 2 + 1 + 1 / 3 + 1 + 1 / 3) / 5,
        }
    )
    together = table[table["level"] == i2i.BOUGHT_TOGETHER].set_index(["method", "metric"])
    assert set(together["members"]) == {4} and set(together["targets"]) == {5}
    assert together.loc[("co_purchase_popularity", "hit_rate"), ["ci_low", "ci_high"]].tolist() == [1.0, 1.0]


# --- the cart merge, as the API merges ----------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2])
def test_the_spark_merge_proposes_what_the_api_proposes(spark, seed):
    """Random rules (scores of few values, so that ties are frequent) and carts with repeats, some with more
    than `PAIR_GROUPS` distinct groups: the same groups, scores and order as `baskets.complementary_groups`."""
    rng = random.Random(seed)
    groups = range(1, 21)
    rules = {}
    for _ in range(300):
        antecedent = tuple(sorted(rng.sample(groups, rng.choice([1, 2]))))
        consequent = rng.choice([g for g in groups if g not in antecedent])
        rules[antecedent, consequent] = (rng.choice([0.25, 0.5, 1.0]), rng.choice([1.0, 2.0, 4.0]))
    carts = [[rng.choice(groups) for _ in range(rng.randint(1, 18))] for _ in range(300)]
    assert any(len(set(cart)) > baskets.PAIR_GROUPS for cart in carts)

    by_key: dict = {}
    for (antecedent, consequent), (confidence, lift) in rules.items():
        by_key.setdefault(baskets.antecedent_key(antecedent), []).append((consequent, lift * confidence))
    want = {
        n: baskets.complementary_groups(cart, [by_key.get(key, []) for key in baskets.antecedents(cart)])
        for n, cart in enumerate(carts)
    }

    rule_frame = spark.createDataFrame(
        [(list(a), c, confidence, lift) for (a, c), (confidence, lift) in rules.items()],
        "antecedent array<bigint>, consequent bigint, confidence double, lift double",
    )
    cart_frame = spark.createDataFrame(list(enumerate(carts)), "basket long, cart array<bigint>")
    merged = i2i.complementary_groups(cart_frame, rule_frame, ["basket"])
    got: dict = {n: [] for n in range(len(carts))}
    for basket, consequent, score in rows(merged, "basket", "consequent", "score", order=["basket", "rank"]):
        got[basket].append((consequent, score))
    assert got == want
    assert sum(len(v) for v in want.values()) > 1000


# --- baselines against pandas ----------------------------------------------------------------------------

KINDS = [*i2i.PRODUCT_EVENTS, "remove_from_cart", "page_view"]


def random_events(rng: random.Random, n: int, day: date = ORIGIN) -> list[tuple]:
    """Events of 30 members in 4 sessions each over 25 groups (a few without a group), at whole minutes so that
    times tie, with ids in random order; and a robot's session of 60 groups."""
    ids = rng.sample(range(10 * n), n)
    events = []
    for event_id in ids:
        kind = rng.choice(KINDS)
        group = None if kind == "page_view" or rng.random() < 0.03 else rng.randint(1, 25)
        style = None if group is None else group * 10 + rng.randint(0, 2)
        when = at(day, rng.randint(8, 9), rng.randint(0, 59))
        events.append((f"e{event_id:06d}", rng.randint(1, 30), f"s{rng.randint(1, 4)}", kind, style, group, when))
    robot = [(f"r{g:03d}", 999, "bot", "product_view", g * 10, g, at(day, 3, g % 60)) for g in range(1, 61)]
    return events + robot


def frame(events: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(events, columns=COLUMNS)


def reference_targets(events: pd.DataFrame) -> list[tuple]:
    product = events[events["event_type"].isin(i2i.PRODUCT_EVENTS) & events["style_id"].notna()]
    product = product[product["subclass_brand_id"].notna()].sort_values(["member_id", "event_time", "event_id"])
    source = product.groupby("member_id")["subclass_brand_id"].shift()
    steps = product.assign(source=source)
    steps = steps[steps["source"].notna() & (steps["source"] != steps["subclass_brand_id"])]
    return sorted(zip(steps["member_id"], steps["source"].astype(int), steps["subclass_brand_id"].astype(int)))


def reference_popular(events: pd.DataFrame) -> list[int]:
    carted = events[events["event_type"].isin(["add_to_cart", "purchase"]) & events["subclass_brand_id"].notna()]
    counts = carted.groupby("subclass_brand_id").size().reset_index(name="n")
    return counts.sort_values(["n", "subclass_brand_id"], ascending=[False, True])["subclass_brand_id"].tolist()


def reference_co_occurrence(events: pd.DataFrame) -> list[tuple]:
    held = events[events["event_type"].isin(i2i.PRODUCT_EVENTS) & events["subclass_brand_id"].notna()]
    sessions = held.groupby(["member_id", "session_id"])["subclass_brand_id"].apply(set)
    sessions = sessions[sessions.map(len) <= i2i.CO_OCCURRENCE_MAX_SESSION_GROUPS]
    counts: dict = {}
    for groups in sessions:
        for a in groups:
            for b in groups:
                if a != b:
                    counts[a, b] = counts.get((a, b), 0) + 1
    out = []
    for source in sorted({a for a, _ in counts}):
        ranked = sorted((-n, b) for (a, b), n in counts.items() if a == source)[: i2i.K]
        out += [(int(source), int(b), rank) for rank, (_, b) in enumerate(ranked, start=1)]
    return sorted(out)


@pytest.mark.parametrize("seed", [3, 4])
def test_targets_and_the_similar_item_baselines_agree_with_pandas(spark, seed):
    events = random_events(random.Random(seed), 1500)
    spark_events, pandas_events = spark.createDataFrame(events, SCHEMA), frame(events)

    targets = rows(i2i.next_item_targets(spark_events), "member_id", "source", "target")
    assert targets == reference_targets(pandas_events) and len(targets) > 300

    popular = rows(i2i.popular_groups(spark_events), "subclass_brand_id", order=["rank"])
    assert [g for (g,) in popular] == reference_popular(pandas_events)
    sources = spark.createDataFrame([(g,) for g in [*range(1, 26), UNKNOWN]], "subclass_brand_id long")
    lists = rows(
        i2i.popularity_lists(i2i.popular_groups(spark_events), sources), "subclass_brand_id", "neighbor_id", "rank"
    )
    top = reference_popular(pandas_events)
    want = [
        (source, g, rank)
        for source in [*range(1, 26), UNKNOWN]
        for rank, g in enumerate([g for g in top if g != source][: i2i.K], start=1)
    ]
    assert lists == sorted(want)

    co = rows(i2i.co_occurrence_lists(spark_events), "subclass_brand_id", "neighbor_id", "rank")
    assert co == reference_co_occurrence(pandas_events)
    assert all(g <= 25 for _, g, _ in co)  # the robot's session of 60 groups is dropped


@pytest.mark.parametrize("seed", [5, 6])
def test_the_basket_baseline_agrees_with_pandas(spark, seed):
    rng = random.Random(seed)
    mined = [list(dict.fromkeys(rng.choices(range(1, 30), k=rng.randint(1, 8)))) for _ in range(300)]
    carts = [(n, rng.sample(range(1, 30), rng.randint(1, 15))) for n in range(200)]
    popular = basket_popularity(spark.createDataFrame([(b,) for b in mined], "items array<bigint>"))

    counts = pd.Series([g for b in mined for g in b]).value_counts().reset_index()
    counts.columns = ["group", "n"]
    top = counts.sort_values(["n", "group"], ascending=[False, True])["group"].tolist()
    assert [g for (g,) in rows(popular, "group_id", order=["rank"])] == top

    cart_frame = spark.createDataFrame(carts, "basket long, cart array<bigint>")
    got = rows(i2i.popularity_completions(cart_frame, popular, ["basket"]), "basket", "rank", "consequent")
    want = [
        (n, rank, g) for n, cart in carts for rank, g in enumerate([g for g in top if g not in cart][: i2i.K], start=1)
    ]
    assert got == sorted(want)


# --- no leak -------------------------------------------------------------------------------------------------


def history(seed: int) -> list[tuple]:
    """Random events on the six days through the origin and the day after it, purchases in sessions."""
    rng = random.Random(seed)
    return [
        (f"d{offset}-{e[0]}", *e[1:])
        for offset in range(-5, 2)
        for e in random_events(rng, 800, ORIGIN + timedelta(days=offset))
    ]


def planted(days: list[date]) -> list[tuple]:
    """Many sessions on `days` that view and buy groups 1 and 2 together, and carts of 3: they would change every
    list built from them."""
    return [
        event(500 + n, f"p{n}", kind, group, at(day, 13, group), event_id=f"p{day}-{n}-{kind}-{group}")
        for day in days
        for n in range(60)
        for group in (1, 2, 3)
        for kind in ("product_view", "add_to_cart", "purchase")
    ]


def lists_as_of(spark, house: Lakehouse, origin: date) -> dict:
    reader = Reader(spark, house, strict=False)
    sources = spark.createDataFrame([(g,) for g in range(1, 26)], "subclass_brand_id long")
    carts = spark.createDataFrame(
        [(1, "c1", [1]), (2, "c2", [4, 5, 6, 7, 8]), (3, "c3", list(range(9, 17)))],
        "member_id long, session_id string, cart array<bigint>",
    )
    similar = i2i.similar_lists(reader, origin, SETTINGS, sources)
    together = i2i.basket_lists(reader, origin, SETTINGS, carts)
    return {
        **{f"similar {m}": rows(f, "subclass_brand_id", "rank", "neighbor_id") for m, f in similar.items()},
        **{f"baskets {m}": rows(f, "member_id", "rank", "consequent") for m, f in together.items()},
    }


def test_nothing_after_the_origin_reaches_the_lists_or_the_figures(spark, tmp_path):
    """Events planted on the day after the origin and later change none of the origin's lists; planted after
    the day after, not its hit tables either. The plant matters: the lists of a later origin change."""
    events = history(7)
    clean = lake(tmp_path / "clean", events)
    later = [NEXT + timedelta(days=n) for n in (1, 2)]
    on_next = lake(tmp_path / "on_next", events + planted([NEXT, *later]))
    after_next = lake(tmp_path / "after_next", events + planted(later))

    lists = lists_as_of(spark, clean, ORIGIN)
    assert all(lists.values()), "every method lists something"
    assert lists_as_of(spark, on_next, ORIGIN) == lists
    assert lists_as_of(spark, after_next, ORIGIN) == lists
    planted_lists, clean_lists = lists_as_of(spark, on_next, NEXT), lists_as_of(spark, clean, NEXT)
    assert all(planted_lists[m] != clean_lists[m] for m in lists)

    hits = hit_tables(spark, clean)
    assert all(len(table) > 0 for table in hits.values())
    for level, table in hit_tables(spark, after_next).items():
        pd.testing.assert_frame_equal(table, hits[level])


def hit_tables(spark, house: Lakehouse) -> dict[str, pd.DataFrame]:
    """The origin's hit tables, their rows sorted."""
    tables = i2i.hit_tables(spark, house, [ORIGIN], SETTINGS)
    return {level: t.sort_values(list(t.columns)).reset_index(drop=True) for level, t in tables.items()}
