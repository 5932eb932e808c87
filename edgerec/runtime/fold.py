"""NeuMF with its item tower folded: the one place the folding math lives (numpy; the phone bundle's exporter builds
its graph from it, fold-in trains user vectors against it).

NeuMF's logit for user u and item i is
    w_g . (p_u * q_i) + w_m . MLP_rest(relu(W_u p'_u + W_i q'_i + b_0)) + b
The GMF term is a dot product of p_u with the folded item row G_i = w_g * q_i, and the first MLP layer splits into
a user half W_u and an item half A_i = W_i q'_i + b_0, precomputed for every item. What stays per item is the GMF
dot product, one add and the MLP layers after the first: 688 MACs instead of 2,704 for NeuMF-8. Exact in real
arithmetic (tests/test_bundle.py checks the exported model against the NCF forward to 1e-5).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgerec.errors import EdgerecError


@dataclass(frozen=True)
class FoldedNeuMF:
    G: np.ndarray  # [n_items, g] folded GMF item rows, w_g * gmf_item
    A: np.ndarray  # [n_items, h0] item half of the first MLP layer, with its bias
    Wu: np.ndarray  # [h0, d] user half of the first MLP layer
    layers: tuple[tuple[np.ndarray, np.ndarray], ...]  # the MLP layers after the first: (weight [out, in], bias [out])
    wm: np.ndarray  # [h_last] prediction weights of the MLP half
    b: float  # prediction bias

    @property
    def n_items(self) -> int:
        return self.G.shape[0]

    @property
    def g(self) -> int:
        return self.G.shape[1]

    @property
    def d(self) -> int:
        return self.Wu.shape[1]

    def logits(self, p: np.ndarray, q: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """[m] logits of the user (p [g], q [d]) for the items, plus each MLP layer's pre-activation (for backprop)."""
        z = self.A[items] + self.Wu @ q  # [m, h0]
        acts = [z]
        h = np.maximum(z, 0)
        for w, b in self.layers:
            z = h @ w.T + b
            acts.append(z)
            h = np.maximum(z, 0)
        return self.G[items] @ p + h @ self.wm + self.b, acts


def folded_macs(arch: Any) -> int:  # arch: edgerec.model.ncf.NCFArch (read by attribute: no torch here)
    """Per-item work of the folded model: GMF dot product, the add of the item half, the later MLP layers, head."""
    layers = arch.mlp_layers
    return arch.gmf_dim + layers[0] + sum(a * b for a, b in itertools.pairwise(layers)) + layers[-1]


def fold(weights: dict[str, np.ndarray]) -> FoldedNeuMF:
    """The folded form of a NeuMF state dict (names as in edgerec.model.NCF), in the weights' own dtype."""
    try:
        w = weights["predict.weight"][0]
        g = weights["gmf_item.weight"].shape[1]
        d = weights["mlp_user.weight"].shape[1]
        first_w, first_b = weights["mlp.0.weight"], weights["mlp.0.bias"]
        item = weights["mlp_item.weight"]
    except KeyError as e:
        raise EdgerecError(f"folding needs a NeuMF (GMF and MLP towers); the weights have no {e}") from None
    layers, k = [], 2  # the MLP is Linear, ReLU, Linear, ReLU, ...: Linear layers at even indices
    while f"mlp.{k}.weight" in weights:
        layers.append((weights[f"mlp.{k}.weight"], weights[f"mlp.{k}.bias"]))
        k += 2
    return FoldedNeuMF(
        G=weights["gmf_item.weight"] * w[:g],
        A=item @ first_w[:, d:].T + first_b,
        Wu=first_w[:, :d],
        layers=tuple(layers),
        wm=w[g:],
        b=float(weights["predict.bias"][0]),
    )
