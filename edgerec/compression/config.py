"""The configs of compression: pruning, distillation, quantization, the ratio x precision search, and the whole.

Torch-free (validated at construction, see edgerec.config): `edgerec.CompressConfig(...)` and the CLI build them
without importing a backend.
"""

from __future__ import annotations

from dataclasses import field, replace
from typing import Annotated, Literal

from pydantic import Field

from edgerec.config import config
from edgerec.errors import ConfigError
from edgerec.gates import DropTolerance
from edgerec.model.config import TrainConfig, fine_tune_config

Ratio = Annotated[float, Field(ge=0.0, lt=1.0)]
Positive = Annotated[float, Field(gt=0.0)]
NonNegative = Annotated[float, Field(ge=0.0)]
Importance = Literal["l1", "l2", "taylor", "random"]
Observer = Literal["minmax", "percentile", "entropy"]
EmbeddingPrecision = Literal["fp32", "fp16", "int8", "int4"]
MlpPrecision = Literal["fp32", "fp16", "int8"]
EMBEDDING_PRECISIONS: tuple[EmbeddingPrecision, ...] = ("fp32", "fp16", "int8", "int4")
MLP_PRECISIONS: tuple[MlpPrecision, ...] = ("fp32", "fp16", "int8")
# The one int8 calibration observer default (compression and export): percentile kept HR@10 best in the compression
# benchmark (ML-1M NeuMF-8: -0.0025 vs minmax -0.0041, benchmarks/results/compression.md)
DEFAULT_OBSERVER: Observer = "percentile"
FINE_TUNE_EPOCHS = 10  # distillation / recovery fine-tuning epochs (early stopping), search and steps alike
DEFAULT_CALIBRATION_SIZE = 20_000  # int8 calibration (user, item) pairs, compression and export alike


@config
class PruneConfig:
    """Fraction of channels to remove per component, each in [0, 1)."""

    mlp: Ratio = 0.5  # hidden channels of every MLP layer
    gmf: Ratio = 0.5  # GMF embedding dimensions (user and item together)
    mlp_embedding: Ratio = 0.5  # MLP embedding dimensions, user and item tables each
    importance: Importance = "l2"  # l1 | l2 (weight magnitude) | taylor (|w * dL/dw| on training data) | random
    # training samples for the taylor criterion and for the MLP channels' activity (edgerec.compression.prune)
    taylor_samples: Annotated[int, Field(ge=1)] = 65536
    seed: int = 0
    # iterative pruning: reach the ratios in this many equal steps of the original widths (2 steps of 50 %: 75 %,
    # then 50 %), with distillation recovery after each when distilling. ML-1M NeuMF-8, 50 %: one step -0.0137
    # HR@10, two steps -0.0096 (benchmarks/results/prune_recovery.md)
    steps: Annotated[int, Field(ge=1, le=10)] = 1

    @classmethod
    def uniform(cls, ratio: float, **kwargs: object) -> PruneConfig:
        """The same ratio for every component."""
        return cls(mlp=ratio, gmf=ratio, mlp_embedding=ratio, **kwargs)  # type: ignore[arg-type]

    def step(self, s: int) -> PruneConfig:
        """The ratios of step s (1-based) that take the widths left by step s - 1 to 1 - ratio * s / steps of the
        original ones."""
        if self.steps == 1:
            return self

        def part(r: float) -> float:
            before, after = 1 - r * (s - 1) / self.steps, 1 - r * s / self.steps
            return 1 - after / before

        return replace(self, mlp=part(self.mlp), gmf=part(self.gmf), mlp_embedding=part(self.mlp_embedding), steps=1)


@config
class DistillConfig:
    weight: NonNegative = 1.0  # weight of the score-distillation term (0 = plain training on labels)
    temperature: Positive = 1.0  # softens both score distributions; the term is scaled by T^2
    rank_k: Annotated[int, Field(ge=0)] = 0  # ranking distillation: the teacher's top-K unseen items per user (0 = off)
    rank_weight: NonNegative = 0.1
    rank_lambda: Positive = 3.0  # position decay of the top-K sampling weights


@config
class PrecisionPlan:
    embeddings: EmbeddingPrecision = "fp32"
    mlp: MlpPrecision = "fp32"  # MLP layers and the prediction layer


@config
class QuantConfig:
    embeddings: EmbeddingPrecision = "int8"  # row-wise
    mlp: MlpPrecision = "int8"  # per-channel weights, per-tensor calibrated inputs
    observer: Observer = DEFAULT_OBSERVER
    percentile: Annotated[float, Field(gt=0.0, le=100.0)] = 99.99
    calibration_size: Annotated[int, Field(ge=64, le=10_000_000)] = DEFAULT_CALIBRATION_SIZE
    seed: int = 0

    @property
    def plan(self) -> PrecisionPlan:
        return PrecisionPlan(embeddings=self.embeddings, mlp=self.mlp)


@config
class SearchConfig:
    """Pruning ratio x precision grid; the smallest candidate (by `objective`) within `tolerance` is kept."""

    tolerance: DropTolerance = DropTolerance(hr=0.01)
    objective: Literal["bytes", "macs"] = "bytes"
    ratios: tuple[Ratio, ...] = (0.0, 0.25, 0.5, 0.75)  # applied to MLP channels, GMF and MLP embeddings alike
    embeddings: tuple[EmbeddingPrecision, ...] = ("fp32", "int8", "int4")
    mlp: tuple[MlpPrecision, ...] = MLP_PRECISIONS
    importance: Importance = "l2"
    distill: DistillConfig = DistillConfig()
    train: TrainConfig = field(default_factory=lambda: fine_tune_config(FINE_TUNE_EPOCHS))
    quant: QuantConfig = QuantConfig()  # observer and calibration size; the precisions come from the grid

    def __post_init__(self) -> None:
        if not (self.ratios and self.embeddings and self.mlp):
            raise ConfigError("SearchConfig: ratios, embeddings and mlp must each name at least one value")


@config
class CompressConfig:
    """prune -> distill -> quantize, each step measured against the teacher and gated by `tolerance`; or, with
    `search`, the ratio x precision search instead."""

    prune: PruneConfig | None = None
    distill: DistillConfig | None = None  # with prune: recovery fine-tuning of the pruned model
    student: tuple[int, ...] | None = None  # a fresh student instead of pruning: predictive factors, then MLP layers
    quantize: QuantConfig | None = None
    train: TrainConfig = field(default_factory=lambda: fine_tune_config(FINE_TUNE_EPOCHS))
    # checked after every step whose model is kept (None: measured, not gated); a pruning cut that distillation
    # recovers next is measured only, and the recovered model is gated
    tolerance: DropTolerance | None = None
    search: SearchConfig | None = None

    def __post_init__(self) -> None:
        if self.search is not None and (self.prune or self.distill or self.student or self.quantize):
            raise ConfigError("CompressConfig: `search` chooses pruning and precision itself; give it alone")
        if self.prune and self.student:
            raise ConfigError("CompressConfig: choose either pruning or a fresh student, not both")
        if self.student is not None and not self.distill:
            raise ConfigError("CompressConfig: a fresh student needs distillation settings (`distill`)")
        if self.student is not None and (len(self.student) < 3 or min(self.student) < 1):
            raise ConfigError(
                f"CompressConfig: `student` is predictive factors then MLP layers, e.g. (4, 32, 16, 8); got "
                f"{self.student}"
            )
        if self.search is None and not (self.prune or self.distill or self.quantize):
            raise ConfigError("CompressConfig: nothing to do: give prune, distill (with a student), quantize or search")
