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
from edgerec.compress.gate import Baseline, StepReport, Tolerance
from edgerec.compress.prune import PruneConfig, prune
from edgerec.compress.quantize import QuantConfig, QuantizedNCF, QuantSpec, calibrate
from edgerec.compress.size import PrecisionPlan
from edgerec.data.split import Dataset
from edgerec.errors import EdgerecError
from edgerec.model.config import TrainConfig, fine_tune_config
from edgerec.model.ncf import NCF, NCFArch
from edgerec.model.training import fit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CompressConfig:
    prune: PruneConfig | None = None
    distill: DistillConfig | None = None  # with prune: recovery fine-tuning of the pruned model
    student: tuple[int, tuple[int, ...]] | None = None  # (factors, layers) of a fresh student instead of pruning
    quantize: QuantConfig | None = None
    train: TrainConfig = field(default_factory=lambda: fine_tune_config(10))
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
    base = Baseline(teacher, ds)
    reports: list[StepReport] = []

    def measure(step: str, model: torch.nn.Module, fp32: NCF, plan: PrecisionPlan = PrecisionPlan()) -> None:
        reports.append(base.measure(step, model, fp32, plan))
        if cfg.tolerance is not None:
            reports[-1].gate(cfg.tolerance)

    model = teacher
    if cfg.prune:
        steps = cfg.prune.steps
        for s in range(1, steps + 1):
            model = prune(model, cfg.prune.step(s), ds)
            measure("prune" if steps == 1 else f"prune {s}/{steps}", model, model)
            if cfg.distill and s < steps:  # recover before the next cut; the last recovery follows below
                model = distill(model, teacher, ds, cfg.distill, cfg.train, progress).model
                measure(f"distill {s}/{steps}", model, model)
    if cfg.student:
        factors, layers = cfg.student
        torch.manual_seed(cfg.train.seed)
        model = NCF(NCFArch.paper(teacher.arch.kind, ds.n_users, ds.n_items, factors, layers))
    if cfg.distill:
        model = distill(model, teacher, ds, cfg.distill, cfg.train, progress).model
        measure("distill", model, model)
    spec = None
    if cfg.quantize:
        spec = calibrate(model, ds, cfg.quantize)
        measure("quantize", QuantizedNCF(model, spec), model, cfg.quantize.plan)
    return CompressResult(model, spec, reports)


def train_plain(student: NCF, ds: Dataset, cfg: TrainConfig) -> NCF:
    """The same student trained on the labels only: the baseline distillation must beat."""
    return fit(student, ds, cfg, stage="plain").model
