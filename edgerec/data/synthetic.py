"""A seeded synthetic interaction generator: the embedded default data (MovieLens may not be redistributed).

Users belong to latent taste clusters and items carry latent vectors plus a Zipf-like popularity, so that a model
has real structure to learn and clearly beats ItemPop, while popularity still explains part of the data.

Two samplers draw from that one world. Up to DENSE_CELLS users x items, every user's ranking of the whole catalog is
drawn (exact). Beyond (the `ml-20m` and `catalog-1m` presets: 3.7 G and 10^12 cells), users are drawn in chunks by
sampling-importance-resampling: a pool of candidates from the user's cluster's distribution (the cluster centre's
taste plus popularity, one cumulative table per cluster), resampled without replacement with weights for the user's
own taste. Memory is bounded by the output plus one chunk; the size is checked before anything is allocated.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, fields

import numpy as np

from edgerec.data.interactions import Interactions
from edgerec.errors import EdgerecError
from edgerec.limits import require

DENSE_CELLS = 1 << 26  # users x items up to which the exact (whole-catalog) sampler runs
POOL = 8  # candidates drawn per wanted interaction by the chunked sampler (at least MIN_POOL per user)
MIN_POOL = 64
CHUNK_POOL = 1 << 22  # candidates per chunk of users: bounds the chunked sampler's working memory (~0.5 GB)
BYTES_PER_INTERACTION = 48  # the output (users, items, timestamps int64; ratings float32) plus the chunks and copies


@dataclass(frozen=True)
class SyntheticConfig:
    users: int = 1500
    items: int = 800
    clusters: int = 8  # taste clusters; users of one cluster share a preference direction
    dim: int = 8  # latent dimension of tastes
    mean_interactions: int = 40  # per user; actual counts are geometric-ish around it, at least 3
    popularity: float = 0.8  # exponent of the Zipf popularity prior (0 = uniform)
    taste: float = 6.0  # strength of the latent taste relative to popularity
    seed: int = 0

    def name(self) -> str:
        changed = [f"{f.name}={getattr(self, f.name)}" for f in fields(self) if getattr(self, f.name) != f.default]
        return "synthetic" + (":" + ",".join(changed) if changed else "")

    def expected_interactions(self) -> float:
        """The mean number of interactions the spec draws: per user a geometric count clipped to [3, max]."""
        q, top = 1.0 - 1.0 / self.mean_interactions, self.max_per_user()
        # E[clip(G, 3, top)] = 3 + sum_{k=4..top} P(G >= k) = 3 + sum_{k=4..top} q^(k-1)
        return self.users * (3 + (q**3 - q**top) / (1 - q) if q > 0 and top > 3 else 3)

    def max_per_user(self) -> int:
        return max(3, min(self.items - 100, 4 * self.mean_interactions))

    def memory_bytes(self) -> float:
        """About what generating it needs at peak (refused before allocating when the machine has less)."""
        if self.users * self.items <= DENSE_CELLS:
            return 3 * 8 * self.users * self.items + BYTES_PER_INTERACTION * self.expected_interactions()
        tables = 8 * (self.dim * (self.users + self.items) + (self.clusters + 2) * self.items)
        return BYTES_PER_INTERACTION * self.expected_interactions() + tables + 128 * CHUNK_POOL

    @classmethod
    def parse(cls, spec: str) -> SyntheticConfig:
        """'users=2000,items=500,seed=3' -> config; a preset name may come first ('ml-20m,seed=1'); unknown keys
        and bad values are refused."""
        known = {f.name: f.type for f in fields(cls)}
        values: dict[str, int | float] = {}
        parts = [p.strip() for p in spec.split(",") if p.strip()]
        if parts and "=" not in parts[0]:
            if parts[0] not in PRESETS:
                raise EdgerecError(
                    f"synthetic data: unknown preset {parts[0]!r}; presets are {', '.join(PRESETS)} "
                    f"(or settings {', '.join(known)})"
                )
            values.update(asdict(PRESETS[parts.pop(0)]))
        for part in parts:
            key, sep, val = part.partition("=")
            if not sep or key not in known:
                raise EdgerecError(f"synthetic data: unknown setting {part!r}; settings are {', '.join(known)}")
            try:
                values[key] = float(val) if key in ("popularity", "taste") else int(val)
            except ValueError:
                raise EdgerecError(f"synthetic data: {key} must be a number, got {val!r}") from None
        try:
            cfg = cls(**values)  # type: ignore[arg-type]
        except OverflowError:
            raise EdgerecError("synthetic data: a setting is too large") from None
        if min(cfg.users, cfg.items, cfg.clusters, cfg.dim, cfg.mean_interactions) < 1:
            raise EdgerecError(f"synthetic data: sizes must be positive, got {asdict(cfg)}")
        if cfg.items < 110:
            raise EdgerecError("synthetic data: items must be at least 110 (99 test negatives per user plus history)")
        return cfg


# the two scales: MovieLens-20M's shape (138,493 users, 26,744 items, ~20 M interactions) and a catalog of a
# million items for a million users (~50 M interactions); mean_interactions chosen so the expected total matches
PRESETS = {
    "ml-20m": SyntheticConfig(users=138_493, items=26_744, mean_interactions=147),
    "catalog-1m": SyntheticConfig(users=1_000_000, items=1_000_000, mean_interactions=51),
}


def generate(cfg: SyntheticConfig = SyntheticConfig()) -> Interactions:
    """Sample each user's items without replacement from softmax(taste . item + popularity) via Gumbel top-k
    (exact up to DENSE_CELLS users x items, chunked sampling-importance-resampling beyond)."""
    require(
        cfg.memory_bytes(),
        f"synthetic data {cfg.name()} (~{cfg.expected_interactions():,.0f} interactions)",
        "use fewer users, items or mean_interactions",
    )
    if cfg.users * cfg.items > DENSE_CELLS:
        return _generate_chunked(cfg)
    rng = np.random.default_rng(cfg.seed)
    centers = rng.normal(size=(cfg.clusters, cfg.dim))
    cluster = rng.integers(0, cfg.clusters, size=cfg.users)
    tastes = centers[cluster] + 0.5 * rng.normal(size=(cfg.users, cfg.dim))  # [U, d]
    tastes /= np.linalg.norm(tastes, axis=1, keepdims=True)
    item_vecs = rng.normal(size=(cfg.items, cfg.dim))
    item_vecs /= np.linalg.norm(item_vecs, axis=1, keepdims=True)  # [I, d]
    pop_rank = rng.permutation(cfg.items) + 1
    log_pop = -cfg.popularity * np.log(pop_rank)  # [I]
    logits = cfg.taste * tastes @ item_vecs.T + log_pop  # [U, I]
    gumbel = -np.log(-np.log(rng.random(logits.shape)))
    order = np.argsort(-(logits + gumbel), axis=1)  # a random ranking per user, biased by the logits
    max_n = min(cfg.items - 100, 4 * cfg.mean_interactions)
    counts = np.clip(rng.geometric(1.0 / cfg.mean_interactions, size=cfg.users), 3, max_n)
    users = np.repeat(np.arange(cfg.users), counts)
    items = np.concatenate([order[u, :c] for u, c in enumerate(counts)])
    # timestamps: a shuffled sequence per user so leave-one-out holds out a random, not the most likely, item
    timestamps = 1_000_000_000 + rng.permutation(len(users)).astype(np.int64)
    inter = Interactions.from_raw(users, items, timestamps, np.ones(len(users), dtype=np.float32), source="synthetic")
    return inter


def _generate_chunked(cfg: SyntheticConfig) -> Interactions:
    """The same world as `generate`, drawn a chunk of users at a time without a users x items matrix."""
    rng = np.random.default_rng(cfg.seed)
    centers = rng.normal(size=(cfg.clusters, cfg.dim))
    cluster = rng.integers(0, cfg.clusters, size=cfg.users)
    item_vecs = rng.normal(size=(cfg.items, cfg.dim)).astype(np.float32)
    item_vecs /= np.linalg.norm(item_vecs, axis=1, keepdims=True)
    log_pop = -cfg.popularity * np.log(rng.permutation(cfg.items) + 1.0)
    heads = centers / np.linalg.norm(centers, axis=1, keepdims=True)  # each cluster's taste direction
    # one cumulative distribution per cluster over the catalog, stacked as c + cdf_c so one searchsorted serves all
    cdf = np.empty(cfg.clusters * cfg.items)
    for c in range(cfg.clusters):
        logit = cfg.taste * (item_vecs @ heads[c].astype(np.float32)) + log_pop
        p = np.exp(logit - logit.max())
        cum = np.cumsum(p)
        cdf[c * cfg.items : (c + 1) * cfg.items] = c + cum / cum[-1]
    counts = np.clip(rng.geometric(1.0 / cfg.mean_interactions, size=cfg.users), 3, cfg.max_per_user())
    pools = np.minimum(cfg.items, np.maximum(MIN_POOL, POOL * counts))
    cum = np.cumsum(pools)
    bounds = np.unique(np.r_[0, np.searchsorted(cum, np.arange(CHUNK_POOL, cum[-1], CHUNK_POOL)), cfg.users])
    out_u, out_i = [], []
    for s, e in itertools.pairwise(bounds):  # chunks of about CHUNK_POOL candidates
        us = np.arange(s, e)
        tastes = centers[cluster[us]] + 0.5 * rng.normal(size=(len(us), cfg.dim))
        tastes /= np.linalg.norm(tastes, axis=1, keepdims=True)
        owner = np.repeat(np.arange(len(us)), pools[us])
        offset = cluster[us][owner]
        draws = offset + rng.random(len(owner))
        order = np.argsort(draws)  # sorted queries walk the table in order: ~30 % faster than random ones
        cand = np.empty(len(draws), dtype=np.int64)
        cand[order] = np.searchsorted(cdf, draws[order], side="right")
        cand -= offset * cfg.items
        key, mult = np.unique(owner * cfg.items + np.clip(cand, 0, cfg.items - 1), return_counts=True)
        own, item = key // cfg.items, key % cfg.items
        # importance weight of the user's own taste over the cluster's, times how often the pool drew the item
        shift = (tastes - heads[cluster[us]]).astype(np.float32)
        logw = cfg.taste * np.einsum("nd,nd->n", shift[own], item_vecs[item]) + np.log(mult)
        score = logw - np.log(-np.log(rng.random(len(key))))  # Gumbel top-k: sampling without replacement
        order = np.lexsort((-score, own))
        first = np.searchsorted(own[order], np.arange(len(us)))
        rank = np.arange(len(order)) - first[own[order]]
        keep = order[rank < counts[us][own[order]]]
        out_u.append((own[keep] + s).astype(np.int32))
        out_i.append(item[keep].astype(np.int32))
    users = np.concatenate(out_u).astype(np.int64)
    items = np.concatenate(out_i).astype(np.int64)
    del out_u, out_i
    present = np.bincount(items, minlength=cfg.items) > 0  # items never drawn are not in the data (as from_raw)
    if not present.all():
        items = (np.cumsum(present) - 1)[items]
    timestamps = 1_000_000_000 + rng.permutation(len(users)).astype(np.int64)
    return Interactions(
        users=users,
        items=items,
        user_ids=np.arange(cfg.users, dtype=np.int64),
        item_ids=np.nonzero(present)[0].astype(np.int64),
        timestamps=timestamps,
        ratings=np.ones(len(users), dtype=np.float32),
        stats={"duplicates": 0},
    )


@dataclass(frozen=True)
class DriftingWorld:
    """The hidden truth of `drifting_stream`: taste clusters that move by `drift` per round along their own direction.
    `logits(r)` are the true preferences in round r (users x items present then): what the stream's interactions
    are drawn from (Gumbel top-k), and what a simulation draws clicks from."""

    cfg: SyntheticConfig
    drift: float
    new_users: int
    new_items: int
    centers: np.ndarray
    directions: np.ndarray
    cluster: np.ndarray
    offsets: np.ndarray
    item_vecs: np.ndarray
    log_pop: np.ndarray

    def size(self, r: int) -> tuple[int, int]:
        return self.cfg.users + r * self.new_users, self.cfg.items + r * self.new_items

    def logits(self, r: int) -> np.ndarray:
        users_now, items_now = self.size(r)
        c = self.cluster[:users_now]
        tastes = self.centers[c] + r * self.drift * self.directions[c] + self.offsets[:users_now]
        tastes /= np.linalg.norm(tastes, axis=1, keepdims=True)
        return self.cfg.taste * tastes @ self.item_vecs[:items_now].T + self.log_pop[:items_now]


def drifting_world(
    cfg: SyntheticConfig = SyntheticConfig(),
    rounds: int = 4,
    drift: float = 0.35,
    new_users: int = 100,
    new_items: int = 40,
    rng: np.random.Generator | None = None,
) -> DriftingWorld:
    """The world of `drifting_stream(cfg, rounds, drift, new_users, new_items)` (the same seed, the same world)."""
    rng = np.random.default_rng(cfg.seed) if rng is None else rng
    n_users, n_items = cfg.users + rounds * new_users, cfg.items + rounds * new_items
    require(25 * n_users * n_items, f"a synthetic stream of {n_users} users x {n_items} items", "use fewer")
    centers = rng.normal(size=(cfg.clusters, cfg.dim))
    directions = rng.normal(size=(cfg.clusters, cfg.dim))
    cluster = rng.integers(0, cfg.clusters, size=n_users)
    offsets = 0.5 * rng.normal(size=(n_users, cfg.dim))
    item_vecs = rng.normal(size=(n_items, cfg.dim))
    item_vecs /= np.linalg.norm(item_vecs, axis=1, keepdims=True)
    log_pop = -cfg.popularity * np.log(rng.permutation(n_items) + 1)
    return DriftingWorld(cfg, drift, new_users, new_items, centers, directions, cluster, offsets, item_vecs, log_pop)


def drifting_stream(
    cfg: SyntheticConfig = SyntheticConfig(),
    rounds: int = 4,
    drift: float = 0.35,
    new_users: int = 100,
    new_items: int = 40,
    per_round: int = 8,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Rounds of (user ids, item ids, timestamps) from one world whose tastes drift (`drifting_world`): round 0 is
    `generate`-like; every later round adds `new_users` users and `new_items` items, moves each cluster's taste by
    `drift` along its own random direction, and draws about `per_round` new interactions per user (never an item
    twice).

    Ids are consistent across rounds (new users and items take the next integers), so round r is what an
    `edgerec update` receives after rounds 0..r-1.
    """
    rng = np.random.default_rng(cfg.seed)
    world = drifting_world(cfg, rounds, drift, new_users, new_items, rng)
    n_users, n_items = world.size(rounds)
    seen = np.zeros((n_users, n_items), dtype=bool)
    out, clock = [], 1_000_000_000
    for r in range(rounds + 1):
        users_now, items_now = world.size(r)
        logits = world.logits(r)
        logits[seen[:users_now, :items_now]] = -np.inf
        order = np.argsort(-(logits - np.log(-np.log(rng.random(logits.shape)))), axis=1)
        mean = cfg.mean_interactions if r == 0 else per_round
        counts = np.clip(rng.geometric(1.0 / mean, size=users_now), 1 if r else 3, items_now // 4)
        users = np.repeat(np.arange(users_now), counts)
        items = np.concatenate([order[u, :c] for u, c in enumerate(counts)])
        seen[users, items] = True
        times = clock + rng.permutation(len(users)).astype(np.int64)
        clock += len(users)
        out.append((users.astype(np.int64), items.astype(np.int64), times))
    return out
