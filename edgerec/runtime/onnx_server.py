"""onnxruntime scorer for the server model (target onnx-server): users in, the catalog's top-K (and every item's
score) out. score(users, items) reads the pairs from the catalog scores of each distinct user."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgerec.errors import EdgerecError
from edgerec.runtime.base import Scorer, check_ids
from edgerec.runtime.onnx import session

USERS_PER_CALL = 256  # bounds one call's [users, catalog] scores (3.8 MB for ML-1M)


class ServerScorer(Scorer):
    def __init__(self, folder: Path, manifest: dict[str, Any], threads: int, runtime: str) -> None:
        super().__init__(folder, manifest, threads, runtime)
        self.session = session(self.model_path, threads)
        if [x.name for x in self.session.get_inputs()] != ["users"]:
            raise EdgerecError(f"{self.model_path}: not a server model (expected one input, users)")
        self.k = int(manifest.get("k", 10))

    def recommend(self, users: Any) -> tuple[np.ndarray, np.ndarray]:
        """(top_items [B, K], top_scores [B, K]) for dense user indices, as the server answers a request."""
        u = check_ids("users", users, self.n_users).astype(np.int64)
        if u.size == 0:
            raise EdgerecError("empty request: pass at least one user")
        items, scores = self.session.run(["top_items", "top_scores"], {"users": u})
        return items, scores

    def _run(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        distinct, where = np.unique(users, return_inverse=True)
        out = np.empty(len(users), dtype=np.float32)
        for s in range(0, len(distinct), USERS_PER_CALL):
            block = distinct[s : s + USERS_PER_CALL].astype(np.int64)
            scores = self.session.run(["scores"], {"users": block})[0]  # [b, I]
            rows = (where >= s) & (where < s + len(block))
            out[rows] = scores[where[rows] - s, items[rows]]
        return out

    def top_k(self, user: int, k: int = 10, exclude: Any = None) -> tuple[np.ndarray, np.ndarray]:
        if k == self.k and exclude is None:  # the served path: top-K in the graph
            items, scores = self.recommend([user])
            return items[0].astype(np.int64), scores[0]
        return super().top_k(user, k, exclude)


SCORERS = {"onnxruntime": ServerScorer}
