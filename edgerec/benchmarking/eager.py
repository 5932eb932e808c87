"""The fp32 PyTorch source as a scorer for the latency harness (score / top_k / n_items), so a comparison measures
PyTorch eager beside the exported artifacts, in the same run with the same harness."""

from __future__ import annotations

from typing import Any

import numpy as np


class TorchEager:
    """The fp32 source as a scorer (score / top_k / n_items) for the latency harness."""

    def __init__(self, model: Any, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        self.torch, self.model, self.n_items = torch, model.eval(), model.arch.n_items

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        with self.torch.inference_mode():
            return self.model(
                self.torch.from_numpy(users.astype(np.int64)), self.torch.from_numpy(items.astype(np.int64))
            ).numpy()

    def top_k(self, user: int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        with self.torch.inference_mode():
            items = self.torch.arange(self.n_items)
            scores = self.model(self.torch.full((self.n_items,), user), items)
            top = self.torch.topk(scores, k)
            return top.indices.numpy(), top.values.numpy()
