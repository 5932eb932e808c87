"""The phone bundle's scorer: recommend(user vectors) over the whole catalog and, when the bundle has the `score`
signature, score / re-rank a given list of items, in LiteRT.

score(users, items) (for verification and benchmarks) looks each user's vectors up in the server-side
user_vectors.npy; a user's items go through the `score` signature when there are at most C of them (C = the
bundle's candidate-list length), otherwise they are read from recommend's all-scores output: the calls the app
makes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgerec.errors import EdgerecError
from edgerec.metrics import top_k
from edgerec.runtime.base import Scorer, check_ids
from edgerec.runtime.tflite import interpreter_class

if TYPE_CHECKING:
    from edgerec.data.features import Encoder


class BundleScorer(Scorer):
    def __init__(self, folder: Path, manifest: dict[str, Any], threads: int, runtime: str) -> None:
        super().__init__(folder, manifest, threads, runtime)
        try:
            dims = manifest["user_vector_dims"]
            self.g, self.d, self.k = int(dims["gmf"]), int(dims["mlp"]), int(manifest["k"])
        except (KeyError, TypeError, ValueError):
            raise EdgerecError(f"{folder}/manifest.json: missing user_vector_dims or k") from None
        Interpreter = interpreter_class(runtime)
        try:
            self.candidates = int(manifest.get("candidates") or 0)
            self.interp = Interpreter(model_path=str(self.model_path), num_threads=threads)
            self.runner = self.interp.get_signature_runner("recommend")
            self.score_runner = self.interp.get_signature_runner("score") if self.candidates else None
            # bundles exported before the two-stage path have score but no retrieve
            has_retrieve = "retrieve" in self.interp.get_signature_list()
            self.retrieve_runner = self.interp.get_signature_runner("retrieve") if has_retrieve else None
            length = self.score_runner.get_input_details()["items"]["shape"].tolist() if self.score_runner else [0]
        except (TypeError, ValueError, RuntimeError, KeyError) as e:
            raise EdgerecError(f"{self.model_path}: {runtime} cannot load it ({str(e).splitlines()[0]})") from None
        if length != [max(self.candidates, 0)]:
            raise EdgerecError(
                f"{folder}/manifest.json: candidates {self.candidates} does not match the model's {length}"
            )
        # each signature's output names, in the manifest's order (bundles of every version name them there)
        try:
            self.outputs = {sig: list(spec["outputs"]) for sig, spec in manifest["signatures"].items()}
        except (KeyError, TypeError, AttributeError):
            raise EdgerecError(f"{folder}/manifest.json: missing or malformed signatures") from None
        try:
            self.shortlist = int((manifest.get("shortlist") or {}).get("size") or 0)
        except (AttributeError, TypeError, ValueError):
            raise EdgerecError(f"{folder}/manifest.json: malformed shortlist") from None
        if self.shortlist and not self.candidates:
            raise EdgerecError(f"{folder}/manifest.json: a shortlist bundle without the score signature")
        self.max_history = int(manifest.get("max_history") or 0)
        self.fold_in_runner = self.explain_runner = self.fold_in_from_runner = None
        if {"fold_in", "explain"} <= set(self.outputs):
            self.fold_in_runner = self.interp.get_signature_runner("fold_in")
            self.explain_runner = self.interp.get_signature_runner("explain")
        if "fold_in_from" in self.outputs:
            self.fold_in_from_runner = self.interp.get_signature_runner("fold_in_from")
        self.user_encoder: Encoder | None = None
        self.user_features_runner = None
        if "user_features" in self.outputs:
            self.user_features_runner = self.interp.get_signature_runner("user_features")
            self.user_encoder = read_user_encoder(folder, manifest)
        self.vectors = None
        name = manifest.get("user_vectors")
        if name and (folder / name).is_file():  # server side only; a phone has just its own user's vectors
            self.vectors = np.load(folder / name, allow_pickle=False)
            if self.vectors.shape != (self.n_users, self.g + self.d):
                raise EdgerecError(f"{folder / name}: shape {self.vectors.shape} does not match the manifest")

    def _vector(self, name: str, v: Any, dim: int) -> np.ndarray:
        arr = np.asarray(v)
        if arr.dtype.kind not in "fiu" or arr.dtype == bool:
            raise EdgerecError(f"{name} must be a float vector; got dtype {arr.dtype}")
        if arr.size != dim:
            raise EdgerecError(f"{name} must have {dim} values; got {arr.size}")
        arr = arr.astype(np.float32).reshape(1, dim)
        if not np.isfinite(arr).all():
            raise EdgerecError(f"{name} contains NaN or infinite values")
        return arr

    def _vectors(self, user_gmf: Any, user_mlp: Any) -> tuple[np.ndarray, np.ndarray]:
        return self._vector("user_gmf", user_gmf, self.g), self._vector("user_mlp", user_mlp, self.d)

    def recommend(self, user_gmf: Any, user_mlp: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(top-K item indices, their scores, every item's score) for one user's two vectors; a shortlist bundle's
        recommend scores its shortlist only, and gives None for the third (`shortlisted` reads the shortlist)."""
        top, top_scores, *rest = self._named("recommend", self._recommend(user_gmf, user_mlp))
        return top, top_scores, None if self.shortlist else rest[0]

    def shortlisted(self, user_gmf: Any, user_mlp: Any) -> tuple[np.ndarray, np.ndarray]:
        """A shortlist bundle's shortlist: (the S item indices, their NeuMF scores), by recommend."""
        if not self.shortlist:
            raise EdgerecError(f"{self.folder}: the bundle's recommend ranks the whole catalog (no shortlist)")
        out = self._recommend(user_gmf, user_mlp)
        return out["shortlist"].astype(np.int64), out["shortlist_scores"]

    def _recommend(self, user_gmf: Any, user_mlp: Any) -> dict[str, np.ndarray]:
        ug, um = self._vectors(user_gmf, user_mlp)
        return self.runner(user_gmf=ug, user_mlp=um)

    def score_items(self, user_gmf: Any, user_mlp: Any, items: Any) -> np.ndarray:
        """One user's scores (logits) of the given item indices, in their order; any number of items (split into
        the bundle's candidate-list length, or read from the catalog scores when the bundle has no `score`)."""
        ug, um = self._vectors(user_gmf, user_mlp)
        idx = self._items(items)
        if self.score_runner is None:
            return self._named("recommend", self.runner(user_gmf=ug, user_mlp=um))[2][idx]  # no shortlist here
        chunks = [idx[s : s + self.candidates] for s in range(0, len(idx), self.candidates)]
        return np.concatenate([self._score(ug, um, chunk)[0][: len(chunk)] for chunk in chunks])

    def recommend_from(self, user_gmf: Any, user_mlp: Any, items: Any) -> tuple[np.ndarray, np.ndarray]:
        """The best min(K, len(items)) of the given items: (item indices, their scores), best first. A list of at
        most C items is one call of the `score` signature, top-K in the graph (what the app calls)."""
        idx = self._items(items)
        if self.score_runner is not None and len(idx) <= self.candidates:
            _, best, best_scores = self._score(*self._vectors(user_gmf, user_mlp), idx)
            n = min(self.k, len(idx))
            return best[:n].astype(np.int64), best_scores[:n]
        scores = self.score_items(user_gmf, user_mlp, idx).astype(np.float64)
        best = top_k(scores[None, :], min(self.k, len(idx)))[0]
        return idx[best].astype(np.int64), scores[best].astype(np.float32)

    def retrieve(self, user_gmf: Any) -> tuple[np.ndarray, np.ndarray]:
        """The first stage: the C items whose GMF half scores highest for this user (their indices, the scores)."""
        if self.retrieve_runner is None:
            raise EdgerecError(f"{self.folder}: the bundle has no retrieve signature (export it with --candidates C)")
        items, scores = self._named(
            "retrieve", self.retrieve_runner(user_gmf=self._vector("user_gmf", user_gmf, self.g))
        )
        return items.astype(np.int64), scores

    def two_stage(self, user_gmf: Any, user_mlp: Any) -> tuple[np.ndarray, np.ndarray]:
        """Top-K by the two-stage path: retrieve C candidates by the GMF half, re-rank them with the whole NeuMF
        (the score signature): two calls instead of the whole catalog through the MLP."""
        return self.recommend_from(user_gmf, user_mlp, self.retrieve(user_gmf)[0])

    def _score(self, ug: np.ndarray, um: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, ...]:
        """One call of the score signature on at most C checked item indices, padded with -1: (scores, top-K
        items of the list, their scores)."""
        part = np.full(self.candidates, -1, dtype=np.int32)
        part[: len(idx)] = idx
        return self._named("score", self.score_runner(user_gmf=ug, user_mlp=um, items=part))

    def _named(self, signature: str, out: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        return tuple(out[name] for name in self.outputs[signature])

    def _history(self, history: Any) -> tuple[np.ndarray, np.ndarray]:
        """A history of item indices as the signatures take it: (history [H] int32 padded, mask [H] float32)."""
        if self.fold_in_runner is None:
            raise EdgerecError(
                f"{self.folder}: the bundle has no fold_in / explain signatures (export it with --explain)"
            )
        if np.size(history) == 0:
            raise EdgerecError("the history is empty: pass at least one item index")
        h = check_ids("history", history, self.n_items)
        if h.size > self.max_history:
            raise EdgerecError(f"the history has {h.size} items; this bundle takes at most {self.max_history}")
        padded = np.zeros(self.max_history, dtype=np.int32)
        mask = np.zeros(self.max_history, dtype=np.float32)
        padded[: h.size], mask[: h.size] = h, 1.0
        return padded, mask

    def fold_in(self, history: Any, start: tuple[Any, Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The vectors (user_gmf [g], user_mlp [d]) of a user the model never saw, from their items, computed by the
        bundle's `fold_in` signature (what an app calls: the history stays on the device); with `start` (e.g. the
        vectors of user_from_features) by `fold_in_from`, fitted from those vectors."""
        padded, mask = self._history(history)
        if start is None:
            ug, um = self._named("fold_in", self.fold_in_runner(history=padded, history_mask=mask))
        elif self.fold_in_from_runner is None:
            raise EdgerecError(
                f"{self.folder}: the bundle has no fold_in_from signature (a model with user features, exported "
                "with --explain, has it)"
            )
        else:
            sg, sm = self._vectors(*start)
            out = self.fold_in_from_runner(history=padded, history_mask=mask, user_gmf=sg, user_mlp=sm)
            ug, um = self._named("fold_in_from", out)
        return ug.reshape(-1), um.reshape(-1)

    def encode_user(self, attributes: Any) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
        """A user's raw attributes ({column: value}) as the user_features signature takes them: (feature_indices
        [W] int32, feature_weights [W] float32, counts of missing / unknown / invalid values), encoded by the
        bundle's own user_encoder.json (edgerec.data.features.Encoder, as the training rows were)."""
        if self.user_encoder is None:
            raise EdgerecError(
                f"{self.folder}: the bundle has no user_features signature (export a model trained with user features)"
            )
        encoded, counts = self.user_encoder.encode_attributes(attributes, "user attributes")
        return encoded.indices[0].astype(np.int32), encoded.weights[0], dict(counts)

    def user_from_features(self, attributes: Any) -> tuple[np.ndarray, np.ndarray]:
        """The vectors (user_gmf [g], user_mlp [d]) of a user known by their attributes alone ({column: value};
        a value the model never saw counts as unknown), by the bundle's `user_features` signature."""
        indices, weights, _ = self.encode_user(attributes)
        return self.user_features(indices, weights)

    def user_features(self, feature_indices: Any, feature_weights: Any) -> tuple[np.ndarray, np.ndarray]:
        """The `user_features` signature on encoded attributes: (user_gmf [g], user_mlp [d])."""
        if self.user_features_runner is None or self.user_encoder is None:
            raise EdgerecError(f"{self.folder}: the bundle has no user_features signature")
        width = self.user_encoder.width
        idx = check_ids("feature_indices", feature_indices, self.user_encoder.size)
        w = np.asarray(feature_weights, dtype=np.float32).reshape(-1)
        if idx.size != width or w.size != width:
            raise EdgerecError(f"feature_indices and feature_weights take {width} values; got {idx.size}, {w.size}")
        out = self.user_features_runner(feature_indices=idx.astype(np.int32), feature_weights=w)
        ug, um = self._named("user_features", out)
        return ug.reshape(-1), um.reshape(-1)

    def explain(self, user_gmf: Any, user_mlp: Any, history: Any, items: Any) -> tuple[np.ndarray, np.ndarray]:
        """For each of the K recommended `items`, the history items behind it and their weights ([K, R] each),
        by the bundle's `explain` signature."""
        ug, um = self._vectors(user_gmf, user_mlp)
        padded, mask = self._history(history)
        rec = check_ids("items", items, self.n_items)
        if rec.size != self.k:
            raise EdgerecError(f"explain takes the {self.k} recommended items; got {rec.size}")
        out = self.explain_runner(user_gmf=ug, user_mlp=um, history=padded, history_mask=mask, items=rec)
        reasons, weights = self._named("explain", out)
        return reasons.astype(np.int64), weights

    def _items(self, items: Any) -> np.ndarray:
        if np.size(items) == 0:
            raise EdgerecError("the item list is empty: pass at least one item index")
        return check_ids("items", items, self.n_items)

    def user(self, user: int) -> tuple[np.ndarray, np.ndarray]:
        if self.vectors is None:
            raise EdgerecError(f"{self.folder}: no user_vectors.npy (server-side file); pass the user's vectors")
        row = self.vectors[int(check_ids("user", np.array([user]), self.n_users)[0])]
        return row[: self.g], row[self.g :]

    def _run(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        out = np.empty(len(users), dtype=np.float32)
        order = np.argsort(users, kind="stable")
        bounds = np.flatnonzero(np.diff(users[order])) + 1
        for idx in np.split(order, bounds):
            vectors = self.user(int(users[idx[0]]))
            small = len(idx) <= self.candidates or self.shortlist  # a shortlist bundle scores every item by score
            every = None if small else self.recommend(*vectors)[2]
            out[idx] = self.score_items(*vectors, items[idx]) if every is None else every[items[idx]]
        return out

    def top_k(self, user: int, k: int = 10, exclude: Any = None) -> tuple[np.ndarray, np.ndarray]:
        if k == self.k and exclude is None:  # the in-graph top-K, as the app calls it
            items, scores, _ = self.recommend(*self.user(user))
            return items.astype(np.int64), scores
        return super().top_k(user, k, exclude)


def read_user_encoder(folder: Path, manifest: dict[str, Any]) -> Encoder:
    """The bundle's user encoder (its file hash-checked against the manifest), of the signature's input width."""
    from edgerec.data.features import Encoder
    from edgerec.io import parse_json, read_bytes
    from edgerec.manifest import verify_files

    try:
        name, width = str(manifest["user_features"]["encoder"]), int(manifest["user_features"]["width"])
    except (KeyError, TypeError, ValueError):
        raise EdgerecError(f"{folder}/manifest.json: missing or malformed user_features") from None
    verify_files(folder, manifest, [name])
    encoder = Encoder.from_json(parse_json(read_bytes(folder / name), folder / name), str(folder / name))
    if encoder.width != width or encoder.side != "user":
        raise EdgerecError(f"{folder / name}: not the user encoder of width {width} the manifest names")
    return encoder


SCORERS = {"ai-edge-litert": BundleScorer}
