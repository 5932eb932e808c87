"""A seeded synthetic interaction generator: the embedded default data (MovieLens may not be redistributed).

Users belong to latent taste clusters and items carry latent vectors plus a Zipf-like popularity, so that a model
has real structure to learn and clearly beats ItemPop, while popularity still explains part of the data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from edgerec.data.interactions import Interactions
from edgerec.errors import EdgerecError
from edgerec.limits import require


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

    @classmethod
    def parse(cls, spec: str) -> SyntheticConfig:
        """'users=2000,items=500,seed=3' -> config; unknown keys and bad values are refused."""
        known = {f.name: f.type for f in fields(cls)}
        values: dict[str, int | float] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, sep, val = part.partition("=")
            if not sep or key not in known:
                raise EdgerecError(f"synthetic data: unknown setting {part!r}; settings are {', '.join(known)}")
            try:
                values[key] = float(val) if key in ("popularity", "taste") else int(val)
            except ValueError:
                raise EdgerecError(f"synthetic data: {key} must be a number, got {val!r}") from None
        cfg = cls(**values)  # type: ignore[arg-type]
        if min(cfg.users, cfg.items, cfg.clusters, cfg.dim, cfg.mean_interactions) < 1:
            raise EdgerecError(f"synthetic data: sizes must be positive, got {asdict(cfg)}")
        if cfg.items < 110:
            raise EdgerecError("synthetic data: items must be at least 110 (99 test negatives per user plus history)")
        return cfg


def generate(cfg: SyntheticConfig = SyntheticConfig()) -> Interactions:
    """Sample each user's items without replacement from softmax(taste . item + popularity) via Gumbel top-k."""
    require(  # the logits, the Gumbel noise and the argsort, each [users, items] x 8 bytes, live at once
        3 * 8 * cfg.users * cfg.items,
        f"synthetic data users={cfg.users},items={cfg.items}",
        "use fewer users or items (it draws every user's ranking of the whole catalog)",
    )
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


def drifting_stream(
    cfg: SyntheticConfig = SyntheticConfig(),
    rounds: int = 4,
    drift: float = 0.35,
    new_users: int = 100,
    new_items: int = 40,
    per_round: int = 8,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Rounds of (user ids, item ids, timestamps) from one world whose tastes drift: round 0 is `generate`-like;
    every later round adds `new_users` users and `new_items` items, moves each cluster's taste by `drift` along its
    own random direction, and draws about `per_round` new interactions per user (never an item twice).

    Ids are consistent across rounds (new users and items take the next integers), so round r is what an
    `edgerec update` receives after rounds 0..r-1.
    """
    rng = np.random.default_rng(cfg.seed)
    n_users, n_items = cfg.users + rounds * new_users, cfg.items + rounds * new_items
    require(25 * n_users * n_items, f"a synthetic stream of {n_users} users x {n_items} items", "use fewer")
    centers = rng.normal(size=(cfg.clusters, cfg.dim))
    directions = rng.normal(size=(cfg.clusters, cfg.dim))
    cluster = rng.integers(0, cfg.clusters, size=n_users)
    offsets = 0.5 * rng.normal(size=(n_users, cfg.dim))
    item_vecs = rng.normal(size=(n_items, cfg.dim))
    item_vecs /= np.linalg.norm(item_vecs, axis=1, keepdims=True)
    log_pop = -cfg.popularity * np.log(rng.permutation(n_items) + 1)
    seen = np.zeros((n_users, n_items), dtype=bool)
    out, clock = [], 1_000_000_000
    for r in range(rounds + 1):
        users_now, items_now = cfg.users + r * new_users, cfg.items + r * new_items
        tastes = centers[cluster[:users_now]] + r * drift * directions[cluster[:users_now]] + offsets[:users_now]
        tastes /= np.linalg.norm(tastes, axis=1, keepdims=True)
        logits = cfg.taste * tastes @ item_vecs[:items_now].T + log_pop[:items_now]
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
