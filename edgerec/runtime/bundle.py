"""The phone bundle's scorer: recommend(user vectors) over the whole catalog, in LiteRT.

score(users, items) (for verification and benchmarks) looks each user's vectors up in the server-side
user_vectors.npy and reads the items' scores from recommend's all-scores output: the same call the app makes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgerec.errors import EdgerecError
from edgerec.runtime.base import Scorer, check_ids
from edgerec.runtime.tflite import interpreter_class


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
            self.interp = Interpreter(model_path=str(self.model_path), num_threads=threads)
            self.runner = self.interp.get_signature_runner("recommend")
        except (ValueError, RuntimeError) as e:
            raise EdgerecError(f"{self.model_path}: {runtime} cannot load it ({str(e).splitlines()[0]})") from None
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

    def recommend(self, user_gmf: Any, user_mlp: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(top-K item indices, their scores, every item's score) for one user's two vectors."""
        out = self.runner(
            user_gmf=self._vector("user_gmf", user_gmf, self.g), user_mlp=self._vector("user_mlp", user_mlp, self.d)
        )
        return out["output_0"], out["output_1"], out["output_2"]

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
            scores = self.recommend(*self.user(int(users[idx[0]])))[2]
            out[idx] = scores[items[idx]]
        return out

    def top_k(self, user: int, k: int = 10, exclude: Any = None) -> tuple[np.ndarray, np.ndarray]:
        if k == self.k and exclude is None:  # the in-graph top-K, as the app calls it
            items, scores, _ = self.recommend(*self.user(user))
            return items.astype(np.int64), scores
        return super().top_k(user, k, exclude)
