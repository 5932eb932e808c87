"""The export targets: one pair of same-named modules each, and the contract between them and the generic export.

A target `t` is `edgerec/exporters/<t>.py` (its `TARGET` record, its options config, `export(model, ctx) ->
Exported`, optionally `readme(manifest)`) beside `edgerec/runtime/<t>.py` (its `SCORERS`: runtime package ->
scorer class, the first the default). This module holds the index of names -> module pairs and reads both by name,
never by position. Importing it imports nothing heavy: a target's modules are imported when it is chosen, and
neither imports torch or a runtime package at import time. A target outside the package is added with `register`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

from edgerec.errors import EdgerecError, shown

if TYPE_CHECKING:
    import numpy as np

    from edgerec.compression.quantize import QuantSpec

# name -> (exporter module, runtime module)
INDEX: dict[str, tuple[str, str]] = {
    "onnx": ("edgerec.exporters.onnx", "edgerec.runtime.onnx"),
    "tensorrt": ("edgerec.exporters.tensorrt", "edgerec.runtime.tensorrt"),
    "onnx-server": ("edgerec.exporters.onnx_server", "edgerec.runtime.onnx_server"),
    "triton": ("edgerec.exporters.triton", "edgerec.runtime.triton"),
    "tflite": ("edgerec.exporters.tflite", "edgerec.runtime.tflite"),
    "tflite-bundle": ("edgerec.exporters.tflite_bundle", "edgerec.runtime.tflite_bundle"),
}


@dataclass(frozen=True)
class Target:
    """What the generic export, the profiles and bench need to know of a target; declared by its exporter module."""

    name: str
    suffix: str  # model file suffix inside the artifact folder
    precisions: tuple[str, ...]
    delegates: tuple[str, ...]  # what a profile's runtime.delegate may say for this target
    needs_gpu: bool
    dynamic_batch: bool  # False: one signature / profile per batch bucket
    # int8 calibration input: "spec" = edgerec's calibration result (the scales the compression gate measured),
    # "pairs" = calibration (user, item) pairs for the backend's own calibrator, "none" = weight-only int8
    calibration: Literal["spec", "pairs", "none"]
    onnx_file: str | None  # the ONNX file in the artifact that `polygraphy check lint` must pass, if any
    options: type | None = None  # the target's own options config (ExportConfig.options is one); None: none
    # runtime -> the runtime that verifies its artifacts at export, where the two cannot share an environment
    verified_in: dict[str, str] = field(default_factory=dict)
    model_path: str | None = None  # the model file's path in the folder, if not model<suffix>; {version} = model's

    def model_file(self, version: int) -> str:
        return self.model_path.format(version=version) if self.model_path else f"model{self.suffix}"

    def verify_runtime(self, runtime: str) -> str:
        return self.verified_in.get(runtime, runtime)

    @property
    def runtimes(self) -> tuple[str, ...]:
        """The runtime packages its runtime module has scorers for; the first is the default."""
        return tuple(runtime_module(self.name).SCORERS)

    def check_precision(self, precision: str) -> None:
        if precision not in self.precisions:
            raise EdgerecError(
                f"target {self.name} supports precision {', '.join(self.precisions)}; got {shown(precision)}"
            )

    def check_runtime(self, runtime: str) -> None:
        if runtime not in self.runtimes:
            raise EdgerecError(f"target {self.name} runs on {', '.join(self.runtimes)}; got runtime {shown(runtime)}")

    def option_names(self) -> tuple[str, ...]:
        return () if self.options is None else tuple(self.options.__dataclass_fields__)


@dataclass(frozen=True)
class ExportContext:
    """Everything an exporter gets besides the model: the settings resolved for this export."""

    precision: str
    folder: Path  # the artifact folder being written (temporary until the export is verified)
    model_path: Path  # where the model file goes, inside folder
    runtime: str
    buckets: tuple[int, ...]  # fixed-batch targets: resolved batch sizes (0 = catalog size already replaced)
    version: int  # the model's version (1, +1 per update)
    id_maps: dict[str, list]
    options: Any  # the target's options config
    spec: QuantSpec | None = None  # calibration "spec" targets at int8: the calibration result
    calib: tuple[np.ndarray, np.ndarray] | None = None  # calibration "pairs" targets: (users, items)
    # a feature model's user feature path (edgerec.data.features.FeaturePath): new users' vectors from their features
    user_features: Any = None


@dataclass(frozen=True)
class Exported:
    """What an exporter wrote: the manifest fields it adds, and where it could not finish here, an export-only
    outcome (`export_only` says why; the artifact then holds what could be verified: `model_file`, checked in
    `verify_runtime`)."""

    fields: dict[str, Any]
    export_only: str | None = None
    model_file: str | None = None  # default: the target's model_file(version)
    verify_runtime: str | None = None  # default: the target's verify_runtime(runtime)


def names() -> tuple[str, ...]:
    return tuple(INDEX)


def register(name: str, exporter: str, runtime: str) -> None:
    """Add a target whose two modules live outside the package (e.g. in an app's own code)."""
    if name in INDEX:
        raise EdgerecError(f"target {shown(name)} is already registered")
    INDEX[name] = (exporter, runtime)


def _pair(name: str) -> tuple[str, str]:
    if name not in INDEX:
        raise EdgerecError(f"target must be one of {', '.join(INDEX)}; got {shown(name)}")
    return INDEX[name]


def exporter_module(name: str) -> ModuleType:
    return importlib.import_module(_pair(name)[0])


def runtime_module(name: str) -> ModuleType:
    return importlib.import_module(_pair(name)[1])


def target(name: str) -> Target:
    t = exporter_module(name).TARGET
    if t.name != name:
        raise EdgerecError(f"{INDEX[name][0]} declares target {t.name!r}, registered as {name!r}")
    return t


def scorer_class(name: str, runtime: str) -> type:
    """The scorer of target `name` on `runtime` (read from its runtime module only: no exporter is imported)."""
    scorers = runtime_module(name).SCORERS
    if runtime not in scorers:
        raise EdgerecError(f"target {name} runs on {', '.join(scorers)}; got runtime {shown(runtime)}")
    return scorers[runtime]
