"""Model size in bytes under a precision plan, and multiply-accumulates per scored item.

Storage formats counted (what the exporters write):
- fp32 / fp16: 4 / 2 bytes per value.
- int8 embeddings: row-wise symmetric, 1 byte per value + one fp32 scale per row.
- int4 embeddings: row-wise asymmetric, two values per byte + fp16 scale and fp16 offset per row (FBGEMM's layout).
- int8 linear layers: per-output-channel symmetric, 1 byte per weight + fp32 scale per channel; biases int32.
"""

from __future__ import annotations

import itertools

from torch import nn

from edgerec.compression.config import PrecisionPlan
from edgerec.model.ncf import NCF, NCFArch


def embedding_bytes(rows: int, dim: int, precision: str) -> int:
    if precision == "fp32":
        return rows * dim * 4
    if precision == "fp16":
        return rows * dim * 2
    if precision == "int8":
        return rows * (dim + 4)
    return rows * ((dim + 1) // 2 + 4)  # int4


def linear_bytes(layer: nn.Linear, precision: str) -> int:
    w, out = layer.weight.numel(), layer.out_features
    if precision == "fp32":
        return (w + out) * 4
    if precision == "fp16":
        return (w + out) * 2
    return w + out * 4 + out * 4  # int8 weights, fp32 scale and int32 bias per output channel


def model_bytes(model: NCF, plan: PrecisionPlan = PrecisionPlan()) -> int:
    total = 0
    for m in model.modules():
        if isinstance(m, nn.Embedding):
            total += embedding_bytes(m.num_embeddings, m.embedding_dim, plan.embeddings)
        elif isinstance(m, nn.Linear):
            total += linear_bytes(m, plan.mlp)
    return total


def macs_per_item(arch: NCFArch) -> int:
    """Multiply-accumulates of the linear layers for one (user, item) score (the GMF elementwise product and the
    activations are not counted): 2,704 for NeuMF-8 with layers 64,32,16,8."""
    sizes = (arch.mlp_user_dim + arch.mlp_item_dim, *arch.mlp_layers) if arch.mlp_layers else ()
    return sum(a * b for a, b in itertools.pairwise(sizes)) + arch.predictive_dim
