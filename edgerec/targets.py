"""The table of export targets that export, runtime and bench all read, by key.

Importing this module imports nothing heavy: exporters and runtimes are named by "module:attribute" and imported
only when their target is chosen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgerec.errors import EdgerecError, shown


@dataclass(frozen=True)
class Target:
    name: str
    suffix: str  # model file suffix inside the artifact folder
    precisions: tuple[str, ...]
    scorers: dict[str, str]  # runtime package -> "module:class" scorer (numpy + that package only); first = default
    exporter: str  # "module:function" building the model file (needs the `export` extra)
    needs_gpu: bool
    dynamic_batch: bool  # False: one signature / profile per batch bucket
    # int8 calibration input: "spec" = edgerec's calibration result (the scales the compression gate measured),
    # "pairs" = calibration (user, item) pairs for the backend's own calibrator, "none" = weight-only int8
    calibration: str
    onnx_file: str | None  # the ONNX file in the artifact that `polygraphy check lint` must pass, if any
    readme: str | None = None  # "module:function" rendering README.md for the artifact from its manifest
    # runtime -> the runtime that verifies its artifacts at export, where the two cannot share an environment
    verified_in: dict[str, str] = field(default_factory=dict)
    model_path: str | None = None  # the model file's path in the folder, if not model<suffix>; {version} = model's

    def model_file(self, version: int) -> str:
        return self.model_path.format(version=version) if self.model_path else f"model{self.suffix}"

    def verify_runtime(self, runtime: str) -> str:
        return self.verified_in.get(runtime, runtime)

    def check_precision(self, precision: str) -> None:
        if precision not in self.precisions:
            raise EdgerecError(
                f"target {self.name} supports precision {', '.join(self.precisions)}; got {shown(precision)}"
            )

    @property
    def runtimes(self) -> tuple[str, ...]:
        return tuple(self.scorers)

    def check_runtime(self, runtime: str) -> None:
        if runtime not in self.runtimes:
            raise EdgerecError(f"target {self.name} runs on {', '.join(self.runtimes)}; got runtime {shown(runtime)}")


ONNX_SCORER = "edgerec.runtime.onnxrt:OnnxScorer"
TFLITE_SCORER = "edgerec.runtime.tflite:TFLiteScorer"

TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target(
            name="onnx",
            suffix=".onnx",
            precisions=("fp32", "fp16", "int8"),
            scorers={"onnxruntime": ONNX_SCORER},
            exporter="edgerec.exporters.onnx_graph:export",
            needs_gpu=False,
            dynamic_batch=True,
            calibration="spec",
            onnx_file="model.onnx",
        ),
        Target(
            name="tensorrt",
            suffix=".engine",
            precisions=("fp32", "fp16", "int8"),
            # onnxruntime runs the artifact's TensorRT-ready ONNX (all that can be verified without TensorRT)
            scorers={"tensorrt": "edgerec.runtime.tensorrt:TensorRTScorer", "onnxruntime": ONNX_SCORER},
            exporter="edgerec.exporters.tensorrt_engine:export",
            needs_gpu=True,
            dynamic_batch=False,
            calibration="spec",
            onnx_file="model.onnx",
        ),
        Target(
            name="onnx-server",
            suffix=".onnx",
            precisions=("fp32", "fp16"),
            scorers={"onnxruntime": "edgerec.runtime.server:ServerScorer"},
            exporter="edgerec.exporters.server_graph:export",
            needs_gpu=False,
            dynamic_batch=True,  # users [B] in, each one's top-K over the catalog out
            calibration="none",
            onnx_file="model.onnx",
        ),
        Target(
            name="triton",
            suffix=".onnx",
            precisions=("fp32", "fp16"),
            # the repository's ONNX in onnxruntime, as its python-backend model.py runs it inside Triton
            scorers={"onnxruntime": "edgerec.runtime.server:TritonScorer"},
            exporter="edgerec.exporters.triton_repo:export",
            needs_gpu=False,  # the tensorrt_plan backend's engines are built on the GPU host (else export-only)
            dynamic_batch=True,
            calibration="none",
            onnx_file=None,  # the exporter names it (recommend/<version>/model.onnx)
            readme="edgerec.exporters.triton_repo:readme",
            model_path="recommend/{version}/model.onnx",
        ),
        Target(
            name="tflite",
            suffix=".tflite",
            precisions=("fp32", "fp16", "int8-dynamic", "int8"),
            scorers={"ai-edge-litert": TFLITE_SCORER, "tflite-runtime": TFLITE_SCORER},
            # tflite-runtime needs numpy < 2, litert-torch numpy >= 2: the same flatbuffer is verified in LiteRT
            # (tests/test_legacy_tflite.py and benchmarks/legacy_tflite.py run it in tflite-runtime itself)
            verified_in={"tflite-runtime": "ai-edge-litert"},
            exporter="edgerec.exporters.tflite_model:export",
            needs_gpu=False,
            dynamic_batch=False,
            calibration="pairs",
            onnx_file=None,
        ),
        Target(
            name="tflite-bundle",
            suffix=".tflite",
            precisions=("fp32", "fp16", "int8"),
            scorers={"ai-edge-litert": "edgerec.runtime.bundle:BundleScorer"},
            exporter="edgerec.exporters.bundle:export",
            needs_gpu=False,
            dynamic_batch=True,  # one user per call against the whole catalog; no batch buckets
            calibration="none",  # int8 = weights and item constants only; compute stays float32
            onnx_file=None,
            readme="edgerec.exporters.bundle_readme:render",
        ),
    )
}


def target(name: str) -> Target:
    if name not in TARGETS:
        raise EdgerecError(f"target must be one of {', '.join(TARGETS)}; got {shown(name)}")
    return TARGETS[name]


def load_attr(ref: str):  # -> the module attribute named by "module:attribute"
    import importlib

    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)
