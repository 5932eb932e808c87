"""Target `onnx-server`: the server model as ONNX (users [B] in, each one's catalog top-K out, the item side
folded), run by onnxruntime (edgerec.runtime.onnx_server). The graph is built in edgerec.exporters.server_graph."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgerec.targets import ExportContext, Exported, Target

if TYPE_CHECKING:
    from edgerec.model.ncf import NCF

TARGET = Target(
    name="onnx-server",
    suffix=".onnx",
    precisions=("fp32", "fp16"),
    delegates=("cpu",),
    needs_gpu=False,
    dynamic_batch=True,  # users [B] in, each one's top-K over the catalog out
    calibration="none",
    onnx_file="model.onnx",
)


def export(model: NCF, ctx: ExportContext) -> Exported:
    from edgerec.exporters import server_graph

    return Exported(server_graph.export(model, ctx.precision, ctx.model_path))
