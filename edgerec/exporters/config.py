"""The settings of an export (torch-free): the fields every target shares, plus `options`, the chosen target's own
options config (its exporter module declares it: edgerec.targets)."""

from __future__ import annotations

from dataclasses import field
from typing import Annotated, Any

from pydantic import Field

from edgerec.compression.config import DEFAULT_CALIBRATION_SIZE, DEFAULT_OBSERVER, Observer
from edgerec.config import config
from edgerec.errors import ConfigError, EdgerecError
from edgerec.gates import ParityBound
from edgerec.limits import MAX_BATCH
from edgerec.targets import target

DEFAULT_BUCKETS = (1, 1000, 0)  # 0 = the catalog size: one user against every item in one call


@config
class ExportConfig:
    target: str = Field("tflite", description="export target (edgerec.targets.names())")
    precision: str = Field("fp32", description="one of the target's precisions")
    runtime: str | None = Field(None, description="runtime package; default: the target's first runtime")
    buckets: tuple[Annotated[int, Field(ge=0, le=MAX_BATCH)], ...] = Field(
        DEFAULT_BUCKETS, description="batch sizes of fixed-batch targets; 0 = catalog size"
    )
    calibration_size: Annotated[int, Field(ge=64, le=10_000_000)] = Field(
        DEFAULT_CALIBRATION_SIZE, description="calibration (user, item) pairs for int8"
    )
    observer: Observer = Field(
        DEFAULT_OBSERVER, description="int8 ONNX / TensorRT calibration when the checkpoint has none of its own"
    )
    seed: int = 0
    threads: Annotated[int, Field(ge=1, le=256)] = Field(1, description="runtime threads during verification")
    tolerance: ParityBound | None = Field(None, description="default: ParityBound.for_precision(precision)")
    options: Any = Field(None, description="the target's options: its config, a mapping of its fields, or null")
    extra: dict[str, Any] = field(default_factory=dict)  # recorded in the manifest (e.g. the profile)

    def __post_init__(self) -> None:
        try:
            t = target(self.target)
            t.check_precision(self.precision)
            t.check_runtime(self.runtime or t.runtimes[0])
        except EdgerecError as e:
            raise ConfigError(f"ExportConfig: {e}") from None
        if not self.buckets:
            raise ConfigError("ExportConfig: buckets must name at least one batch size (0 = catalog size)")
        object.__setattr__(self, "options", target_options(t.name, self.options, "ExportConfig: "))

    @property
    def bound(self) -> ParityBound:
        return self.tolerance or ParityBound.for_precision(self.precision)

    @property
    def resolved_runtime(self) -> str:
        return self.runtime or target(self.target).runtimes[0]


def target_options(name: str, given: Any, where: str = "") -> Any:
    """`given` (None, a mapping, or the options config itself) as target `name`'s options config; an option the
    target does not have is named with the ones it has."""
    t = target(name)
    if given is None:
        return None if t.options is None else t.options()
    if t.options is not None and isinstance(given, t.options):
        return given
    if not isinstance(given, dict):
        raise ConfigError(
            f"{where}options of target {name} must be a mapping of its fields; got {type(given).__name__}"
        )
    unknown = [k for k in given if k not in t.option_names()]
    if unknown:
        has = f"its options: {', '.join(t.option_names())}" if t.option_names() else "it has no options"
        raise ConfigError(f"{where}target {name} has no option `{unknown[0]}` ({has})")
    if t.options is None:  # an empty mapping for a target that has no options
        return None
    try:
        return t.options(**given)
    except ConfigError as e:
        raise ConfigError(f"{where}target {name}: {e}") from None
