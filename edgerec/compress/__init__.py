"""Compression: structured pruning, knowledge distillation, int8 calibration, each gated by ranking quality."""

from edgerec.compress.prune import PruneConfig, arch_of, prune

__all__ = ["PruneConfig", "arch_of", "prune"]
