"""Target `tflite-bundle`: the phone bundle, the folded NeuMF as one TFLite model with named signatures
(recommend; score and retrieve with candidates), the server-side user vectors and the app's README (written by
edgerec.exporters.bundle), run by ai-edge-litert (edgerec.runtime.tflite_bundle)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from edgerec.config import config
from edgerec.targets import ExportContext, Exported, Target

if TYPE_CHECKING:
    from edgerec.model.ncf import NCF


@config
class BundleOptions:
    # length of the `score` signature's candidate list, and of `retrieve`'s (0 = recommend only)
    candidates: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    # also ship the folded item side (fp16) for explanations and fold-in on the device
    explain: bool = False


TARGET = Target(
    name="tflite-bundle",
    suffix=".tflite",
    precisions=("fp32", "fp16", "int8"),
    delegates=("xnnpack",),
    needs_gpu=False,
    dynamic_batch=True,  # one user per call against the whole catalog; no batch buckets
    calibration="none",  # int8 = weights and item constants only; compute stays float32
    onnx_file=None,
    options=BundleOptions,
)


def export(model: NCF, ctx: ExportContext) -> Exported:
    from edgerec.exporters import bundle

    opts: BundleOptions = ctx.options
    return Exported(
        bundle.export(model, ctx.precision, ctx.model_path, candidates=opts.candidates, explain=opts.explain)
    )


def readme(manifest: dict[str, Any]) -> str:
    from edgerec.exporters.bundle_readme import render

    return render(manifest)
