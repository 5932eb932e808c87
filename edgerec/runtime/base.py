"""The scorer interface shared by every runtime: validated ids in, float32 scores out, plus catalog top-K."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgerec.errors import EdgerecError
from edgerec.metrics import top_k


def check_ids(name: str, ids: Any, n: int) -> np.ndarray:
    """ids as a 1-D int32 array, or a one-line error: a Gather with an out-of-range index reads garbage or crashes
    the runtime, so nothing unchecked reaches it."""
    arr = np.asarray(ids)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise EdgerecError(f"{name} must be integer ids; got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise EdgerecError(f"{name} must be a 1-D array of ids; got shape {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        bad = arr[(arr < 0) | (arr >= n)][0]
        raise EdgerecError(f"{name} must lie in 0..{n - 1} (dense indices; map original ids first); got {bad}")
    return arr.astype(np.int32, copy=False)


class Scorer:
    """score(users, items) -> [B] float32 logits; subclasses implement _run on checked int32 arrays."""

    def __init__(self, folder: Path, manifest: dict[str, Any], threads: int, runtime: str) -> None:
        self.folder, self.manifest, self.threads, self.runtime = folder, manifest, threads, runtime
        try:
            self.n_users, self.n_items = int(manifest["n_users"]), int(manifest["n_items"])
            self.model_path = folder / str(manifest["model_file"])
        except (KeyError, TypeError, ValueError):
            raise EdgerecError(f"{folder}/manifest.json: missing n_users, n_items or model_file") from None

    def score(self, users: Any, items: Any) -> np.ndarray:
        if np.size(users) == 0 or np.size(items) == 0:
            raise EdgerecError("empty batch: pass at least one (user, item) pair")
        u, i = check_ids("users", users, self.n_users), check_ids("items", items, self.n_items)
        if len(u) != len(i):
            raise EdgerecError(f"users and items must have the same length; got {len(u)} and {len(i)}")
        out = np.asarray(self._run(u, i), dtype=np.float32).reshape(-1)
        if out.shape != (len(u),):
            raise EdgerecError(f"{self.model_path}: runtime returned {out.shape[0]} scores for {len(u)} pairs")
        return out

    __call__ = score  # a Scorer is a metrics.ScoreFn

    def top_k(self, user: int, k: int = 10, exclude: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """The user's k best items over the whole catalog (minus `exclude`): (item indices, scores), best first."""
        if not 1 <= k <= self.n_items:
            raise EdgerecError(f"k must lie in 1..{self.n_items}; got {k}")
        items = np.arange(self.n_items, dtype=np.int32)
        scores = self.score(np.full(self.n_items, user, dtype=np.int64), items).astype(np.float64)
        if exclude is not None:
            scores[check_ids("exclude", exclude, self.n_items)] = -np.inf
        best = top_k(scores[None, :], k)[0]
        return best, scores[best].astype(np.float32)

    def _run(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class BucketedScorer(Scorer):
    """For runtimes with fixed batch sizes: a request is cut into the largest bucket, and the rest padded up to the
    smallest bucket that holds it (padding pairs are (0, 0), their scores dropped)."""

    def __init__(self, folder: Path, manifest: dict[str, Any], threads: int, runtime: str) -> None:
        super().__init__(folder, manifest, threads, runtime)
        try:
            self.buckets = sorted(int(b) for b in manifest["buckets"])
        except (KeyError, TypeError, ValueError):
            raise EdgerecError(f"{folder}/manifest.json: missing or malformed 'buckets'") from None
        if not self.buckets or self.buckets[0] < 1:
            raise EdgerecError(f"{folder}/manifest.json: 'buckets' must be positive batch sizes")

    def _run(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        out = np.empty(len(users), dtype=np.float32)
        big, s = self.buckets[-1], 0
        while s < len(users):
            n = min(big, len(users) - s)
            b = next(b for b in self.buckets if b >= n)
            u, i = np.zeros(b, np.int32), np.zeros(b, np.int32)
            u[:n], i[:n] = users[s : s + n], items[s : s + n]
            out[s : s + n] = self._run_bucket(b, u, i)[:n]
            s += n
        return out

    def _run_bucket(self, bucket: int, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        raise NotImplementedError
