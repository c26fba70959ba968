"""The simulated retailer: product hierarchy, brands, subclass-brands and members with latent tastes."""

from dataclasses import dataclass

import numpy as np

from reco_assets.constants import DIVISIONS

# division -> department -> class -> subclasses
HIERARCHY: dict[str, dict[str, dict[str, list[str]]]] = {
    "women": {
        "apparel": {
            "dresses": ["day dresses", "work dresses", "cocktail dresses"],
            "tops": ["blouses", "tees", "sweaters"],
            "bottoms": ["jeans", "skirts", "trousers"],
        },
        "shoes": {"heels": ["pumps", "sandals"], "boots": ["ankle boots", "tall boots"], "flats": ["ballet flats"]},
        "accessories": {"handbags": ["totes", "crossbody bags"], "jewelry": ["necklaces", "earrings"]},
    },
    "men": {
        "apparel": {"shirts": ["dress shirts", "casual shirts"], "suits": ["suits", "blazers"], "pants": ["chinos"]},
        "shoes": {"dress shoes": ["oxfords", "loafers"], "sneakers": ["running shoes"]},
    },
    "kids": {
        "girls": {"girls apparel": ["girls dresses", "girls tops"]},
        "boys": {"boys apparel": ["boys tops", "boys pants"]},
        "baby": {"baby gear": ["strollers", "baby bedding"]},
    },
    "home": {
        "bedding": {"sheets": ["sheet sets"], "duvets": ["duvet covers", "comforters"]},
        "kitchen": {"cookware": ["pans", "knives"], "tabletop": ["dinnerware"]},
        "bath": {"towels": ["bath towels"]},
    },
    "unisex": {
        "travel": {"luggage": ["carry-ons", "backpacks"]},
        "gadgets": {"audio": ["headphones"], "watches": ["smart watches", "analog watches"]},
    },
}

DIVISION_SHARE = np.array([0.52, 0.16, 0.10, 0.14, 0.08])
"""Members' dominant divisions: strongly skewed to Women, as in the reference."""

TIER_BASE_PRICE = np.array([25.0, 45.0, 80.0, 150.0, 320.0])
"""Typical price of a style by brand price tier 1..5."""

TASTE_DIM = 8
"""Rank of the members' latent tastes over subclass-brands."""

DRAW_CHUNK = 4_000_000
"""Taste scores held at once while drawing (as float64 cumulative sums: 32 MB)."""

_SYLLABLES = ["al", "ber", "ca", "do", "el", "fa", "gra", "ha", "ri", "lo", "ma", "no", "ve", "ta", "si", "zu"]


@dataclass(frozen=True)
class World:
    """Static facts of the simulated retailer.

    Members' tastes are kept as their low-rank parts, not as a members x subclass-brands matrix (6 GB at a
    million members): `taste` computes the scores of the members and groups a caller needs.
    """

    subclasses: list[tuple[str, str, str, str]]  # (division, department, class, subclass), id = index + 1
    brands: list[str]  # id = index + 1
    brand_tier: np.ndarray  # 0..4 per brand
    sb_subclass: np.ndarray  # subclass index per subclass-brand
    sb_brand: np.ndarray  # brand index per subclass-brand
    sb_division: np.ndarray  # division index per subclass-brand
    member_ids: np.ndarray
    member_activity: np.ndarray  # expected sessions per day
    member_latent: np.ndarray  # members x TASTE_DIM (float32)
    sb_latent: np.ndarray  # subclass-brands x TASTE_DIM (float32)
    division_log_pref: np.ndarray  # members x divisions (float32): log preference of each division
    price_level: np.ndarray  # members (float32): preferred price tier, 0..4

    def sb_id(self, sb: np.ndarray) -> np.ndarray:
        """Stable 64-bit id of a subclass-brand: subclass id * 1000 + brand id."""
        return (self.sb_subclass[sb] + 1).astype(np.int64) * 1000 + self.sb_brand[sb] + 1

    def taste(self, members: np.ndarray, sbs: np.ndarray) -> np.ndarray:
        """Log preference (float32) of the members (indices) for the subclass-brands (indices), members x sbs.

        Latent affinity, plus the preference of the group's division, minus the distance to the member's
        price level: the truth every browse is drawn from.
        """
        taste = self.member_latent[members] @ self.sb_latent[sbs].T
        taste *= np.float32(1.6 / np.sqrt(TASTE_DIM))
        taste += self.division_log_pref[members][:, self.sb_division[sbs]]
        tier = self.brand_tier[self.sb_brand[sbs]].astype(np.float32)
        taste -= np.float32(0.8) * np.abs(self.price_level[members][:, None] - tier[None, :])
        return taste


def draw_by_taste(
    rng: np.random.Generator,
    world: World,
    members: np.ndarray,
    columns: np.ndarray,
    lo: np.ndarray | None = None,
    hi: np.ndarray | None = None,
) -> np.ndarray:
    """For each row i, a position j in [lo[i], hi[i]) of `columns` drawn with probability proportional to
    exp(taste[members[i], columns[j]]) (default: over all columns).

    The same law as the Gumbel-max over the member's taste, by inverse CDF: the scores and their cumulative
    sums are computed once per distinct member, in chunks, and each row costs one uniform and a binary search.
    A contiguous [lo, hi) restricts the draw to a block of columns (e.g. the live groups of one subclass).
    """
    n, width = len(members), len(columns)
    lo = np.zeros(n, dtype=np.int64) if lo is None else lo
    hi = np.full(n, width, dtype=np.int64) if hi is None else hi
    distinct, row = np.unique(members, return_inverse=True)
    order = np.argsort(row, kind="stable")
    sorted_row = row[order]
    u = rng.random(n)
    out = np.empty(n, dtype=np.int64)
    step = max(1, DRAW_CHUNK // max(width, 1))
    for first in range(0, len(distinct), step):
        block = distinct[first : first + step]
        taste = world.taste(block, columns)
        weight = np.exp(taste - taste.max(axis=1, keepdims=True))
        cum = np.cumsum(weight, axis=1, dtype=np.float64)
        cum /= cum[:, -1:]
        # Row r of the chunk lives in [r, r + 1] of one sorted array, so one searchsorted serves all rows.
        cum += np.arange(len(block))[:, None]
        rows = order[np.searchsorted(sorted_row, first) : np.searchsorted(sorted_row, first + len(block))]
        r = row[rows] - first
        below = np.where(lo[rows] > 0, cum[r, np.maximum(lo[rows] - 1, 0)], r)
        top = cum[r, hi[rows] - 1]
        at = np.searchsorted(cum.ravel(), below + u[rows] * (top - below), side="right") - r * width
        out[rows] = np.clip(at, lo[rows], hi[rows] - 1)  # a rounding error never leaves the block
    return out


def _brand_name(rng: np.random.Generator) -> str:
    parts = rng.choice(_SYLLABLES, size=rng.integers(2, 4))
    return "".join(parts).capitalize()


def build_world(rng: np.random.Generator, n_members: int, n_brands: int) -> World:
    """Draw the hierarchy, brands with price tiers, subclass-brands, and members with latent tastes."""
    subclasses = [
        (division, department, klass, subclass)
        for division, departments in HIERARCHY.items()
        for department, classes in departments.items()
        for klass, names in classes.items()
        for subclass in names
    ]
    names: set[str] = set()
    brands: list[str] = []
    while len(brands) < n_brands:
        name = _brand_name(rng)
        if name not in names:
            names.add(name)
            brands.append(name)
    brand_tier = rng.choice(5, size=n_brands, p=[0.25, 0.3, 0.22, 0.15, 0.08])
    brand_division = rng.choice(len(DIVISIONS), size=n_brands, p=[0.45, 0.18, 0.12, 0.15, 0.10])

    # Every brand sells in 2-6 subclasses, mostly of its own division.
    sb_subclass, sb_brand = [], []
    subclass_division = np.array([DIVISIONS.index(s[0]) for s in subclasses])
    for brand in range(n_brands):
        own = np.flatnonzero(subclass_division == brand_division[brand])
        picks = set(rng.choice(own, size=min(len(own), rng.integers(2, 6)), replace=False).tolist())
        if rng.random() < 0.2:
            picks.add(int(rng.integers(len(subclasses))))
        for subclass in sorted(picks):
            sb_subclass.append(subclass)
            sb_brand.append(brand)
    sb_subclass_arr, sb_brand_arr = np.array(sb_subclass), np.array(sb_brand)
    n_sb = len(sb_subclass_arr)

    # Members: dominant division, gifts in a second one, price level, heavy-tailed activity and a
    # low-rank taste over subclass-brands that collaborative filtering can learn.
    member_division = rng.choice(len(DIVISIONS), size=n_members, p=DIVISION_SHARE)
    division_pref = np.full((n_members, len(DIVISIONS)), 0.03)
    division_pref[np.arange(n_members), member_division] = 1.0
    gifters = rng.random(n_members) < 0.15
    division_pref[gifters, rng.integers(len(DIVISIONS), size=gifters.sum())] += 0.35
    price_level = np.clip(rng.normal(1.6, 1.1, size=n_members), 0, 4)
    activity = np.minimum(rng.pareto(1.6, size=n_members) * 0.06 + 0.02, 3.0)
    member_latent = rng.normal(size=(n_members, TASTE_DIM)).astype(np.float32)
    sb_latent = rng.normal(size=(n_sb, TASTE_DIM)).astype(np.float32)
    return World(
        subclasses=subclasses,
        brands=brands,
        brand_tier=brand_tier,
        sb_subclass=sb_subclass_arr,
        sb_brand=sb_brand_arr,
        sb_division=subclass_division[sb_subclass_arr],
        member_ids=np.arange(1, n_members + 1, dtype=np.int64) + 1_000_000,
        member_activity=activity,
        member_latent=member_latent,
        sb_latent=sb_latent,
        division_log_pref=np.log(division_pref).astype(np.float32),
        price_level=price_level.astype(np.float32),
    )
