"""The phone-side NeuMF as a torch module for litert-torch: the item tower folded into per-item constants
(edgerec.runtime.fold, the one place that math lives), the user's two vectors as inputs, top-K in the graph. No user
table on the device.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from edgerec.errors import EdgerecError
from edgerec.model.ncf import NCF
from edgerec.runtime.fold import fold
from edgerec.runtime.foldin import initial_vectors
from edgerec.runtime.retrieval import item_prior

PAD_SCORE = -3.0e38  # the score of a padding entry (-1) in a candidate list: below every real score


class FoldedNCF(nn.Module):
    """recommend(user_gmf [1, g], user_mlp [1, d]) -> {top_items [K] int32, top_scores [K], scores [n]}.

    With `shortlist` = S > 0, recommend re-ranks a shortlist instead of the catalog: the S items whose GMF half plus
    item prior score highest (the first stage of the two-stage path, in the same graph) go through the whole NeuMF,
    the MLP running for S items instead of n -> {top_items [K], top_scores [K], shortlist [S] int32 (best first by
    that first score), shortlist_scores [S] (their NeuMF scores)}.

    `score_items` scores a given list of items with the same constants (the bundle's `score` signature). With
    `row_lookups` it looks the candidates' GMF rows up instead of taking the GMF half over the catalog (C rows read
    instead of n; the bundles with compressed item tables, edgerec.exporters.item_tables, are built so)."""

    def __init__(self, model: NCF, k: int = 10, row_lookups: bool = False, shortlist: int = 0) -> None:
        super().__init__()
        arch = model.arch
        if not (arch.gmf_dim and arch.mlp_layers):
            raise EdgerecError("the folded phone model needs a NeuMF (GMF and MLP towers); got " + arch.kind)
        if not 1 <= k <= arch.n_items:
            raise EdgerecError(f"K must lie in 1..{arch.n_items} (the catalog); got {k}")
        if arch.n_items >= 2**24:
            raise EdgerecError(f"the phone bundle holds at most {2**24 - 1:,} items; got {arch.n_items:,}")
        if shortlist and not k <= shortlist <= arch.n_items:
            raise EdgerecError(
                f"the shortlist must be 0 (recommend ranks the catalog) or lie in {k}..{arch.n_items:,} (K..the "
                f"catalog); got {shortlist:,}"
            )
        self.k, self.n_items, self.row_lookups, self.shortlist = k, arch.n_items, row_lookups, shortlist
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

    def forward(self, user_gmf: torch.Tensor, user_mlp: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.shortlist:
            return self.shortlisted(user_gmf, user_mlp)
        s = self.scores(user_gmf, user_mlp)
        top = torch.topk(s, self.k)
        return {"top_items": top.indices.to(torch.int32), "top_scores": top.values, "scores": s}

    def shortlisted(self, user_gmf: torch.Tensor, user_mlp: torch.Tensor) -> dict[str, torch.Tensor]:
        """recommend over the shortlist: the S best items by GMF half + item prior, re-ranked by the whole NeuMF."""
        gmf = self.gmf(user_gmf).reshape(-1, 1)  # [n, 1]
        idx = self.first_stage(gmf.reshape(-1), self.shortlist).indices  # [S]
        s = nn.functional.embedding(idx, gmf).reshape(-1) + self.mlp_half(idx, user_mlp)
        best, best_scores = self.top_of(s, idx)
        return {"top_items": best, "top_scores": best_scores, "shortlist": idx.to(torch.int32), "shortlist_scores": s}

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
        if self.row_lookups:
            gmf = (lookup(idx, self.gmf.weight) @ user_gmf.reshape(-1, 1)).reshape(-1)
        else:
            gmf = lookup(idx, self.gmf(user_gmf).reshape(-1, 1)).reshape(-1)
        s = torch.where(valid, gmf + self.mlp_half(idx, user_mlp), torch.tensor(PAD_SCORE))
        return (s, *self.top_of(s, items))

    def first_stage(self, gmf: torch.Tensor, count: int) -> Any:  # torch.return_types.topk
        """The `count` items of best GMF half ([n] logits) + item prior: the first stage of the two-stage path."""
        return torch.topk(gmf + self.prior, count)

    def mlp_half(self, idx: torch.Tensor, user_mlp: torch.Tensor) -> torch.Tensor:
        """The MLP half's logits [C] of the given catalog indices (their precomputed rows looked up), head bias
        included."""
        h = self.rest(nn.functional.embedding(idx, self.item_mlp) + self.user_proj(user_mlp))
        return self.head_mlp(h).reshape(-1)

    def top_of(self, s: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The top-K of a list's scores `s` [C]: (their catalog indices from `items` [C], int32; their scores)."""
        top = torch.topk(s, self.k)
        # the int32 ids looked up as float32 (exact below 2**24 items, checked in __init__)
        best = nn.functional.embedding(top.indices, items.to(torch.float32).reshape(-1, 1)).reshape(-1)
        return best.to(torch.int32), top.values


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

    def forward(self, user_gmf: torch.Tensor) -> dict[str, torch.Tensor]:
        top = self.folded.first_stage(self.folded.gmf(user_gmf).reshape(-1), self.candidates)
        return {"items": top.indices.to(torch.int32), "scores": top.values}


class CandidateScorer(nn.Module):
    """The `score` signature: forward = FoldedNCF.score_items (litert-torch converts a module's forward)."""

    def __init__(self, folded: FoldedNCF) -> None:
        super().__init__()
        self.folded = folded

    def forward(self, user_gmf: torch.Tensor, user_mlp: torch.Tensor, items: torch.Tensor) -> dict[str, torch.Tensor]:
        scores, top_items, top_scores = self.folded.score_items(user_gmf, user_mlp, items)
        return {"scores": scores, "top_items": top_items, "top_scores": top_scores}


def user_vectors(model: NCF) -> tuple[torch.Tensor, torch.Tensor]:
    """Every user's (GMF vector [n_users, g], MLP vector [n_users, d]): what the server sends a phone."""
    return model.gmf_user.weight.detach().clone(), model.mlp_user.weight.detach().clone()


class FoldIn(nn.Module):
    """The `fold_in` signature: history [H] int32 (pad with any index and mask 0), history_mask [H] float32 ->
    {user_gmf [1, g], user_mlp [1, d]}, the vectors of a user the model never saw, computed on the device.

    The same objective as edgerec.runtime.foldin.fold_in_fixed, the numpy reference it is tested against: weighted
    BCE over the unique masked history (positives) and a fixed set of negative items chosen at export (those in the
    history left out), `steps` full-batch Adam steps from a seeded start, unrolled into the graph. A fixed negative set
    makes every client compute the same vectors; with a few hundred negatives 40 steps matched the numpy fold-in's
    ranking quality (300 steps, negatives re-drawn each step) on held-out users of synthetic data."""

    def __init__(self, folded: FoldedNCF, negatives: np.ndarray, cfg: Any) -> None:  # cfg: FoldInConfig
        super().__init__()
        self.folded, self.cfg = folded, cfg
        self.neg = nn.Parameter(torch.as_tensor(negatives, dtype=torch.int32), requires_grad=False)  # [M]
        p0, q0 = initial_vectors(folded.gmf.weight.shape[1], folded.user_proj.weight.shape[1], cfg.seed)
        self.p0 = nn.Parameter(torch.from_numpy(p0.astype(np.float32)), requires_grad=False)
        self.q0 = nn.Parameter(torch.from_numpy(q0.astype(np.float32)), requires_grad=False)

    def forward(self, history: torch.Tensor, history_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.fit(history, history_mask, self.p0[None, :], self.q0[None, :])

    def fit(
        self, history: torch.Tensor, history_mask: torch.Tensor, p: torch.Tensor, q: torch.Tensor, pull: float = 0.0
    ) -> dict[str, torch.Tensor]:
        """The unrolled Adam steps from (p [1, g], q [1, d]), with an L2 pull of strength `pull` / (the distinct
        history items) toward them: a prior that weighs less as the history grows."""
        p_start, q_start = p, q
        f, cfg, H = self.folded, self.cfg, history.shape[0]
        same = (history[:, None] == history[None, :]).to(torch.float32)  # [H, H]
        earlier = torch.tril(torch.ones(H, H), diagonal=-1)  # [i, j] = 1 where j < i
        repeat = ((same * earlier * history_mask[None, :]).sum(1) > 0).to(torch.float32)
        pos_w = history_mask * (1 - repeat)  # each distinct history item once
        n_pos = pos_w.sum().clamp(min=1.0)
        hit = ((self.neg[:, None] == history[None, :]).to(torch.float32) * pos_w[None, :]).sum(1)
        neg_ok = (hit == 0).to(torch.float32)  # [M]: negatives outside the history
        neg_w = neg_ok * (cfg.negatives * n_pos / neg_ok.sum().clamp(min=1.0))
        w = torch.cat([pos_w, neg_w]) / (n_pos * (1 + cfg.negatives))  # [m]
        y = torch.cat([torch.ones(H), torch.zeros(self.neg.shape[0])])
        items = torch.cat([history, self.neg])
        G = nn.functional.embedding(items, f.gmf.weight)  # [m, g]
        A = nn.functional.embedding(items, f.item_mlp)  # [m, h0]
        layers = [m for m in f.rest if isinstance(m, nn.Linear)]
        wm = f.head_mlp.weight.reshape(-1, 1)  # [h_last, 1]
        mp, vp, mq, vq = (torch.zeros_like(x) for x in (p, p, q, q))
        for t in range(1, cfg.steps + 1):
            acts = [A + f.user_proj(q)]  # [m, h0]
            h = torch.relu(acts[0])
            for layer in layers:
                acts.append(layer(h))
                h = torch.relu(acts[-1])
            logit = (G @ p.reshape(-1, 1)).reshape(-1) + (h @ wm).reshape(-1) + f.head_mlp.bias
            dl = ((torch.sigmoid(logit) - y) * w).reshape(1, -1)  # [1, m]
            gp = dl @ G + cfg.l2 * p
            if pull:
                gp = gp + (pull / n_pos) * (p - p_start)
            dh = dl.reshape(-1, 1) * wm.reshape(1, -1)  # [m, h_last]
            for layer, z in zip(reversed(layers), reversed(acts[1:]), strict=True):
                dh = (dh * (z > 0)) @ layer.weight
            gq = (dh * (acts[0] > 0)).sum(0, keepdim=True) @ f.user_proj.weight + cfg.l2 * q
            if pull:
                gq = gq + (pull / n_pos) * (q - q_start)
            c1, c2 = 1 - 0.9**t, 1 - 0.999**t
            mp, vp = 0.9 * mp + 0.1 * gp, 0.999 * vp + 0.001 * gp * gp
            mq, vq = 0.9 * mq + 0.1 * gq, 0.999 * vq + 0.001 * gq * gq
            p = p - cfg.lr * (mp / c1) / (torch.sqrt(vp / c2) + 1e-8)
            q = q - cfg.lr * (mq / c1) / (torch.sqrt(vq / c2) + 1e-8)
        return {"user_gmf": p, "user_mlp": q}


class FoldInFrom(FoldIn):
    """The `fold_in_from` signature of a bundle with user features: fold_in from given vectors (history, history_mask,
    user_gmf [1, g], user_mlp [1, d]) -> {user_gmf, user_mlp}: a new user's few interactions fitted from the vectors
    of their features (`user_features`), with an L2 pull of cfg.pull / (distinct history items) toward them.
    edgerec.runtime.foldin.fold_in_fixed with `start` is its reference."""

    def forward(
        self, history: torch.Tensor, history_mask: torch.Tensor, user_gmf: torch.Tensor, user_mlp: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        return self.fit(history, history_mask, user_gmf, user_mlp, self.cfg.pull)


class UserFeatures(nn.Module):
    """The `user_features` signature of a bundle exported from a model with user features: feature_indices [W]
    int32, feature_weights [W] float32 (a user's attributes encoded by the bundle's user encoder, padded with index 0
    and weight 0) -> {user_gmf [1, g], user_mlp [1, d]}: the weighted sum of the rows of the user feature bag of each
    tower (edgerec.data.features.FeaturePath.vectors), the vectors the model gives a user it never saw."""

    def __init__(self, path: Any) -> None:  # path: edgerec.data.features.FeaturePath
        super().__init__()
        self.gmf = nn.Parameter(torch.from_numpy(np.ascontiguousarray(path.gmf, np.float32)), requires_grad=False)
        self.mlp = nn.Parameter(torch.from_numpy(np.ascontiguousarray(path.mlp, np.float32)), requires_grad=False)

    def forward(self, feature_indices: torch.Tensor, feature_weights: torch.Tensor) -> dict[str, torch.Tensor]:
        w = feature_weights.reshape(1, -1)  # [1, W]
        gmf = w @ nn.functional.embedding(feature_indices, self.gmf)  # [1, g]
        mlp = w @ nn.functional.embedding(feature_indices, self.mlp)  # [1, d]
        return {"user_gmf": gmf, "user_mlp": mlp}


class Explain(nn.Module):
    """The `explain` signature: (user_gmf, user_mlp, history [H], history_mask [H], items [K]) -> {reasons [K, R]
    int32 (history items), reason_weights [K, R]}: for each recommended item the R history items most similar to it
    in the model's item spaces (cosine over the folded GMF row and item half of the first MLP layer: the similarity
    explainer of edgerec.runtime.explain). The user's vectors are inputs so that a later explainer can use them."""

    def __init__(self, folded: FoldedNCF, reasons: int) -> None:
        super().__init__()
        self.folded, self.reasons = folded, reasons

    def _unit(self, items: torch.Tensor) -> torch.Tensor:
        f = self.folded
        emb = torch.cat([nn.functional.embedding(items, f.gmf.weight), nn.functional.embedding(items, f.item_mlp)], 1)
        return emb / torch.sqrt((emb * emb).sum(1, keepdim=True)).clamp(min=1e-12)

    def forward(
        self,
        user_gmf: torch.Tensor,
        user_mlp: torch.Tensor,
        history: torch.Tensor,
        history_mask: torch.Tensor,
        items: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        sim = self._unit(items) @ self._unit(history).T  # [K, H]
        sim = torch.where(history_mask[None, :] > 0, sim, torch.tensor(PAD_SCORE))
        top = torch.topk(sim, self.reasons)
        # the int32 ids looked up as float32 (exact below 2**24 items)
        table = history.to(torch.float32).reshape(-1, 1)
        reasons = nn.functional.embedding(top.indices.reshape(-1), table).reshape(top.indices.shape)
        return {"reasons": reasons.to(torch.int32), "reason_weights": top.values}
