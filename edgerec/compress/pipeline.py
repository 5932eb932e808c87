"""Compression as a list of steps (prune -> distill -> quantize), each measured against the teacher and gated.

`compress(teacher, ds, cfg)` returns the compressed fp32 model (pruned and/or distilled), the calibration result
when quantized, and one StepReport per step, all against the original teacher.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from edgerec.compress.distill import DistillConfig, distill
from edgerec.compress.gate import StepReport, Tolerance, compare
from edgerec.compress.prune import PruneConfig, prune
from edgerec.compress.quantize import QuantConfig, QuantizedNCF, QuantSpec, calibrate
from edgerec.compress.size import PrecisionPlan, macs_per_item, model_bytes
from edgerec.data.split import Dataset
from edgerec.errors import EdgerecError
from edgerec.metrics import catalog_top_k, evaluate
from edgerec.model.ncf import NCF, NCFArch
from edgerec.model.training import TrainConfig, fit, torch_scorer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CompressConfig:
    prune: PruneConfig | None = None
    distill: DistillConfig | None = None  # with prune: recovery fine-tuning of the pruned model
    student: tuple[int, tuple[int, ...]] | None = None  # (factors, layers) of a fresh student instead of pruning
    quantize: QuantConfig | None = None
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=10, patience=2))
    tolerance: Tolerance | None = None  # checked after every step

    def check(self) -> None:
        if self.prune and self.student:
            raise EdgerecError("choose either pruning or a fresh student, not both")
        if self.student and not self.distill:
            raise EdgerecError("a fresh student needs distillation settings (use train to train it without)")
        for part in (self.prune, self.distill, self.quantize, self.train):
            if part is not None:
                part.check()


@dataclass
class CompressResult:
    model: NCF  # fp32 weights of the (pruned / distilled) model
    spec: QuantSpec | None
    reports: list[StepReport]

    def scorer_model(self) -> torch.nn.Module:
        """The model whose scores were measured last (the quantized simulation when quantized)."""
        return QuantizedNCF(self.model, self.spec) if self.spec else self.model


def compress(
    teacher: NCF,
    ds: Dataset,
    cfg: CompressConfig,
    progress: Callable[[str, int, int, dict], None] | None = None,
) -> CompressResult:
    cfg.check()
    teacher = teacher.eval()
    t_scorer = torch_scorer(teacher)
    t_metrics = evaluate(t_scorer, ds)
    t_top = catalog_top_k(t_scorer, ds)
    t_bytes, t_macs = model_bytes(teacher), macs_per_item(teacher.arch)
    reports: list[StepReport] = []

    def measure(step: str, model: torch.nn.Module, arch: NCFArch, plan: PrecisionPlan, fp32: NCF) -> None:
        rep = compare(
            step,
            torch_scorer(model),
            t_scorer,
            ds,
            sizes=(model_bytes(fp32, plan), t_bytes),
            macs=(macs_per_item(arch), t_macs),
            teacher_metrics=t_metrics,
            teacher_top=t_top,
        )
        log.info(
            "%s: HR@10 %+.4f  NDCG@10 %+.4f  agreement %.3f  %.1f%% of the bytes",
            step,
            rep.deltas["hr@10"],
            rep.deltas["ndcg@10"],
            rep.agreement,
            100 * rep.bytes / t_bytes,
        )
        reports.append(rep)
        if cfg.tolerance is not None:
            rep.gate(cfg.tolerance)

    model = teacher
    if cfg.prune:
        model = prune(teacher, cfg.prune, ds)
        measure("prune", model, model.arch, PrecisionPlan(), model)
    if cfg.student:
        factors, layers = cfg.student
        torch.manual_seed(cfg.train.seed)
        model = NCF(NCFArch.paper(teacher.arch.kind, ds.n_users, ds.n_items, factors, layers))
    if cfg.distill:
        model = distill(model, teacher, ds, cfg.distill, cfg.train, progress).model
        measure("distill", model, model.arch, PrecisionPlan(), model)
    spec = None
    if cfg.quantize:
        spec = calibrate(model, ds, cfg.quantize)
        measure("quantize", QuantizedNCF(model, spec), model.arch, cfg.quantize.plan, model)
    return CompressResult(model, spec, reports)


def train_plain(student: NCF, ds: Dataset, cfg: TrainConfig) -> NCF:
    """The same student trained on the labels only: the baseline distillation must beat."""
    return fit(student, ds, cfg, stage="plain").model
