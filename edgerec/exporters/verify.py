"""Verification of an artifact in its own runtime against the fp32 source model (gated by a gates.ParityBound)."""

from __future__ import annotations

import numpy as np

from edgerec.data.split import Dataset
from edgerec.metrics import ScoreFn, catalog_top_k, evaluate, jaccard

PARITY_BATCH = 1000


def batch_parity(scorer: ScoreFn, users: np.ndarray, items: np.ndarray) -> float:
    """Max |score in one batch - score alone| over the pairs (a known bug class of batched embedding kernels)."""
    batch = np.asarray(scorer(users, items))
    alone = np.array([np.asarray(scorer(users[k : k + 1], items[k : k + 1]))[0] for k in range(len(users))])
    return float(np.abs(batch - alone).max())


def verify(artifact: ScoreFn, source: ScoreFn, ds: Dataset) -> dict:
    """HR/NDCG (sampled and full ranking) through the artifact's runtime, deltas against the source, top-10
    agreement, max |score error| on the test protocol's pairs, batch parity."""
    metrics = evaluate(artifact, ds)
    src = evaluate(source, ds)
    users = np.repeat(ds.test_users, 1 + ds.test_negatives.shape[1])
    items = np.concatenate([ds.test_items[:, None], ds.test_negatives], axis=1).ravel()
    err = float(np.abs(np.asarray(artifact(users, items)) - np.asarray(source(users, items))).max())
    n = min(PARITY_BATCH, len(users))
    keys = ("hr@10", "ndcg@10", "full_hr@10", "full_ndcg@10")
    return {
        "metrics": metrics,
        "source_metrics": {k: src[k] for k in keys},
        "deltas": {k: float(metrics[k]) - float(src[k]) for k in keys},
        "agreement": jaccard(catalog_top_k(artifact, ds), catalog_top_k(source, ds)),
        "max_abs_score_error": err,
        "batch_parity_max_diff": batch_parity(artifact, users[:n], items[:n]),
        "parity_batch": n,
    }
