"""The phone-side NeuMF as a torch module for litert-torch: the item tower folded into per-item constants
(edgerec.runtime.fold, the one place that math lives), the user's two vectors as inputs, top-K in the graph. No user
table on the device.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from edgerec.errors import EdgerecError
from edgerec.model.ncf import NCF
from edgerec.runtime.fold import fold
from edgerec.runtime.retrieval import item_prior

PAD_SCORE = -3.0e38  # the score of a padding entry (-1) in a candidate list: below every real score


class FoldedNCF(nn.Module):
    """recommend(user_gmf [1, g], user_mlp [1, d]) -> (top_k_items [K] int32, top_k_scores [K], scores [n]).

    `score_items` scores a given list of items with the same constants (the bundle's `score` signature)."""

    def __init__(self, model: NCF, k: int = 10) -> None:
        super().__init__()
        arch = model.arch
        if not (arch.gmf_dim and arch.mlp_layers):
            raise EdgerecError("the folded phone model needs a NeuMF (GMF and MLP towers); got " + arch.kind)
        if not 1 <= k <= arch.n_items:
            raise EdgerecError(f"K must lie in 1..{arch.n_items} (the catalog); got {k}")
        if arch.n_items >= 2**24:
            raise EdgerecError(f"the phone bundle holds at most {2**24 - 1:,} items; got {arch.n_items:,}")
        self.k, self.n_items = k, arch.n_items
        f = fold({name: value.detach().numpy() for name, value in model.state_dict().items()})

        def linear(weight: np.ndarray, bias: np.ndarray | None = None) -> nn.Linear:
            layer = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
            with torch.no_grad():
                layer.weight.copy_(torch.from_numpy(weight))
                if bias is not None:
                    layer.bias.copy_(torch.from_numpy(bias))
            return layer.requires_grad_(False)

        self.gmf = linear(
            f.G
        )  # the GMF dot products as one layer whose weight rows are the folded items: [1, g] -> [1, n]
        self.item_mlp = nn.Parameter(torch.from_numpy(f.A), requires_grad=False)  # [n, h0]
        self.user_proj = linear(f.Wu)  # [1, d] -> [1, h0]
        self.head_mlp = linear(f.wm[None, :], np.array([f.b], dtype=f.wm.dtype))
        rest: list[nn.Module] = [nn.ReLU()]
        for w, b in f.layers:
            rest += [linear(w, b), nn.ReLU()]
        self.rest = nn.Sequential(*rest)  # ReLU, then the remaining Linear + ReLU pairs
        # the item-only part of NeuMF (the MLP half at the mean user: popularity lives there), added to the GMF half
        # by the first stage of the two-stage path (Retriever)
        mean_user = model.mlp_user.weight.detach().numpy().mean(axis=0)
        self.prior = nn.Parameter(torch.from_numpy(item_prior(f, mean_user).astype(np.float32)), requires_grad=False)

    def scores(self, user_gmf: torch.Tensor, user_mlp: torch.Tensor) -> torch.Tensor:
        """[1, g], [1, d] -> [n] logits over the catalog."""
        gmf = self.gmf(user_gmf)  # [1, n]
        h = self.rest(self.item_mlp + self.user_proj(user_mlp))  # [n, h_last]
        return gmf.reshape(-1) + self.head_mlp(h).reshape(-1)  # [n]

    def forward(self, user_gmf: torch.Tensor, user_mlp: torch.Tensor) -> tuple[torch.Tensor, ...]:
        s = self.scores(user_gmf, user_mlp)
        top = torch.topk(s, self.k)
        return top.indices.to(torch.int32), top.values, s

    def score_items(
        self, user_gmf: torch.Tensor, user_mlp: torch.Tensor, items: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        """items [C] int32 catalog indices, -1 = padding -> (scores [C] (padding: PAD_SCORE), the top-K of the list
        as catalog indices [K] int32, their scores [K]). The MLP runs for the C items only; the GMF dot products
        are taken over the catalog (8 MACs per item) and looked up. Lookups are embedding lookups on float tables:
        torch indexing lowers to a negative-index wrap (5 ops per lookup) that costs bundle bytes."""
        lookup = nn.functional.embedding
        valid = items >= 0
        idx = items.clamp(min=0)
        gmf = lookup(idx, self.gmf(user_gmf).reshape(-1, 1)).reshape(-1)
        h = self.rest(lookup(idx, self.item_mlp) + self.user_proj(user_mlp))
        s = torch.where(valid, gmf + self.head_mlp(h).reshape(-1), torch.tensor(PAD_SCORE))
        top = torch.topk(s, self.k)
        # the int32 ids looked up as float32 (exact below 2**24 items, checked in __init__)
        best = lookup(top.indices, items.to(torch.float32).reshape(-1, 1)).reshape(-1).to(torch.int32)
        return s, best, top.values


class Retriever(nn.Module):
    """The `retrieve` signature, a large catalog's first stage: user_gmf [1, g] -> (the C items whose GMF half plus
    item prior scores highest [C] int32, those scores [C]). The GMF half is user . (w_g * item), a dot product with
    the folded rows, and the prior (the MLP half at the mean user) one more dimension, so this is exact
    maximum-inner-product search over the catalog (g + 1 MACs per item against ~80x that for the whole NeuMF);
    `score` then re-ranks the C candidates with the full model. Without the prior a barely trained model's
    candidates missed the exhaustive top-10 entirely (benchmarks/results/scale_*.md)."""

    def __init__(self, folded: FoldedNCF, candidates: int) -> None:
        super().__init__()
        if not 1 <= candidates <= folded.n_items:
            raise EdgerecError(
                f"the candidate list must lie in 1..{folded.n_items:,} (the catalog); got {candidates:,}"
            )
        self.folded, self.candidates = folded, candidates

    def forward(self, user_gmf: torch.Tensor) -> tuple[torch.Tensor, ...]:
        top = torch.topk(self.folded.gmf(user_gmf).reshape(-1) + self.folded.prior, self.candidates)
        return top.indices.to(torch.int32), top.values


class CandidateScorer(nn.Module):
    """The `score` signature: forward = FoldedNCF.score_items (litert-torch converts a module's forward)."""

    def __init__(self, folded: FoldedNCF) -> None:
        super().__init__()
        self.folded = folded

    def forward(self, user_gmf: torch.Tensor, user_mlp: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.folded.score_items(user_gmf, user_mlp, items)


def user_vectors(model: NCF) -> tuple[torch.Tensor, torch.Tensor]:
    """Every user's (GMF vector [n_users, g], MLP vector [n_users, d]): what the server sends a phone."""
    return model.gmf_user.weight.detach().clone(), model.mlp_user.weight.detach().clone()
