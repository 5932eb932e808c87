"""The server model (`--target onnx-server`): user ids in, the top-K items over the whole catalog out, in one ONNX
graph for onnxruntime (and TensorRT from the same file).

The folded NeuMF of edgerec.runtime.fold, with the user tables inside the graph:
    users int64 [B] -> Gather(user tables) -> p [B, g], q [B, d]
    scores [B, I] = p @ G^T + relu-MLP(A + (q @ Wu^T)[:, None, :]) @ wm + b       (the item side precomputed)
    top_scores, top_items = TopK(scores, K)
Per item: the GMF dot product, one add and the MLP layers after the first (688 MACs for NeuMF-8 instead of 2,704).
fp16 stores every constant in float16 and casts it to float32 once (half the bytes; the arithmetic stays float32 on
CPU). Outputs: top_items int64 [B, K], top_scores float32 [B, K] (logits, best first), scores float32 [B, I].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgerec.errors import EdgerecError
from edgerec.model.ncf import NCF
from edgerec.runtime.fold import fold, folded_macs

OPSET = 19
DEFAULT_K = 10


def build(model: NCF, precision: str, k: int = DEFAULT_K) -> onnx.ModelProto:
    arch = model.arch
    if arch.kind != "neumf":
        raise EdgerecError(f"the server model folds a NeuMF; this checkpoint is a {arch.kind.upper()}")
    if not 1 <= k <= arch.n_items:
        raise EdgerecError(f"k must lie in 1..{arch.n_items}; got {k}")
    weights = {name: t.detach().numpy().astype(np.float32) for name, t in model.state_dict().items()}
    f = fold(weights)
    dtype = np.float16 if precision == "fp16" else np.float32
    inits: list[onnx.TensorProto] = []
    nodes: list[onnx.NodeProto] = []

    def const(name: str, value: np.ndarray) -> str:
        half = dtype == np.float16
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=dtype), name + ("_h" if half else "")))
        if half:
            nodes.append(helper.make_node("Cast", [name + "_h"], [name], to=TensorProto.FLOAT))
        return name

    def node(op: str, inputs: list[str], output: str, **attrs: object) -> str:
        nodes.append(helper.make_node(op, inputs, [output], **attrs))
        return output

    user_gmf = const("user_gmf", weights["gmf_user.weight"])
    user_mlp = const("user_mlp", weights["mlp_user.weight"])
    p = node("Gather", [user_gmf, "users"], "p", axis=0)  # [B, g]
    q = node("Gather", [user_mlp, "users"], "q", axis=0)  # [B, d]
    gmf = node("MatMul", [p, const("G_t", f.G.T)], "gmf")  # [B, I]
    zu = node("MatMul", [q, const("Wu_t", f.Wu.T)], "zu")  # [B, h0]
    zu3 = node("Unsqueeze", [zu, _int64("axis1", [1], inits)], "zu3")  # [B, 1, h0]
    h = node("Relu", [node("Add", [zu3, const("A", f.A)], "z0")], "h0")  # [B, I, h0]
    h = node("Reshape", [h, _int64("rows", [-1, f.A.shape[1]], inits)], "h0_2d")  # [B * I, h0]: plain GEMMs
    for n, (w, b) in enumerate(f.layers, start=1):
        h = node("Relu", [node("Gemm", [h, const(f"W{n}", w), const(f"b{n}", b)], f"z{n}", transB=1)], f"h{n}")
    mlp_col = node("Gemm", [h, const("wm", f.wm[:, None])], "mlp_col")  # [B * I, 1]
    mlp = node("Reshape", [mlp_col, _int64("per_user", [-1, arch.n_items], inits)], "mlp")  # [B, I]
    scores = node("Add", [node("Add", [gmf, mlp], "sum"), const("bias", np.asarray([f.b]))], "scores")
    nodes.append(helper.make_node("TopK", [scores, _int64("k", [k], inits)], ["top_scores", "top_items"], axis=1))
    graph = helper.make_graph(
        nodes,
        "edgerec_neumf_server",
        [helper.make_tensor_value_info("users", TensorProto.INT64, ["B"])],
        [
            helper.make_tensor_value_info("top_items", TensorProto.INT64, ["B", k]),
            helper.make_tensor_value_info("top_scores", TensorProto.FLOAT, ["B", k]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["B", arch.n_items]),
        ],
        inits,
    )
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="edgerec")
    onnx_model.ir_version = 9
    onnx.checker.check_model(onnx_model, full_check=True)
    return onnx_model


def _int64(name: str, values: list[int], inits: list[onnx.TensorProto]) -> str:
    inits.append(numpy_helper.from_array(np.asarray(values, dtype=np.int64), name))
    return name


def export(model: NCF, precision: str, out: Path, *, k: int = DEFAULT_K, **_: object) -> dict:
    """Write out (model.onnx); return the manifest fields this target adds."""
    onnx.save_model(build(model, precision, k), str(out))
    return {
        "opset": OPSET,
        "batch": "dynamic",
        "inputs": ["users"],
        "outputs": ["top_items", "top_scores", "scores"],
        "k": k,
        "macs_per_item": folded_macs(model.arch),
    }
