"""The server's first stage for large catalogs: exact maximum-inner-product search with FAISS over NeuMF's GMF half
plus an item prior.

NeuMF's GMF term for user u and item i is p_u . G_i with G_i = w_g * q_i (edgerec.runtime.fold): a dot product, so
the items with the best GMF half are an exact MIPS query against the folded rows (faiss.IndexFlatIP, batched BLAS
over the catalog); `item_prior` (the MLP half at the mean user) joins as one more dimension.
`two_stage_top_k` then re-ranks those N candidates with the whole NeuMF: NumpyModel's folded
logits here, or any scorer (the Triton `score` model, the phone bundle's `score` signature) on the same lists.

FAISS is the `retrieval` extra (faiss-cpu); numpy only otherwise, never torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgerec.errors import EdgerecError
from edgerec.metrics import top_k
from edgerec.runtime.fold import FoldedNeuMF


class GmfIndex:
    """Exact MIPS over the folded GMF rows [n_items, g] (float32; IndexFlatIP: no approximation)."""

    def __init__(self, rows: np.ndarray, threads: int | None = None, augmented: bool = False) -> None:
        """augmented: the last column of rows is an item prior (queries get a 1 there)."""
        try:
            import faiss
        except ImportError:
            raise EdgerecError("the first stage needs FAISS: pip install 'edgerec[retrieval]' (faiss-cpu)") from None
        if threads:
            faiss.omp_set_num_threads(threads)
        self.augmented = augmented
        self.rows = np.ascontiguousarray(rows, dtype=np.float32)
        self.index = faiss.IndexFlatIP(self.rows.shape[1])
        self.index.add(self.rows)

    @classmethod
    def of(cls, folded: FoldedNeuMF, threads: int | None = None, prior: np.ndarray | None = None) -> GmfIndex:
        """prior [n_items]: an item-only score added to the GMF half (item_prior: the MLP half at the mean user),
        searched exactly as one more dimension (the query gets a 1 there)."""
        rows = folded.G if prior is None else np.concatenate([folded.G, prior[:, None]], axis=1)
        return cls(rows, threads, augmented=prior is not None)

    @property
    def n_items(self) -> int:
        return int(self.index.ntotal)

    def search(self, user_gmf: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """[B, g] user GMF vectors -> ([B, n] item indices, [B, n] GMF scores), best first."""
        if not 1 <= n <= self.n_items:
            raise EdgerecError(f"the candidate list must lie in 1..{self.n_items:,} (the catalog); got {n:,}")
        q = np.ascontiguousarray(np.atleast_2d(user_gmf), dtype=np.float32)
        if self.augmented:
            q = np.ascontiguousarray(np.concatenate([q, np.ones((len(q), 1), np.float32)], axis=1))
        if q.shape[1] != self.rows.shape[1] or not np.isfinite(q).all():
            raise EdgerecError(f"user GMF vectors must be finite [B, {self.rows.shape[1]}]; got shape {q.shape}")
        scores, ids = self.index.search(q, n)
        return ids.astype(np.int64), scores


def catalog_logits(folded: FoldedNeuMF, user_gmf: Any, user_mlp: Any, chunk: int = 1 << 18) -> np.ndarray:
    """[n_items] the folded NeuMF's logit of every item for one user's two vectors, a chunk of items at a time."""
    parts = range(0, folded.n_items, chunk)
    return np.concatenate(
        [folded.logits(user_gmf, user_mlp, np.arange(s, min(s + chunk, folded.n_items)))[0] for s in parts]
    )


def item_prior(folded: FoldedNeuMF, mean_user_mlp: np.ndarray) -> np.ndarray:
    """[n_items] the MLP half's score (with the bias) of every item for the mean user MLP vector: the item-only part
    of NeuMF (popularity lives there) that the GMF half alone misses."""
    return catalog_logits(folded, np.zeros(folded.g, dtype=folded.G.dtype), mean_user_mlp)


def two_stage_top_k(
    index: GmfIndex, folded: FoldedNeuMF, user_gmf: np.ndarray, user_mlp: np.ndarray, n: int, k: int = 10
) -> np.ndarray:
    """[B, k] top-k item indices per user: N candidates by the GMF half (FAISS), re-ranked by the whole NeuMF."""
    if not 1 <= k <= n:
        raise EdgerecError(f"K must lie in 1..N (the candidate list, {n:,}); got {k}")
    cand, _ = index.search(user_gmf, n)
    out = np.empty((len(cand), k), dtype=np.int64)
    for r, (p, q, items) in enumerate(zip(np.atleast_2d(user_gmf), np.atleast_2d(user_mlp), cand, strict=True)):
        logits = folded.logits(p, q, items)[0]
        out[r] = items[top_k(logits[None, :], k)[0]]
    return out


def exhaustive_top_k(folded: FoldedNeuMF, user_gmf: Any, user_mlp: Any, k: int = 10) -> np.ndarray:
    """[k] the whole NeuMF's top-k over every item for one user (the reference the two-stage recall is taken on)."""
    return top_k(catalog_logits(folded, user_gmf, user_mlp)[None, :], k)[0]
