"""Target `tflite`: a TFLite model with one signature per batch bucket (litert-torch converts, the quantizer
quantizes: edgerec.exporters.tflite_model), run by ai-edge-litert or the legacy tflite-runtime 2.14."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgerec.targets import ExportContext, Exported, Target

if TYPE_CHECKING:
    from edgerec.model.ncf import NCF

TARGET = Target(
    name="tflite",
    suffix=".tflite",
    precisions=("fp32", "fp16", "int8-dynamic", "int8"),
    delegates=("xnnpack", "none"),
    needs_gpu=False,
    dynamic_batch=False,
    calibration="pairs",
    onnx_file=None,
    # tflite-runtime needs numpy < 2, litert-torch numpy >= 2: the same flatbuffer is verified in LiteRT
    # (tests/test_legacy_tflite.py and benchmarks/legacy_tflite.py run it in tflite-runtime itself)
    verified_in={"tflite-runtime": "ai-edge-litert"},
)


def export(model: NCF, ctx: ExportContext) -> Exported:
    from edgerec.exporters import tflite_model

    if ctx.calib is None:
        raise ValueError("the tflite target needs calibration pairs")
    return Exported(
        tflite_model.export(model, ctx.precision, ctx.model_path, buckets=list(ctx.buckets), runtime=ctx.runtime,
                            calib=ctx.calib)
    )  # fmt: skip
