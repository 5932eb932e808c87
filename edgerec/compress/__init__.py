"""Compression: structured pruning, knowledge distillation, int8 calibration, each gated by ranking quality."""

from edgerec.compress.distill import DistillConfig, distill, distillation_loss
from edgerec.compress.gate import StepReport, Tolerance, compare
from edgerec.compress.prune import PruneConfig, arch_of, prune
from edgerec.compress.size import PrecisionPlan, macs_per_item, model_bytes

__all__ = [
    "DistillConfig",
    "PrecisionPlan",
    "PruneConfig",
    "StepReport",
    "Tolerance",
    "arch_of",
    "compare",
    "distill",
    "distillation_loss",
    "macs_per_item",
    "model_bytes",
    "prune",
]
