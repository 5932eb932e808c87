"""Target `onnx`: the NeuMF graph as ONNX (fp32, fp16, int8 Q/DQ with edgerec's calibration), dynamic batch,
run by onnxruntime (edgerec.runtime.onnx). The graph itself is built in edgerec.exporters.onnx_graph."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgerec.targets import ExportContext, Exported, Target

if TYPE_CHECKING:
    from edgerec.model.ncf import NCF

TARGET = Target(
    name="onnx",
    suffix=".onnx",
    precisions=("fp32", "fp16", "int8"),
    delegates=("cpu",),
    needs_gpu=False,
    dynamic_batch=True,
    calibration="spec",
    onnx_file="model.onnx",
)


def export(model: NCF, ctx: ExportContext) -> Exported:
    from edgerec.exporters import onnx_graph

    return Exported(onnx_graph.export(model, ctx.precision, ctx.model_path, spec=ctx.spec))
