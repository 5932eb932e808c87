"""Target `tflite-bundle`: the phone bundle, the folded NeuMF as one TFLite model with named signatures
(recommend; score and retrieve with candidates), the server-side user vectors and the app's README (written by
edgerec.exporters.bundle), run by ai-edge-litert (edgerec.runtime.tflite_bundle)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field

from edgerec.config import config
from edgerec.errors import ConfigError
from edgerec.runtime.config import FoldInConfig
from edgerec.targets import ExportContext, Exported, Target

if TYPE_CHECKING:
    from edgerec.model.ncf import NCF


MAX_FOLD_IN_STEPS = 200  # each step is ~70 graph operators of the bundle


@config
class BundleOptions:
    # length of the `score` signature's candidate list, and of `retrieve`'s (0 = recommend only)
    candidates: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    # the on-device functions beside recommend: the `fold_in` and `explain` signatures (and the folded item side,
    # fp16, for the numpy explainers)
    explain: bool = False
    max_history: Annotated[int, Field(ge=2, le=4096)] = 128  # the longest history fold_in and explain take
    reasons: Annotated[int, Field(ge=1, le=20)] = 3  # history items per recommended item in `explain`
    # the on-device fold-in: full-batch Adam steps unrolled into the graph, over this many fixed negative items
    # (pull: fold_in_from's L2 toward the feature vectors it starts from, benchmarks/results/cold_users_bundle.md)
    fold_in: FoldInConfig = FoldInConfig(steps=40, lr=0.05, pull=0.1)
    fold_in_negatives: Annotated[int, Field(ge=1, le=100_000)] = 1024
    # precision int8 only: "int8" computes the catalog-wide MLP of recommend and score with int8 activations
    # (XNNPACK's integer kernels; calibrated on the model's user vectors), head and scores float32; "float"
    # dequantizes the int8 constants at load and computes in float32
    compute: Literal["float", "int8"] = "float"

    def __post_init__(self) -> None:
        if self.fold_in.steps > MAX_FOLD_IN_STEPS:
            raise ConfigError(
                f"BundleOptions: fold_in.steps are unrolled into the graph: at most {MAX_FOLD_IN_STEPS}; "
                f"got {self.fold_in.steps}"
            )


TARGET = Target(
    name="tflite-bundle",
    suffix=".tflite",
    precisions=("fp32", "fp16", "int8"),
    delegates=("xnnpack",),
    needs_gpu=False,
    dynamic_batch=True,  # one user per call against the whole catalog; no batch buckets
    calibration="none",  # int8 compute (an option) calibrates on the model's own user vectors, not on data
    onnx_file=None,
    options=BundleOptions,
)


def export(model: NCF, ctx: ExportContext) -> Exported:
    from edgerec.exporters import bundle

    return Exported(bundle.export(model, ctx.precision, ctx.model_path, ctx.options, user_features=ctx.user_features))


def readme(manifest: dict[str, Any]) -> str:
    from edgerec.exporters.bundle_readme import render

    return render(manifest)
