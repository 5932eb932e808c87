"""The Triton repository (target triton) run locally in onnxruntime, as its python-backend model.py runs it inside
Triton: recommend/<version>/model.onnx for the catalog top-K, score/<version>/model.onnx for (user, item) pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgerec.errors import EdgerecError
from edgerec.runtime.base import check_ids
from edgerec.runtime.onnx import session
from edgerec.runtime.onnx_server import ServerScorer

PAIRS_PER_CALL = 65_536


class TritonScorer(ServerScorer):
    def __init__(self, folder: Path, manifest: dict[str, Any], threads: int, runtime: str) -> None:
        super().__init__(folder, manifest, threads, runtime)
        try:
            self.score_session = session(folder / str(manifest["score_file"]), threads)
        except KeyError:
            raise EdgerecError(f"{folder}/manifest.json: no score_file (not a Triton repository)") from None

    def _run(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        out = np.empty(len(users), dtype=np.float32)
        for s in range(0, len(users), PAIRS_PER_CALL):  # each pair as a one-item candidate list
            u, i = users[s : s + PAIRS_PER_CALL], items[s : s + PAIRS_PER_CALL]
            feed = {"users": u.astype(np.int64), "items": i.astype(np.int64)[:, None]}
            out[s : s + len(u)] = self.score_session.run(["scores"], feed)[0][:, 0]
        return out

    def score_candidates(self, users: Any, items: Any) -> np.ndarray:
        """[B, N] scores of each user's own candidate list (the served `score` model)."""
        u = check_ids("users", users, self.n_users).astype(np.int64)
        i = np.asarray(items)
        if i.ndim != 2 or i.shape[0] != len(u) or i.shape[1] == 0:
            raise EdgerecError(f"items must be [users, N >= 1] candidate lists; got shape {list(i.shape)}")
        i = check_ids("items", i.reshape(-1), self.n_items).astype(np.int64).reshape(i.shape)
        return self.score_session.run(["scores"], {"users": u, "items": i})[0]


SCORERS = {"onnxruntime": TritonScorer}
