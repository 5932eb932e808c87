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
    # recommend over a shortlist: the S items whose GMF half plus item prior score highest, found in the graph and
    # re-ranked by the whole NeuMF (the MLP runs for S items, not the catalog); gated like a compressed table
    # (table_recall against the uncompressed model's exhaustive top-K). 0: recommend ranks the whole catalog
    shortlist: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    # precision int8 only: "int8" computes the catalog-wide MLP of recommend and score with int8 activations
    # (XNNPACK's integer kernels; calibrated on the model's user vectors), head and scores float32; "float"
    # dequantizes the int8 constants at load and computes in float32
    compute: Literal["float", "int8"] = "float"
    # how the per-item constants are stored (edgerec.exporters.item_tables): "int8" (G one scale, A one per column,
    # the prior float32), "int4", "pq" (product quantization: pq_gmf / pq_mlp subspaces, even numbers, of up to 256
    # centroids, two codes to an int16 word), or "auto":
    # the smallest of the candidates that passes the gate (and max_bytes); int4, pq and auto store the prior in 8 bits
    item_table: Literal["int8", "int4", "pq", "auto"] = "int8"
    pq_gmf: Annotated[int, Field(ge=1, le=256)] = 2  # subspaces of the folded GMF rows (even, must divide g)
    # subspaces of the item half of the first MLP layer (even, divide h0)
    pq_mlp: Annotated[int, Field(ge=1, le=1024)] = 8
    # pq: the rows of this many items of highest item prior (the most popular) kept exact: 4 (g + h0) bytes per head
    # item; each takes a value of the int16 code words, so the centroids per subspace are min(256, isqrt(32768 - H))
    pq_head: Annotated[int, Field(ge=0, le=32_512)] = 0
    # the gate of a compressed table: recall@K of recommend (and of retrieve + score) against the uncompressed
    # model's exhaustive top-K, on gate_users seeded users; a table below it is not written
    table_recall: Annotated[float, Field(ge=0.0, le=1.0)] = 0.95
    gate_users: Annotated[int, Field(ge=1, le=100_000)] = 200
    max_bytes: Annotated[int, Field(ge=1)] | None = None  # auto: the largest model.tflite it may choose

    def __post_init__(self) -> None:
        if self.compute == "int8" and self.item_table != "int8":
            raise ConfigError(
                f"BundleOptions: compute int8 reads the int8 item table; item_table {self.item_table} needs compute "
                "float"
            )
        if self.shortlist and self.item_table != "int8":
            raise ConfigError(
                f"BundleOptions: a shortlist reads the int8 item table; item_table {self.item_table} uses the "
                "two-stage path (retrieve + score) instead"
            )
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
