"""What every compression step reports against its teacher; its gate is a DropTolerance (edgerec.gates)."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
from torch import nn

from edgerec.compression.size import PrecisionPlan, macs_per_item, model_bytes
from edgerec.data.split import Dataset
from edgerec.gates import DropTolerance, GateResult
from edgerec.metrics import ScoreFn, agreement_users, evaluate_with_top_k, jaccard
from edgerec.model.features import fold
from edgerec.model.ncf import NCF
from edgerec.model.training import torch_scorer

log = logging.getLogger(__name__)

METRIC_KEYS = ("hr@10", "ndcg@10", "full_hr@10", "full_ndcg@10")
COMPRESS_JSON = "compress.json"  # a compressed checkpoint's step reports against its teacher


@dataclass(frozen=True)
class StepReport:
    step: str
    metrics: dict[str, float]
    teacher: dict[str, float]
    agreement: float
    bytes: int
    teacher_bytes: int
    macs_per_item: int
    teacher_macs_per_item: int
    agreement_users: int = 0  # the users whose catalog top-10 lists were compared

    @property
    def deltas(self) -> dict[str, float]:
        return {k: self.metrics[k] - self.teacher[k] for k in METRIC_KEYS}

    def to_json(self) -> dict:
        return {**asdict(self), "deltas": self.deltas, "size_ratio": self.bytes / self.teacher_bytes}

    def measure_gate(self, tol: DropTolerance) -> GateResult:
        """This step against its teacher under the tolerance."""
        return tol.gate(self.step, self.metrics, self.teacher, self.agreement)

    def gate(self, tol: DropTolerance) -> None:
        """Raise GateFailed (carrying this report) when a metric fell beyond the tolerance."""
        self.measure_gate(tol).enforce(self)


def compare(
    step: str,
    scorer: ScoreFn,
    teacher_scorer: ScoreFn,
    ds: Dataset,
    *,
    sizes: tuple[int, int],
    macs: tuple[int, int],
    teacher_metrics: dict | None = None,
    teacher_top: np.ndarray | None = None,
) -> StepReport:
    """Measure a compressed scorer against its teacher on both protocols plus top-10 agreement over all users
    (over full ranking's seeded sample of test users when users x items is beyond it: metrics.agreement_users).

    sizes and macs are (compressed, teacher). teacher_metrics and teacher_top (its catalog top-10 lists of
    agreement_users(ds)) may be passed to avoid re-scoring the teacher.
    """
    users = agreement_users(ds)
    if teacher_metrics is None or teacher_top is None:
        teacher_metrics, teacher_top = evaluate_with_top_k(teacher_scorer, ds, users=users)
    metrics, top = evaluate_with_top_k(scorer, ds, users=users)
    return StepReport(
        step=step,
        metrics={k: float(metrics[k]) for k in METRIC_KEYS},
        teacher={k: float(teacher_metrics[k]) for k in METRIC_KEYS},
        agreement=jaccard(top, teacher_top),
        agreement_users=ds.n_users if users is None else len(users),
        bytes=sizes[0],
        teacher_bytes=sizes[1],
        macs_per_item=macs[0],
        teacher_macs_per_item=macs[1],
    )


class Baseline:
    """A teacher measured once (metrics on both protocols, catalog top-10 lists, bytes, MACs); every compressed
    candidate is then compared against it without re-scoring the teacher."""

    def __init__(self, teacher: NCF, ds: Dataset) -> None:
        self.ds = ds
        self.scorer = torch_scorer(fold(teacher).eval())  # a feature model scores as its folded NeuMF, faster
        self.metrics, self.top = evaluate_with_top_k(self.scorer, ds, users=agreement_users(ds))
        self.bytes, self.macs = model_bytes(teacher), macs_per_item(teacher.arch)

    def measure(self, step: str, model: nn.Module, fp32: NCF, plan: PrecisionPlan = PrecisionPlan()) -> StepReport:
        """Compare `model` (fp32, or a quantized simulation of `fp32` under `plan`) with the teacher."""
        rep = compare(
            step,
            torch_scorer(fold(model) if isinstance(model, NCF) else model),
            self.scorer,
            self.ds,
            sizes=(model_bytes(fp32, plan), self.bytes),
            macs=(macs_per_item(fp32.arch), self.macs),
            teacher_metrics=self.metrics,
            teacher_top=self.top,
        )
        log.info(
            "%s: HR@10 %.4f (%+.4f)  NDCG@10 %.4f (%+.4f)  agreement %.3f  %.1f%% of the bytes",
            step,
            rep.metrics["hr@10"],
            rep.deltas["hr@10"],
            rep.metrics["ndcg@10"],
            rep.deltas["ndcg@10"],
            rep.agreement,
            100 * rep.bytes / self.bytes,
        )
        return rep
