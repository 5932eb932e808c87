"""Fold-in: the two user vectors of a user the model has never seen, from a short list of their items, with the
item side frozen. numpy only (weights read with safetensors), so a backend or a device runs it without torch.

A few hundred full-batch Adam steps on the training objective (BCE, the user's items as positives, sampled
negatives re-drawn every step, a little L2), backpropagating by hand through the folded NeuMF (edgerec.runtime.fold):
    logit(i) = p . G_i + w_m . MLP_rest(relu(A_i + W_u q)) + b
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgerec.errors import EdgerecError
from edgerec.runtime.config import FoldInConfig
from edgerec.runtime.fold import FoldedNeuMF, fold


class ItemSide(FoldedNeuMF):
    """The frozen item side of a NeuMF, folded (edgerec.runtime.fold), with the gradients fold-in needs."""

    @classmethod
    def of(cls, weights: dict[str, np.ndarray]) -> ItemSide:
        f = fold(weights)
        return cls(f.G, f.A, f.Wu, f.layers, f.wm, f.b)

    @classmethod
    def from_checkpoint(cls, folder: str | Path) -> ItemSide:
        from safetensors.numpy import load_file

        from edgerec.data.features import checkpoint_features, fold_weights
        from edgerec.io import read_json

        path = Path(folder) / "model.safetensors"
        if not path.is_file():
            raise EdgerecError(f"{folder}: no model.safetensors")
        weights = {k: v.astype(np.float64) for k, v in load_file(str(path)).items()}
        config = Path(folder) / "config.json"
        encoded = checkpoint_features(Path(folder), read_json(config)) if config.is_file() else None
        return cls.of(weights if encoded is None else fold_weights(weights, encoded))

    def grads(
        self, p: np.ndarray, q: np.ndarray, items: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None
    ) -> tuple[np.ndarray, ...]:
        logit, acts = self.logits(p, q, items)
        dl = (1 / (1 + np.exp(-logit)) - labels) / len(items)  # d mean-BCE / d logit, [m]
        if weights is not None:  # a weighted mean
            dl = dl * weights
        gp = self.G[items].T @ dl
        dh = dl[:, None] * self.wm[None, :]  # [m, h_last]
        for (w, _), z in zip(reversed(self.layers), reversed(acts[1:]), strict=True):
            dh = (dh * (z > 0)) @ w  # through relu, then the layer
        gq = self.Wu.T @ (dh * (acts[0] > 0)).sum(axis=0)
        return gp, gq


Start = tuple[np.ndarray, np.ndarray]  # a fold-in's first (user_gmf, user_mlp), e.g. the user's feature vectors


def start_vectors(side: ItemSide, start: Start | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The first (p [g], q [d]) of a fold-in as float64: `start` (checked), or the seeded small normal values."""
    if start is None:
        return initial_vectors(side.g, side.d, seed)
    out = []
    for name, v, dim in (("user_gmf", start[0], side.g), ("user_mlp", start[1], side.d)):
        arr = np.asarray(v)
        if arr.dtype.kind not in "fiu" or arr.size != dim:
            raise EdgerecError(f"the start's {name} must be {dim} numbers; got {arr.size} of dtype {arr.dtype}")
        arr = arr.astype(np.float64).reshape(dim)
        if not np.isfinite(arr).all():
            raise EdgerecError(f"the start's {name} contains NaN or infinite values")
        out.append(arr)
    return out[0], out[1]


def fold_in(
    side: ItemSide, items: list[int] | np.ndarray, cfg: FoldInConfig = FoldInConfig(), start: Start | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(user_gmf [g], user_mlp [d]) for a user who interacted with `items` (dense item indices), fitted from
    `start` (e.g. the vectors of the user's features, pulled toward them by cfg.pull / the distinct items) or from
    the seeded start (the same negatives either way)."""
    pos = np.unique(np.asarray(items, dtype=np.int64))
    if pos.size == 0:
        raise EdgerecError("fold-in needs at least one interacted item")
    if pos.min() < 0 or pos.max() >= side.n_items:
        raise EdgerecError(f"items must lie in 0..{side.n_items - 1}; got {pos[(pos < 0) | (pos >= side.n_items)][0]}")
    rng = np.random.default_rng(cfg.seed)
    p, q = rng.normal(0, 0.01, side.g), rng.normal(0, 0.01, side.d)
    if start is not None:
        p, q = start_vectors(side, start, cfg.seed)
    p0, q0, pull = p.copy(), q.copy(), cfg.pull / len(pos) if start is not None else 0.0
    m = [np.zeros_like(p), np.zeros_like(q)]
    v = [np.zeros_like(p), np.zeros_like(q)]
    known = np.zeros(side.n_items, dtype=bool)
    known[pos] = True
    candidates = np.flatnonzero(~known)
    labels = np.concatenate([np.ones(len(pos)), np.zeros(len(pos) * cfg.negatives)])
    for t in range(1, cfg.steps + 1):
        neg = candidates[rng.integers(0, len(candidates), len(pos) * cfg.negatives)]
        gp, gq = side.grads(p, q, np.concatenate([pos, neg]), labels)
        gp, gq = gp + pull * (p - p0), gq + pull * (q - q0)
        for k, (x, g) in enumerate(((p, gp + cfg.l2 * p), (q, gq + cfg.l2 * q))):
            m[k] = 0.9 * m[k] + 0.1 * g
            v[k] = 0.999 * v[k] + 0.001 * g * g
            x -= cfg.lr * (m[k] / (1 - 0.9**t)) / (np.sqrt(v[k] / (1 - 0.999**t)) + 1e-8)
    return p.astype(np.float32), q.astype(np.float32)


def initial_vectors(g: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The seeded start of a fold-in: (p [g], q [d]), small normal values."""
    rng = np.random.default_rng(seed)
    return rng.normal(0, 0.01, g), rng.normal(0, 0.01, d)


def fold_in_fixed(
    side: ItemSide,
    history: np.ndarray | list[int],
    negatives: np.ndarray,
    cfg: FoldInConfig,
    start: Start | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The phone bundle's fold-in (its `fold_in` signature computes the same; `fold_in_from` with `start`): full-batch
    Adam on weighted BCE over the unique history items and a fixed negative set (the items of `negatives` outside
    the history, weighted to cfg.negatives per positive), from `start` (with an L2 pull of cfg.pull / the distinct
    items toward it) or the seeded start. Deterministic, so every client that runs it gets the same vectors."""
    pos = np.unique(np.asarray(history, dtype=np.int64))
    if pos.size == 0:
        raise EdgerecError("fold-in needs at least one interacted item")
    if pos.min() < 0 or pos.max() >= side.n_items:
        raise EdgerecError(f"items must lie in 0..{side.n_items - 1}; got {pos[(pos < 0) | (pos >= side.n_items)][0]}")
    neg = np.asarray(negatives, dtype=np.int64)
    neg = neg[~np.isin(neg, pos)]
    items = np.concatenate([pos, neg])
    labels = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])
    weights = np.concatenate([np.ones(len(pos)), np.full(len(neg), cfg.negatives * len(pos) / max(len(neg), 1))])
    weights /= len(pos) * (1 + cfg.negatives)
    p, q = start_vectors(side, start, cfg.seed)
    p0, q0, pull = p.copy(), q.copy(), cfg.pull / len(pos) if start is not None else 0.0
    m = [np.zeros_like(p), np.zeros_like(q)]
    v = [np.zeros_like(p), np.zeros_like(q)]
    for t in range(1, cfg.steps + 1):
        # grads() takes the mean over the items: weights * len(items) makes it the weighted sum
        gp, gq = side.grads(p, q, items, labels, weights * len(items))
        gp, gq = gp + pull * (p - p0), gq + pull * (q - q0)
        for k, (x, g) in enumerate(((p, gp + cfg.l2 * p), (q, gq + cfg.l2 * q))):
            m[k] = 0.9 * m[k] + 0.1 * g
            v[k] = 0.999 * v[k] + 0.001 * g * g
            x -= cfg.lr * (m[k] / (1 - 0.9**t)) / (np.sqrt(v[k] / (1 - 0.999**t)) + 1e-8)
    return p.astype(np.float32), q.astype(np.float32)
