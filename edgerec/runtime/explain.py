"""Explanations: which items of a user's history support a recommendation ("because you liked X"). numpy only, over
the folded item side (edgerec.runtime.fold), so a device or a server runs it without torch.

Two explainers:

- `similarity` (cheap): each history item's cosine similarity to the recommended item in the model's own item
  spaces, the GMF item row scaled by the predict weights (G_i) next to the folded item half of the first MLP layer
  (A_i). One [L, g + h0] x [g + h0] product per recommendation.
- `exact` (leave-one-out): the drop of the recommended item's logit when that history item is removed and the
  user's vectors are fitted again without it (fold-in). The leave-one-out fits and the full one run as one batched
  fit sharing their negatives, so the variants differ only by the item left out; exact for the model and the
  fold-in, up to the fit's convergence. Bounded: a long history re-fits only the items that a first-order estimate,
  traced along the full fit, ranks highest for each recommended item (ExplainConfig.exact_candidates); the others
  keep that estimate and rank after them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from edgerec.errors import EdgerecError
from edgerec.runtime.config import ExplainConfig, FoldInConfig
from edgerec.runtime.foldin import ItemSide

ITEM_SIDE = "item_side.safetensors"  # in a bundle exported with explain: the folded item side, fp16


def item_side_tensors(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The folded item side of a NeuMF state dict as fp16 tensors (what a bundle ships for explanations)."""
    from edgerec.runtime.fold import fold

    f = fold({k: np.asarray(v, dtype=np.float32) for k, v in weights.items()})
    out = {"G": f.G, "A": f.A, "Wu": f.Wu, "wm": f.wm, "b": np.asarray([f.b])}
    for n, (w, b) in enumerate(f.layers):
        out[f"layer{n}.weight"], out[f"layer{n}.bias"] = w, b
    return {k: np.ascontiguousarray(v, dtype=np.float16) for k, v in out.items()}


def item_side_from_tensors(t: dict[str, np.ndarray], where: str) -> ItemSide:
    try:
        n = sum(1 for k in t if k.endswith(".weight"))
        layers = tuple(
            (t[f"layer{k}.weight"].astype(np.float64), t[f"layer{k}.bias"].astype(np.float64)) for k in range(n)
        )
        f64 = {k: t[k].astype(np.float64) for k in ("G", "A", "Wu", "wm", "b")}
    except KeyError as e:
        raise EdgerecError(f"{where}: missing tensor {e}") from None
    return ItemSide(f64["G"], f64["A"], f64["Wu"], layers, f64["wm"], float(f64["b"][0]))


@dataclass(frozen=True)
class Reason:
    item: int  # dense index of the history item
    weight: float  # similarity, or the logit drop when it is removed


def batched_logits(side: ItemSide, P: np.ndarray, Q: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, list]:
    """[B, m] logits of B users (P [B, g], Q [B, d]) for the same items [m], and the MLP pre-activations."""
    z = side.A[items] + (Q @ side.Wu.T)[:, None, :]  # [B, m, h0]
    acts = [z]
    h = np.maximum(z, 0)
    for w, b in side.layers:
        z = h @ w.T + b
        acts.append(z)
        h = np.maximum(z, 0)
    return P @ side.G[items].T + h @ side.wm + side.b, acts


def backward(side: ItemSide, dl: np.ndarray, acts: list) -> np.ndarray:
    """d/d(first MLP pre-activation) [..., m, h0] of a loss whose gradient by the logits is dl [..., m]."""
    dh = dl[..., None] * side.wm
    for (w, _), z in zip(reversed(side.layers), reversed(acts[1:]), strict=True):
        dh = (dh * (z > 0)) @ w
    return dh * (acts[0] > 0)


def logit_gradients(side: ItemSide, p: np.ndarray, q: np.ndarray, items: np.ndarray) -> np.ndarray:
    """[m, g + d] gradient of each item's logit by the user's vectors (p, q)."""
    _, acts = batched_logits(side, p[None], q[None], items)
    return np.concatenate([side.G[items], backward(side, np.ones((1, len(items))), acts)[0] @ side.Wu], axis=1)


class Fit(NamedTuple):
    P: np.ndarray  # [B, g]
    Q: np.ndarray  # [B, d]
    estimate: np.ndarray  # [K, L] first-order logit drops of the K traced items (variant 0); K = 0 untraced


def fold_in_variants(
    side: ItemSide,
    history: np.ndarray,
    mask: np.ndarray,
    cfg: FoldInConfig = FoldInConfig(),
    max_negatives: int | None = None,
    traced: np.ndarray | None = None,
) -> Fit:
    """User vectors fitted for B variants of one history: variant b's positives are history[mask[b]] ([B, L] bool).

    cfg.steps full-batch Adam steps on the weighted mean BCE plus cfg.l2 / 2 |(p, q)|^2, from the seeded start.
    Every variant sees the same negatives at every step, drawn from outside the whole history, so two variants
    differ only by the positives their masks remove. A step draws L * cfg.negatives negatives, or `max_negatives`
    when that is fewer, weighted so that together they weigh as much as L * cfg.negatives positives.

    `traced` (items [K]): also estimates, for variant 0, how much each traced item's logit would drop if history
    item k were left out, to first order along the fit: sum over the steps t of
    lr * grad_theta logit_i(theta_t) . D_t . (-grad_theta w_k loss_k(theta_t)), where D_t is Adam's per-coordinate
    step scale 1 / (sqrt(v_hat_t) + eps) (what removing item k's gradient from step t moves, ignoring its effect on
    the later steps' gradients and on Adam's moments).
    """
    B, L = mask.shape
    rng = np.random.default_rng(cfg.seed)
    P, Q = np.tile(rng.normal(0, 0.01, side.g), (B, 1)), np.tile(rng.normal(0, 0.01, side.d), (B, 1))
    mP, vP, mQ, vQ = (np.zeros_like(x) for x in (P, P, Q, Q))
    outside = np.setdiff1d(np.arange(side.n_items), history)
    n_neg = L * cfg.negatives if max_negatives is None else min(L * cfg.negatives, max_negatives)
    w = np.concatenate([mask.astype(np.float64), np.full((B, n_neg), L * cfg.negatives / n_neg)], axis=1)
    w /= w.sum(axis=1, keepdims=True)  # [B, m] weight of each term
    labels = np.concatenate([np.ones(L), np.zeros(n_neg)])
    estimate = np.zeros((0 if traced is None else len(traced), L))
    for t in range(1, cfg.steps + 1):
        items = np.concatenate([history, outside[rng.integers(0, len(outside), n_neg)]])  # [m], every variant's
        logit, acts = batched_logits(side, P, Q, items)
        dl = (1 / (1 + np.exp(-logit)) - labels) * w  # d weighted BCE / d logit
        dz = backward(side, dl, acts)  # [B, m, h0]
        if traced is not None:
            J = logit_gradients(side, P[0], Q[0], traced)  # [K, g + d] at theta_t
            per_item = np.concatenate([dl[0, :L, None] * side.G[history], dz[0, :L] @ side.Wu], axis=1)
        gP, gQ = dl @ side.G[items], dz.sum(axis=1) @ side.Wu
        for x, g, m, v in ((P, gP + cfg.l2 * P, mP, vP), (Q, gQ + cfg.l2 * Q, mQ, vQ)):
            m *= 0.9
            m += 0.1 * g
            v *= 0.999
            v += 0.001 * g * g
            x -= cfg.lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        if traced is not None:
            D = 1 / (np.sqrt(np.concatenate([vP[0], vQ[0]]) / (1 - 0.999**t)) + 1e-8)
            estimate -= cfg.lr * (J * D) @ per_item.T
    return Fit(P, Q, estimate)


class Exact(NamedTuple):
    weights: np.ndarray  # [K, L]: the logit drop of a re-fit without the item, or its first-order estimate
    refit: np.ndarray  # [L] bool: which history items were re-fitted


class Explainer:
    """Reasons for recommendations, over a model's folded item side."""

    def __init__(self, side: ItemSide) -> None:
        self.side = side
        emb = np.concatenate([side.G, side.A], axis=1)
        self.unit = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)

    def _history(self, history: np.ndarray | list[int]) -> np.ndarray:
        h = np.unique(np.asarray(history, dtype=np.int64))
        if h.size < 2:
            raise EdgerecError("an explanation needs a history of at least two items (one to keep, one to weigh)")
        if h.min() < 0 or h.max() >= self.side.n_items:
            raise EdgerecError(f"history items must lie in 0..{self.side.n_items - 1}")
        return h

    def _items(self, items: np.ndarray | list[int]) -> np.ndarray:
        i = np.asarray(items, dtype=np.int64).ravel()
        if i.size == 0 or i.min() < 0 or i.max() >= self.side.n_items:
            raise EdgerecError(f"recommended items must lie in 0..{self.side.n_items - 1}")
        return i

    def similarity(self, history: np.ndarray | list[int], items: np.ndarray | list[int]) -> np.ndarray:
        """[K, L] cosine similarity of each recommended item to each history item (history sorted, unique)."""
        h, i = self._history(history), self._items(items)
        return self.unit[i] @ self.unit[h].T

    def exact(
        self, history: np.ndarray | list[int], items: np.ndarray | list[int], cfg: ExplainConfig = ExplainConfig()
    ) -> Exact:
        """Leave-one-out weights of the history items (sorted, unique; L of them) for K recommended items.

        The user is fitted from the whole history (`fold_in_variants` with cfg.foldin, at most cfg.exact_negatives
        negatives a step), and again without each re-fitted history item k, all fits in one batch over the same
        negatives; weights[i, k] is the logit of item i in the first fit minus that in the fit without k. When
        L <= cfg.exact_candidates every history item is re-fitted. Otherwise the first fit, run alone, also traces
        the first-order estimate of these drops (`fold_in_variants`, `traced`), and the items re-fitted are, for
        each recommended item, the cfg.exact_candidates with the highest estimate for it (ties to the earlier
        history item), all K lists together; every other item's weight is its estimate, and `refit` says which.
        Deterministic. Cost: at most min(L, K * cfg.exact_candidates) + 2 fits of cfg.foldin.steps steps over
        L + min(L * cfg.foldin.negatives, cfg.exact_negatives) items, batched: linear in L for a given K.
        """
        h, i = self._history(history), self._items(items)
        L, C = len(h), cfg.exact_candidates
        if L <= C:
            weights, refit = np.zeros((len(i), L)), np.ones(L, dtype=bool)
        else:
            whole = np.ones((1, L), dtype=bool)
            weights = fold_in_variants(self.side, h, whole, cfg.foldin, cfg.exact_negatives, traced=i).estimate
            refit = np.zeros(L, dtype=bool)
            refit[np.argsort(-weights, axis=1, kind="stable")[:, :C]] = True
        left_out = np.flatnonzero(refit)
        mask = np.ones((len(left_out) + 1, L), dtype=bool)
        mask[np.arange(1, len(left_out) + 1), left_out] = False  # variant 0: the whole history; then one out each
        P, Q, _ = fold_in_variants(self.side, h, mask, cfg.foldin, cfg.exact_negatives)
        logits = batched_logits(self.side, P, Q, i)[0]  # [1 + R, K]
        weights[:, left_out] = (logits[0][None, :] - logits[1:]).T
        return Exact(weights, refit)

    def explain(
        self, history: np.ndarray | list[int], items: np.ndarray | list[int], cfg: ExplainConfig = ExplainConfig()
    ) -> list[list[Reason]]:
        """The top cfg.top reasons (history items, by weight) for each recommended item; for `exact`, re-fitted
        items rank before estimated ones."""
        h = self._history(history)
        if cfg.method == "similarity":
            weights, estimated = self.similarity(h, items), np.zeros(len(h), dtype=bool)
        else:
            weights, refit = self.exact(h, items, cfg)
            estimated = ~refit
        out = []
        for row in weights:
            order = np.lexsort((-row, estimated))[: cfg.top]  # the re-fitted first, each group by weight (stable)
            out.append([Reason(int(h[k]), float(row[k])) for k in order])
        return out


def _checkpoint_user_features(
    folder: Path, config: dict[str, Any], weights: dict[str, np.ndarray]
) -> Callable[[Any], tuple[np.ndarray, np.ndarray, dict[str, int]]]:
    """A feature checkpoint's user feature path in numpy (features.json hash-checked against config.json)."""
    from edgerec.data.features import Encoder, FeaturePath, checkpoint_feature_record

    try:
        record = checkpoint_feature_record(folder, config)["encoders"]["user"]
    except (KeyError, TypeError):
        raise EdgerecError(f"{folder}: features.json has no user encoder") from None
    encoder = Encoder.from_json(record, f"{folder} (user)")
    path = FeaturePath.of(weights, encoder)

    def features(attributes: Any) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
        encoded, counts = encoder.encode_attributes(attributes, "user attributes")
        ug, um = path.vectors(encoded)
        return ug[0], um[0], dict(counts)

    return features


@dataclass(frozen=True)
class NumpyModel:
    """A checkpoint read without torch: its folded item side, user tables and id maps (weights hash-checked)."""

    side: ItemSide
    user_gmf: np.ndarray  # [n_users, g]
    user_mlp: np.ndarray  # [n_users, d]
    user_ids: np.ndarray
    item_ids: np.ndarray
    # a model with user features: raw attributes -> (user_gmf [g], user_mlp [d], counts of missing / unknown / invalid)
    user_features: Callable[[Any], tuple[np.ndarray, np.ndarray, dict[str, int]]] | None = None

    def user_from_features(self, attributes: Any) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
        """A new user's vectors from their attributes ({column: value}), and the counts of missing, unknown and
        invalid values among them."""
        if self.user_features is None:
            raise EdgerecError(
                "the model has no user features: train it with --user-features (a bundle: export such a model)"
            )
        return self.user_features(attributes)

    @classmethod
    def from_checkpoint(cls, folder: str | Path) -> NumpyModel:
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        from edgerec.data.features import checkpoint_features, fold_weights
        from edgerec.data.interactions import load_id_maps
        from edgerec.data.ratings import require_implicit
        from edgerec.io import read_json, sha256_file

        folder = Path(folder)
        weights, config = folder / "model.safetensors", folder / "config.json"
        if not (weights.is_file() and config.is_file()):
            raise EdgerecError(f"{folder}: not a checkpoint folder (expected config.json and model.safetensors)")
        recorded = read_json(config)
        require_implicit(str(recorded.get("objective", "implicit")), str(folder), "recommend (fold-in, explanations)")
        if sha256_file(weights) != recorded.get("weights_sha256"):
            raise EdgerecError(f"{weights}: sha256 does not match config.json: the file was changed or is corrupt")
        try:
            w = {k: v.astype(np.float64) for k, v in load_file(str(weights)).items()}
        except (SafetensorError, OSError) as e:
            raise EdgerecError(f"{weights}: unreadable safetensors file ({e})") from None
        encoded = checkpoint_features(folder, recorded)
        features = None
        if encoded is not None:  # a feature model: its id rows with the feature encodings folded in
            if "user" in encoded:
                features = _checkpoint_user_features(folder, recorded, w)
            w = fold_weights(w, encoded)
        if not {"gmf_user.weight", "mlp_user.weight", "mlp.0.weight"} <= set(w):
            raise EdgerecError(f"{folder}: explanations need a NeuMF (GMF and MLP towers)")
        maps = load_id_maps(folder / "id_maps.json")
        return cls(ItemSide.of(w), w["gmf_user.weight"], w["mlp_user.weight"], *maps, features)

    @classmethod
    def from_bundle(cls, folder: str | Path) -> NumpyModel:
        """A phone bundle exported with explain: its item side, and the server-side user vectors when present."""
        from safetensors.numpy import load_file

        from edgerec.data.interactions import load_id_maps
        from edgerec.manifest import read_manifest, verify_files

        folder = Path(folder)
        manifest = read_manifest(folder, verify=False)
        if "exact" not in manifest.get("explainers", []) or not manifest.get("item_side"):
            raise EdgerecError(
                f"{folder}: this bundle was exported without explanations; export it with --explain "
                "(or `explain: true` in its profile)"
            )
        verify_files(folder, manifest, [manifest["item_side"], "id_maps.json"])  # a phone has no user_vectors.npy
        side = item_side_from_tensors(load_file(str(folder / manifest["item_side"])), str(folder))
        g, d = side.g, side.d
        vectors = np.zeros((0, g + d))
        name = manifest.get("user_vectors")
        if name and (folder / name).is_file():
            vectors = np.load(folder / name, allow_pickle=False).astype(np.float64)
        users, items = load_id_maps(folder / "id_maps.json")
        users = users if len(vectors) else np.asarray([], dtype=str)  # a phone knows no other user
        features = None
        if manifest.get("user_features"):  # the bundle's user_features signature, in its runtime

            def features(attributes: Any) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
                from edgerec.runtime import load_bundle

                bundle = load_bundle(folder)
                indices, weights, counts = bundle.encode_user(attributes)
                ug, um = bundle.user_features(indices, weights)
                return ug.astype(np.float64), um.astype(np.float64), counts

        return cls(side, vectors[:, :g], vectors[:, g:], users, items, features)

    @classmethod
    def load(cls, folder: str | Path) -> NumpyModel:
        """A checkpoint folder, or a phone bundle exported with explain."""
        return cls.from_bundle(folder) if (Path(folder) / "manifest.json").is_file() else cls.from_checkpoint(folder)

    def index(self, ids: list[str], what: str) -> np.ndarray:
        """Dense indices of original ids (compared as text); an unknown id is a one-line error."""
        from edgerec.data.align import index_of

        table = self.user_ids if what == "user" else self.item_ids
        found = index_of(table, ids)
        if (found < 0).any():
            unknown = ids[int(np.flatnonzero(found < 0)[0])]
            raise EdgerecError(f"unknown {what} id {unknown!r} (the model has {len(table)} {what}s)")
        return found

    def top_k(self, p: np.ndarray, q: np.ndarray, k: int, exclude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not 1 <= k <= self.side.n_items - len(exclude):
            raise EdgerecError(f"k must lie in 1..{self.side.n_items - len(exclude)} (the catalog minus the history)")
        s = self.side.logits(p, q, np.arange(self.side.n_items))[0]
        s[exclude] = -np.inf
        top = np.argsort(-s, kind="stable")[:k]
        return top, s[top]
