"""The settings of an export (torch-free): target, precision, runtime, batch buckets, calibration, parity bound."""

from __future__ import annotations

from dataclasses import field
from typing import Annotated, Any

from pydantic import Field

from edgerec.compression.config import DEFAULT_OBSERVER, Observer
from edgerec.config import config
from edgerec.errors import ConfigError, EdgerecError
from edgerec.gates import ParityBound
from edgerec.limits import MAX_BATCH
from edgerec.serving.config import TritonConfig
from edgerec.targets import target

DEFAULT_BUCKETS = (1, 1000, 0)  # 0 = the catalog size: one user against every item in one call


@config
class ExportConfig:
    target: str = "tflite"  # a key of edgerec.targets.TARGETS
    precision: str = "fp32"  # one of the target's precisions
    runtime: str | None = None  # default: the target's first runtime
    buckets: tuple[Annotated[int, Field(ge=0, le=MAX_BATCH)], ...] = (
        DEFAULT_BUCKETS  # fixed-batch targets; 0 = catalog size
    )
    calibration_size: Annotated[int, Field(ge=64, le=10_000_000)] = 20_000
    observer: Observer = DEFAULT_OBSERVER  # when the checkpoint has no calibration result of its own
    seed: int = 0
    threads: Annotated[int, Field(ge=1, le=256)] = 1  # runtime threads during verification
    tolerance: ParityBound | None = None  # default: ParityBound.for_precision(precision)
    # tflite-bundle: length of the `score` signature's candidate list (0 = recommend only)
    candidates: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    # tflite-bundle: also ship the folded item side (fp16) for explanations and fold-in on the device
    explain: bool = False
    triton: TritonConfig = TritonConfig()  # target triton: backend, instances, batching, K of the repository
    extra: dict[str, Any] = field(default_factory=dict)  # recorded in the manifest (e.g. the profile)

    def __post_init__(self) -> None:
        try:
            t = target(self.target)
            t.check_precision(self.precision)
            t.check_runtime(self.runtime or t.runtimes[0])
        except EdgerecError as e:
            raise ConfigError(f"ExportConfig: {e}") from None
        if self.explain and self.target != "tflite-bundle":
            raise ConfigError("ExportConfig: explain applies to the tflite-bundle target only")
        if self.triton != TritonConfig() and self.target != "triton":
            raise ConfigError("ExportConfig: triton settings apply to the triton target only")
        if not self.buckets:
            raise ConfigError("ExportConfig: buckets must name at least one batch size (0 = catalog size)")

    @property
    def bound(self) -> ParityBound:
        return self.tolerance or ParityBound.for_precision(self.precision)

    @property
    def resolved_runtime(self) -> str:
        return self.runtime or target(self.target).runtimes[0]
