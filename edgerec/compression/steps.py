"""Compression as a list of steps (prune -> distill -> quantize), each measured against the teacher and gated; or
the ratio x precision search. Either way the result is a Checkpoint that carries its reports.

The compressed checkpoint holds the fp32 weights of the pruned / distilled model, its calibration result when
quantized (quant.json + quant.safetensors: what the exporters and `edgerec evaluate` run), compress.json (every
step's report against the teacher) and, after a search, search/candidates.{json,md} and search/pareto.png.

A feature model (edgerec.model.features.FeatureNCF) stays one through every step: pruning takes an embedding
dimension from the id table and its feature tables together, distillation trains the feature student with id dropout,
quantization reads it folded; the result carries the encoders, so `edgerec add-items` still works on it.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch

from edgerec.compression.config import CompressConfig, SearchConfig
from edgerec.compression.distill import distill
from edgerec.compression.gate import COMPRESS_JSON, Baseline, StepReport
from edgerec.compression.prune import prune
from edgerec.compression.quantize import QuantizedNCF, QuantSpec, calibrate, spec_files
from edgerec.compression.search import markdown_table, plot, search
from edgerec.compression.size import PrecisionPlan
from edgerec.data.split import Dataset
from edgerec.model.checkpoint import Checkpoint
from edgerec.model.config import TrainConfig
from edgerec.model.features import FeatureNCF
from edgerec.model.ncf import NCF, NCFArch
from edgerec.model.training import FitOptions, fit

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int, dict], None]


@dataclass
class CompressResult:
    model: NCF  # fp32 weights of the (pruned / distilled) model
    spec: QuantSpec | None
    reports: list[StepReport]


def run_steps(teacher: NCF, ds: Dataset, cfg: CompressConfig, progress: Progress | None = None) -> CompressResult:
    """prune (in cfg.prune.steps steps, recovering by distillation between them) -> distill -> quantize."""
    base = Baseline(teacher, ds)
    reports: list[StepReport] = []

    def measure(
        step: str, model: torch.nn.Module, fp32: NCF, plan: PrecisionPlan = PrecisionPlan(), gated: bool = True
    ) -> None:
        reports.append(base.measure(step, model, fp32, plan))
        if cfg.tolerance is not None and gated:
            reports[-1].gate(cfg.tolerance)

    model = teacher
    if cfg.prune:
        steps = cfg.prune.steps
        for s in range(1, steps + 1):
            model = prune(model, cfg.prune.step(s), ds)
            # a cut that distillation recovers next is measured, not gated: the recovered model is
            measure("prune" if steps == 1 else f"prune {s}/{steps}", model, model, gated=not cfg.distill)
            if cfg.distill and s < steps:  # recover before the next cut; the last recovery follows below
                model = distill(model, teacher, ds, cfg.distill, cfg.train, progress).model
                measure(f"distill {s}/{steps}", model, model)
    if cfg.student:
        factors, *layers = cfg.student
        torch.manual_seed(cfg.train.seed)
        arch = NCFArch.paper(teacher.arch.kind, ds.n_users, ds.n_items, factors, tuple(layers))
        model = FeatureNCF(arch, teacher.features) if isinstance(teacher, FeatureNCF) else NCF(arch)
    if cfg.distill:
        model = distill(model, teacher, ds, cfg.distill, cfg.train, progress).model
        measure("distill", model, model)
    spec = None
    if cfg.quantize:
        spec = calibrate(model, ds, cfg.quantize)
        measure("quantize", QuantizedNCF(model, spec), model, cfg.quantize.plan)
    return CompressResult(model, spec, reports)


def compress(teacher: Checkpoint, ds: Dataset, cfg: CompressConfig, progress: Progress | None = None) -> Checkpoint:
    """The compressed checkpoint (see the module docstring); a gate that fails raises GateFailed. A feature model
    gives a feature model; a rating model is refused."""
    teacher.require_implicit()
    ds = teacher.align(ds)
    info = {"teacher": str(teacher.path) if teacher.path else None, "teacher_weights_sha256": teacher.weights_sha256}
    if cfg.search is not None:
        return _search(teacher, ds, cfg.search, info, progress)
    result = run_steps(teacher.model, ds, cfg, progress)
    return _checkpoint(result.model, result.spec, ds, result.reports, info, {})


def _search(teacher: Checkpoint, ds: Dataset, cfg: SearchConfig, info: dict, progress: Progress | None) -> Checkpoint:
    candidates, chosen = search(teacher.model, ds, cfg, progress)
    rows = [c.row() for c in candidates]
    chosen_row = chosen.row()
    png = io.BytesIO()
    plot(rows, chosen_row, chosen.report.teacher["hr@10"], png)
    doc = {"objective": cfg.objective, "tolerance": cfg.tolerance.hr, "chosen": chosen_row, "candidates": rows}
    files = {
        "search/candidates.json": (json.dumps(doc, indent=2) + "\n").encode(),
        "search/candidates.md": markdown_table(rows, chosen_row).encode(),
        "search/pareto.png": png.getvalue(),
    }
    reports = [c.report for c in candidates]
    ck = _checkpoint(chosen.model, chosen.spec, ds, [chosen.report], {**info, "search": chosen_row}, files)
    ck.config["report"]["candidates"] = [r.to_json() for r in reports]
    return ck


def _checkpoint(
    model: NCF, spec: QuantSpec | None, ds: Dataset, reports: list[StepReport], info: dict, files: dict[str, bytes]
) -> Checkpoint:
    final = reports[-1]
    report = {
        "metrics": {
            **final.metrics,
            "protocol": "sampled-99-negatives-leave-one-out",
            "top10_agreement": final.agreement,
            "bytes": final.bytes,
        },
        "steps": [r.to_json() for r in reports],
    }
    files = {**files, COMPRESS_JSON: (json.dumps({**info, "steps": report["steps"]}, indent=2) + "\n").encode()}
    if spec is not None:
        files.update(spec_files(model, spec))
    return Checkpoint.create(model, ds, report, extra={"compression": info}, files=files)


def train_plain(student: NCF, ds: Dataset, cfg: TrainConfig) -> NCF:
    """The same student trained on the labels only: the baseline distillation must beat."""
    return fit(student, ds, cfg, FitOptions("plain")).model
