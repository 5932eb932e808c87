"""Verification of an artifact in its own runtime against the fp32 source model, and the tolerance gate."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from edgerec.data.split import Dataset
from edgerec.errors import EdgerecError
from edgerec.metrics import Scorer, catalog_top_k, evaluate, jaccard

PARITY_BATCH = 1000


@dataclass(frozen=True)
class ExportTolerance:
    """Largest allowed |delta| of HR@10 / NDCG@10 against the fp32 source, lowest top-10 agreement (mean Jaccard
    over the catalog), and largest allowed difference between a row scored in a batch of 1,000 and alone."""

    hr: float = 0.005
    ndcg: float | None = None
    agreement: float | None = None
    parity: float = 1e-5

    @classmethod
    def for_precision(cls, precision: str) -> ExportTolerance:
        return cls(hr=0.001) if precision in ("fp32", "fp16") else cls(hr=0.005)


def batch_parity(scorer: Scorer, users: np.ndarray, items: np.ndarray) -> float:
    """Max |score in one batch - score alone| over the pairs (a known bug class of batched embedding kernels)."""
    batch = np.asarray(scorer(users, items))
    alone = np.array([np.asarray(scorer(users[k : k + 1], items[k : k + 1]))[0] for k in range(len(users))])
    return float(np.abs(batch - alone).max())


def verify(artifact: Scorer, source: Scorer, ds: Dataset) -> dict:
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


def gate(report: dict, tol: ExportTolerance, what: str) -> None:
    """Raise a one-line EdgerecError when the verification report exceeds the tolerance."""
    d = report["deltas"]
    if abs(d["hr@10"]) > tol.hr:
        raise EdgerecError(f"{what}: HR@10 moved by {d['hr@10']:+.4f} against the fp32 source (tolerance {tol.hr})")
    if tol.ndcg is not None and abs(d["ndcg@10"]) > tol.ndcg:
        raise EdgerecError(f"{what}: NDCG@10 moved by {d['ndcg@10']:+.4f} (tolerance {tol.ndcg})")
    if tol.agreement is not None and report["agreement"] < tol.agreement:
        raise EdgerecError(f"{what}: top-10 agreement {report['agreement']:.3f} is below {tol.agreement}")
    if report["batch_parity_max_diff"] > tol.parity:
        raise EdgerecError(
            f"{what}: scores depend on the batch (max difference {report['batch_parity_max_diff']:.2e} between a "
            f"batch of {report['parity_batch']} and single rows; tolerance {tol.parity})"
        )


def tolerance_json(tol: ExportTolerance) -> dict:
    return asdict(tol)
