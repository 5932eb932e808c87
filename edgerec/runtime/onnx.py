"""onnxruntime scorer (CPU by default; CUDA when the manifest's provider list asks for it and it is available)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgerec.errors import EdgerecError
from edgerec.runtime.base import Scorer


def session(path: Path, threads: int) -> Any:  # -> onnxruntime.InferenceSession
    """An onnxruntime CPU session with `threads` intra-op threads; a model it cannot load is a one-line error."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise EdgerecError("onnxruntime is not installed: pip install onnxruntime") from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types for unreadable or invalid models
        raise EdgerecError(f"{path}: onnxruntime cannot load it ({str(e).splitlines()[0]})") from None


class OnnxScorer(Scorer):
    def __init__(self, folder: Path, manifest: dict[str, Any], threads: int, runtime: str) -> None:
        super().__init__(folder, manifest, threads, runtime)
        self.model_path = folder / str(manifest.get("onnx_file", manifest["model_file"]))  # TensorRT's ONNX too
        self.session = session(self.model_path, threads)
        names = [x.name for x in self.session.get_inputs()]
        if names != ["users", "items"]:
            raise EdgerecError(f"{self.model_path}: expected inputs users, items; got {', '.join(names)}")
        self.max_batch = 1 << 16  # bounds the memory of one call; scores do not depend on how a request is cut

    def _run(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        out = [
            self.session.run(None, {"users": users[s : s + self.max_batch], "items": items[s : s + self.max_batch]})[0]
            for s in range(0, len(users), self.max_batch)
        ]
        return np.concatenate(out)


SCORERS = {"onnxruntime": OnnxScorer}
