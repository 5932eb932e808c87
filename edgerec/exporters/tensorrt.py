"""Target `tensorrt`: a TensorRT engine per batch bucket, built from the TensorRT-ready ONNX (edgerec.exporters.
tensorrt_engine). Where TensorRT or a GPU is missing the export is export-only: the ONNX, verified in onnxruntime,
and trtexec.sh, the command that builds the engine on the GPU host."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgerec.targets import ExportContext, Exported, Target

if TYPE_CHECKING:
    from edgerec.model.ncf import NCF

TARGET = Target(
    name="tensorrt",
    suffix=".engine",
    precisions=("fp32", "fp16", "int8"),
    delegates=("gpu",),
    needs_gpu=True,
    dynamic_batch=False,
    calibration="spec",
    onnx_file="model.onnx",
)


def export(model: NCF, ctx: ExportContext) -> Exported:
    from edgerec.exporters.tensorrt_engine import ONNX_FILE, EngineUnavailable
    from edgerec.exporters.tensorrt_engine import export as build

    try:
        return Exported(build(model, ctx.precision, ctx.model_path, buckets=list(ctx.buckets), spec=ctx.spec))
    except EngineUnavailable as e:
        fields = {
            "buckets": list(ctx.buckets),
            "inputs": ["users", "items"],
            "output": "scores",
            "onnx_file": ONNX_FILE,
        }
        return Exported(fields, export_only=str(e), model_file=ONNX_FILE, verify_runtime="onnxruntime")
