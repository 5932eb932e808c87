"""The served form of an NCF: int32 ids in, float32 logits out, prediction layer split in two.

The score is the logit, not the sigmoid probability: the ranking is the same, and float32 sigmoid saturates
(every logit above ~17 becomes 1.0), which would tie confident items. An app wanting a probability applies
sigmoid itself.

NeuMF's prediction layer reads concat(GMF product, MLP output). The serving graph computes it as
head_gmf(GMF product) + head_mlp(MLP output) (+ bias): exactly equal in real arithmetic, and it lets int8 backends
quantize the two halves with their own scales -- their ranges differ by an order of magnitude, and one shared scale
crushes the GMF half (see edgerec.compression.quantize.input_parts).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from edgerec.model.ncf import NCF


class ServingNCF(nn.Module):
    """forward(users [B] int32, items [B] int32) -> [B] float32 logits."""

    def __init__(self, model: NCF) -> None:
        super().__init__()
        arch = model.arch
        self.arch = arch
        for name, table in model.tables().items():
            setattr(self, name, nn.Embedding.from_pretrained(table.weight.detach().clone(), freeze=True))
        if arch.mlp_layers:
            self.mlp = model.mlp
        w, b = model.predict.weight.detach(), model.predict.bias.detach()
        self.head_gmf = self._linear(w[:, : arch.gmf_dim], b) if arch.gmf_dim else None
        self.head_mlp = self._linear(w[:, arch.gmf_dim :], None if arch.gmf_dim else b) if arch.mlp_layers else None

    @staticmethod
    def _linear(w: torch.Tensor, b: torch.Tensor | None) -> nn.Linear:
        lin = nn.Linear(w.shape[1], 1, bias=b is not None)
        with torch.no_grad():
            lin.weight.copy_(w)
            if b is not None:
                lin.bias.copy_(b)
        return lin

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        parts = []
        if self.head_gmf is not None:
            parts.append(self.head_gmf(self.gmf_user(users) * self.gmf_item(items)))  # [B, 1]
        if self.head_mlp is not None:
            x = torch.cat([self.mlp_user(users), self.mlp_item(items)], dim=-1)  # [B, mlp_user + mlp_item]
            parts.append(self.head_mlp(self.mlp(x)))  # [B, 1]
        logit = parts[0] if len(parts) == 1 else parts[0] + parts[1]
        return logit.reshape(-1)  # [B]


def numpy_weights(model: NCF) -> dict[str, np.ndarray]:
    """The state dict as float32 numpy arrays."""
    return {k: v.detach().cpu().numpy().astype(np.float32) for k, v in model.state_dict().items()}
