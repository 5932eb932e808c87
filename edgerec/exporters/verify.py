"""Verification of an artifact in its own runtime against the fp32 source model (gated by a gates.ParityBound)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgerec.data.split import Dataset
from edgerec.gates import GateResult, ParityBound
from edgerec.metrics import ScoreFn, evaluate_with_top_k, full_sample_size, jaccard

PARITY_BATCH = 1000
# test users an artifact is verified on: all of them up to this many, else a seeded sample (deltas are paired, on the
# same users, so their noise is far below the metrics' own); the catalog-wide checks take full ranking's sample
VERIFY_USERS = 20_000


def batch_parity(scorer: ScoreFn, users: np.ndarray, items: np.ndarray) -> float:
    """Max |score in one batch - score alone| over the pairs (a known bug class of batched embedding kernels)."""
    batch = np.asarray(scorer(users, items))
    alone = np.array([np.asarray(scorer(users[k : k + 1], items[k : k + 1]))[0] for k in range(len(users))])
    return float(np.abs(batch - alone).max())


@dataclass(frozen=True)
class Verification:
    """An artifact measured in its runtime against its fp32 source, and the parity bound's verdict on it."""

    metrics: dict[str, float]  # HR@10 / NDCG@10, sampled and full ranking, through the artifact's runtime
    source_metrics: dict[str, float]
    deltas: dict[str, float]  # artifact - source
    agreement: float  # top-10 agreement with the source (mean Jaccard)
    verified_users: int
    agreement_users: int
    max_abs_score_error: float  # on the test protocol's pairs
    batch_parity_max_diff: float  # a pair's score in a batch against alone
    parity_batch: int
    verified_with: str  # the runtime package that ran it
    gate: GateResult

    def to_json(self) -> dict[str, Any]:
        """The manifest's "verification" record (the metrics are its own key there)."""
        return {
            "source_metrics": self.source_metrics,
            "deltas": self.deltas,
            "agreement": self.agreement,
            "verified_users": self.verified_users,
            "agreement_users": self.agreement_users,
            "max_abs_score_error": self.max_abs_score_error,
            "batch_parity_max_diff": self.batch_parity_max_diff,
            "parity_batch": self.parity_batch,
            "verified_with": self.verified_with,
            "gate": self.gate.to_json(),
        }


def verify(
    artifact: ScoreFn, source: ScoreFn, ds: Dataset, bound: ParityBound, what: str, runtime: str
) -> Verification:
    """HR/NDCG (sampled and full ranking) through the artifact's runtime, deltas against the source, top-10
    agreement, max |score error| on the test protocol's pairs, batch parity; gated on `bound`."""
    sampled = len(ds.test_users) > min(VERIFY_USERS, full_sample_size(ds))
    ds = ds.test_sample(VERIFY_USERS)
    # every user's top-10 when the data is small enough for full ranking, else full ranking's sample of test users
    top_users = ds.test_sample(full_sample_size(ds)).test_users if sampled else None
    metrics, top = evaluate_with_top_k(artifact, ds, users=top_users)
    src, src_top = evaluate_with_top_k(source, ds, users=top_users)
    users = np.repeat(ds.test_users, 1 + ds.test_negatives.shape[1])
    items = np.concatenate([ds.test_items[:, None], ds.test_negatives], axis=1).ravel()
    err = float(np.abs(np.asarray(artifact(users, items)) - np.asarray(source(users, items))).max())
    n = min(PARITY_BATCH, len(users))
    keys = ("hr@10", "ndcg@10", "full_hr@10", "full_ndcg@10")
    deltas = {k: float(metrics[k]) - float(src[k]) for k in keys}
    agreement = jaccard(top, src_top)
    parity = batch_parity(artifact, users[:n], items[:n])
    return Verification(
        metrics=metrics,
        source_metrics={k: src[k] for k in keys},
        deltas=deltas,
        agreement=agreement,
        verified_users=len(ds.test_users),
        agreement_users=ds.n_users if top_users is None else len(top_users),
        max_abs_score_error=err,
        batch_parity_max_diff=parity,
        parity_batch=n,
        verified_with=runtime,
        gate=bound.gate(what, deltas, agreement, parity, n),
    )
