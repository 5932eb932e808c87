"""The toy target's runtime module: its scorer, numpy only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgerec.runtime.base import Scorer
from edgerec.runtime.fold import fold


class NpzScorer(Scorer):
    def __init__(self, folder: Path, manifest: dict[str, Any], threads: int, runtime: str) -> None:
        super().__init__(folder, manifest, threads, runtime)
        with np.load(self.model_path, allow_pickle=False) as f:
            w = {k.replace("__", "."): f[k].astype(np.float32) for k in f.files}
        self.folded, self.p, self.q = fold(w), w["gmf_user.weight"], w["mlp_user.weight"]

    def _run(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        f = self.folded
        h = np.maximum(f.A[items] + self.q[users] @ f.Wu.T, 0)  # [B, h0]
        for w, b in f.layers:
            h = np.maximum(h @ w.T + b, 0)
        return np.einsum("bg,bg->b", f.G[items], self.p[users]) + h @ f.wm + f.b


SCORERS = {"numpy": NpzScorer}
