"""The simulated retailer: product hierarchy, brands, subclass-brands and members with latent tastes."""

from collections.abc import Callable
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

BRAND_ID_SPAN = 1_000
"""Brand ids below this fit the last three digits of a subclass-brand id; larger worlds take more digits."""


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
    subclass_latent: np.ndarray  # subclasses x TASTE_DIM (float32): its groups' latents summed, / sqrt(count)
    subclass_division: np.ndarray  # division index per subclass
    nested: bool = False
    """Views draw a subclass first, then a group inside it (`draw_subclass_blocks`, `draw_in_blocks`): the
    wide profile's law, whose cost does not grow with the number of groups."""

    def sb_id(self, sb: np.ndarray) -> np.ndarray:
        """Stable 64-bit id of a subclass-brand: subclass id * 1000 + brand id (* 10,000 from 1,000 brands on)."""
        span = BRAND_ID_SPAN if len(self.brands) < BRAND_ID_SPAN else 10 ** len(str(len(self.brands)))
        return (self.sb_subclass[sb] + 1).astype(np.int64) * span + self.sb_brand[sb] + 1

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

    def pair_taste(self, members: np.ndarray, sbs: np.ndarray) -> np.ndarray:
        """`taste` of members[i] for sbs[i, j] only (n x width): the scores of a block per row, without the
        members x groups matrix."""
        taste = np.einsum("nd,nwd->nw", self.member_latent[members], self.sb_latent[sbs])
        taste *= np.float32(1.6 / np.sqrt(TASTE_DIM))
        taste += self.division_log_pref[members[:, None], self.sb_division[sbs]]
        tier = self.brand_tier[self.sb_brand[sbs]].astype(np.float32)
        taste -= np.float32(0.8) * np.abs(self.price_level[members][:, None] - tier)
        return taste

    def subclass_taste(self, members: np.ndarray, subclasses: np.ndarray) -> np.ndarray:
        """Log preference (float32) of the members for the subclasses, members x subclasses: the nested law's
        first stage. Latent affinity to the subclass's groups as a whole, plus the preference of its division;
        price only matters inside the subclass."""
        taste = self.member_latent[members] @ self.subclass_latent[subclasses].T
        taste *= np.float32(1.6 / np.sqrt(TASTE_DIM))
        taste += self.division_log_pref[members][:, self.subclass_division[subclasses]]
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

    The same law as the Gumbel-max over the member's taste, by inverse CDF (see `_draw_rows`). A contiguous
    [lo, hi) restricts the draw to a block of columns (e.g. the live groups of one subclass), but every
    member's scores span all the columns: `draw_in_blocks` computes the block's only.
    """
    return _draw_rows(rng, lambda block: world.taste(block, columns), members, len(columns), lo, hi)


def draw_subclasses(rng: np.random.Generator, world: World, members: np.ndarray, subclasses: np.ndarray) -> np.ndarray:
    """The nested law's first stage: for each row, a position in `subclasses` drawn with probability
    proportional to exp(subclass_taste). Costs distinct members x subclasses scores, whatever the groups."""
    return _draw_rows(rng, lambda block: world.subclass_taste(block, subclasses), members, len(subclasses))


def draw_subclass_blocks(
    rng: np.random.Generator, world: World, members: np.ndarray, columns: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each row, the block [lo, hi) of `columns` (groups sorted by subclass) of one of their subclasses,
    drawn by `draw_subclasses`."""
    subclass = world.sb_subclass[columns]
    present = np.unique(subclass)
    drawn = present[draw_subclasses(rng, world, members, present)]
    return np.searchsorted(subclass, drawn, side="left"), np.searchsorted(subclass, drawn, side="right")


def draw_in_blocks(
    rng: np.random.Generator, world: World, members: np.ndarray, columns: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """For each row i, a position j in [lo[i], hi[i]) (not empty) of `columns` drawn with probability
    proportional to exp(taste[members[i], columns[j]]): the law of `draw_by_taste`, at the cost of the
    block's columns only (rows x the widest block)."""
    n, out = len(members), np.empty(len(members), dtype=np.int64)
    width = int((hi - lo).max()) if n else 0
    u = rng.random(n)
    step = max(1, DRAW_CHUNK // (width * TASTE_DIM + 1))
    for first in range(0, n, step):
        rows = slice(first, first + step)
        at = lo[rows, None] + np.arange(width)
        inside = at < hi[rows, None]
        taste = world.pair_taste(members[rows], columns[np.where(inside, at, lo[rows, None])])
        weight = np.where(inside, np.exp(taste - taste.max(axis=1, keepdims=True)), 0.0)
        cum = np.cumsum(weight, axis=1, dtype=np.float64)
        picked = (cum <= u[rows, None] * cum[:, -1:]).sum(axis=1)
        out[rows] = lo[rows] + np.minimum(picked, hi[rows] - lo[rows] - 1)  # a rounding error never leaves the block
    return out


def _draw_rows(
    rng: np.random.Generator,
    scores: Callable[[np.ndarray], np.ndarray],
    members: np.ndarray,
    width: int,
    lo: np.ndarray | None = None,
    hi: np.ndarray | None = None,
) -> np.ndarray:
    """For each row i, a position j in [lo[i], hi[i]) of `width` columns drawn with probability proportional
    to exp(scores(distinct members)[member of row i, j]) (default: over all columns).

    By inverse CDF: the scores and their cumulative sums are computed once per distinct member, in chunks, and
    each row costs one uniform and a binary search.
    """
    n = len(members)
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
        taste = scores(block)
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


def brand_names(rng: np.random.Generator, n_brands: int) -> list[str]:
    """Distinct brand names of syllables. Below `BRAND_ID_SPAN` brands (the flash-sale profiles) a taken name
    is drawn again; from there on it gets the next number ("Maro 2"), as the 4,352 syllable names would
    run out and redraws slow down long before."""
    if n_brands < BRAND_ID_SPAN:
        names: set[str] = set()
        brands: list[str] = []
        while len(brands) < n_brands:
            name = _brand_name(rng)
            if name not in names:
                names.add(name)
                brands.append(name)
        return brands
    taken: dict[str, int] = {}
    numbered = []
    for _ in range(n_brands):
        name = _brand_name(rng)
        taken[name] = taken.get(name, 0) + 1
        numbered.append(name if taken[name] == 1 else f"{name} {taken[name]}")
    return numbered


def hierarchy(subclass_copies: int = 1) -> list[tuple[str, str, str, str]]:
    """(division, department, class, subclass) of every subclass, id = index + 1. With copies, each subclass
    of HIERARCHY comes that many times, numbered from the second on ("pumps", "pumps 2", ...): the wide
    profile's many subclasses."""
    return [
        (division, department, klass, subclass if copy == 0 else f"{subclass} {copy + 1}")
        for division, departments in HIERARCHY.items()
        for department, classes in departments.items()
        for klass, names in classes.items()
        for subclass in names
        for copy in range(subclass_copies)
    ]


def build_world(
    rng: np.random.Generator, n_members: int, n_brands: int, subclass_copies: int = 1, nested: bool = False
) -> World:
    """Draw the hierarchy, brands with price tiers, subclass-brands, and members with latent tastes.

    `subclass_copies` and `nested` make the wide profile's world (see `hierarchy`, `World.nested`); they
    draw nothing more, so the other profiles' worlds are the same as without them.
    """
    subclasses = hierarchy(subclass_copies)
    brands = brand_names(rng, n_brands)
    brand_tier = rng.choice(5, size=n_brands, p=[0.25, 0.3, 0.22, 0.15, 0.08])
    brand_division = rng.choice(len(DIVISIONS), size=n_brands, p=[0.45, 0.18, 0.12, 0.15, 0.10])

    # Every brand sells in 2-5 subclasses of its own division, and one in five in one more of any division.
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
    # A subclass's latent: its groups' summed, scaled back to the spread of one group's (sum / sqrt(count)).
    subclass_latent = np.zeros((len(subclasses), TASTE_DIM), dtype=np.float32)
    np.add.at(subclass_latent, sb_subclass_arr, sb_latent)
    subclass_latent /= np.sqrt(np.maximum(np.bincount(sb_subclass_arr, minlength=len(subclasses)), 1))[:, None]
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
        subclass_latent=subclass_latent,
        subclass_division=subclass_division,
        nested=nested,
    )
