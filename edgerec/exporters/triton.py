"""Target `triton`: a Triton model repository (recommend + score server models, their config.pbtxt, the feedback
model, manifest), written by edgerec.exporters.triton_repo; its options are the repository's TritonConfig.
Verified locally in onnxruntime as its python-backend model.py runs it (edgerec.runtime.triton)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgerec.serving.config import TritonConfig
from edgerec.targets import ExportContext, Exported, Target

if TYPE_CHECKING:
    from edgerec.model.ncf import NCF

TARGET = Target(
    name="triton",
    suffix=".onnx",
    precisions=("fp32", "fp16"),
    delegates=("cpu", "gpu"),
    needs_gpu=False,  # the tensorrt_plan backend's engines are built on the GPU host (else export-only)
    dynamic_batch=True,
    calibration="none",
    onnx_file=None,  # the exporter names it (recommend/<version>/model.onnx)
    options=TritonConfig,
    model_path="recommend/{version}/model.onnx",
)


def export(model: NCF, ctx: ExportContext) -> Exported:
    from edgerec.exporters import triton_repo

    fields = triton_repo.export(model, ctx.precision, ctx.model_path, ctx.options, ctx.version, ctx.id_maps)
    return Exported(fields, export_only=fields.pop("engine_missing", None))


def readme(manifest: dict[str, Any]) -> str:
    from edgerec.exporters import triton_repo

    return triton_repo.readme(manifest)
