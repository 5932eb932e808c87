"""The server models, user ids in, in ONNX for onnxruntime (and TensorRT from the same files):

- recommend (`--target onnx-server`, and `recommend` in a Triton repository): the top-K items over the catalog;
- score (`score` in a Triton repository): the scores of each user's own candidate list.

Both are the folded NeuMF of edgerec.runtime.fold, with the user tables inside the graph:
    users int64 [B] -> Gather(user tables) -> p [B, g], q [B, d]
    recommend: scores [B, I] = p @ G^T + relu-MLP(A + (q @ Wu^T)[:, None, :]) @ wm + b  (the item side precomputed)
               top_scores, top_items = TopK(scores, K)
    score:     items int64 [B, N] -> the same sum over the gathered rows G[items], A[items] -> scores [B, N]
Per item: the GMF dot product, one add and the MLP layers after the first (688 MACs for NeuMF-8 instead of 2,704).
fp16 stores every constant in float16 and casts it to float32 once (half the bytes; the arithmetic stays float32 on
CPU). recommend's outputs: top_items int64 [B, K], top_scores float32 [B, K] (logits, best first) and, with
`catalog_scores`, every item's score float32 [B, I].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgerec.errors import EdgerecError
from edgerec.model.ncf import NCF
from edgerec.runtime.fold import FoldedNeuMF, fold, folded_macs

OPSET = 19
DEFAULT_K = 10


class _Graph:
    """Nodes and initializers of one server graph over the folded weights, in the export precision."""

    def __init__(self, model: NCF, precision: str) -> None:
        if model.arch.kind != "neumf":
            raise EdgerecError(f"the server model folds a NeuMF; this checkpoint is a {model.arch.kind.upper()}")
        self.arch = model.arch
        self.weights = {name: t.detach().numpy().astype(np.float32) for name, t in model.state_dict().items()}
        self.f: FoldedNeuMF = fold(self.weights)
        self.dtype = np.float16 if precision == "fp16" else np.float32
        self.inits: list[onnx.TensorProto] = []
        self.nodes: list[onnx.NodeProto] = []

    def const(self, name: str, value: np.ndarray) -> str:
        half = self.dtype == np.float16
        stored = name + ("_h" if half else "")
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=self.dtype), stored))
        if half:
            self.nodes.append(helper.make_node("Cast", [stored], [name], to=TensorProto.FLOAT))
        return name

    def ints(self, name: str, values: list[int]) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(values, dtype=np.int64), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs: object) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], **attrs))
        return output

    def users(self) -> tuple[str, str]:
        """p [B, g] and the user half of the first MLP layer zu [B, h0], gathered from the users input."""
        p = self.node("Gather", [self.const("user_gmf", self.weights["gmf_user.weight"]), "users"], "p", axis=0)
        q = self.node("Gather", [self.const("user_mlp", self.weights["mlp_user.weight"]), "users"], "q", axis=0)
        return p, self.node("MatMul", [q, self.const("Wu_t", self.f.Wu.T)], "zu")

    def mlp(self, z0: str, shape: str) -> str:
        """w_m . MLP_rest(relu(z0)) for z0 [..., h0], as plain GEMMs over its rows, reshaped to `shape`."""
        h = self.node("Relu", [z0], "h0")
        h = self.node("Reshape", [h, self.ints("rows", [-1, self.f.A.shape[1]])], "h0_2d")  # [rows, h0]
        for n, (w, b) in enumerate(self.f.layers, start=1):
            z = self.node("Gemm", [h, self.const(f"W{n}", w), self.const(f"b{n}", b)], f"z{n}", transB=1)
            h = self.node("Relu", [z], f"h{n}")
        col = self.node("Gemm", [h, self.const("wm", self.f.wm[:, None])], "mlp_col")  # [rows, 1]
        return self.node("Reshape", [col, shape], "mlp")

    def logits(self, gmf: str, mlp: str) -> str:
        total = self.node("Add", [gmf, mlp], "sum")
        return self.node("Add", [total, self.const("bias", np.asarray([self.f.b]))], "scores")

    def finish(self, name: str, inputs: list, outputs: list) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="edgerec")
        model.ir_version = 9
        onnx.checker.check_model(model, full_check=True)
        return model


def build(model: NCF, precision: str, k: int = DEFAULT_K, catalog_scores: bool = True) -> onnx.ModelProto:
    """The recommend graph: users int64 [B] -> top_items, top_scores [B, K] (and scores [B, I])."""
    g = _Graph(model, precision)
    n_items = g.arch.n_items
    if not 1 <= k <= n_items:
        raise EdgerecError(f"k must lie in 1..{n_items}; got {k}")
    p, zu = g.users()
    gmf = g.node("MatMul", [p, g.const("G_t", g.f.G.T)], "gmf")  # [B, I]
    zu3 = g.node("Unsqueeze", [zu, g.ints("axis1", [1])], "zu3")  # [B, 1, h0]
    z0 = g.node("Add", [zu3, g.const("A", g.f.A)], "z0")  # [B, I, h0]
    mlp = g.mlp(z0, g.ints("per_user", [-1, n_items]))  # [B, I]
    scores = g.logits(gmf, mlp)
    g.nodes.append(helper.make_node("TopK", [scores, g.ints("k", [k])], ["top_scores", "top_items"], axis=1))
    outputs = [
        helper.make_tensor_value_info("top_items", TensorProto.INT64, ["B", k]),
        helper.make_tensor_value_info("top_scores", TensorProto.FLOAT, ["B", k]),
    ]
    if catalog_scores:
        outputs.append(helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["B", n_items]))
    users = helper.make_tensor_value_info("users", TensorProto.INT64, ["B"])
    return g.finish("edgerec_neumf_recommend", [users], outputs)


def build_score(model: NCF, precision: str) -> onnx.ModelProto:
    """The score graph: users int64 [B], items int64 [B, N] -> scores float32 [B, N] (each user's own candidates)."""
    g = _Graph(model, precision)
    p, zu = g.users()
    p3 = g.node("Unsqueeze", [p, g.ints("axis2", [2])], "p3")  # [B, g, 1]
    gi = g.node("Gather", [g.const("G", g.f.G), "items"], "G_items", axis=0)  # [B, N, g]
    gmf = g.node("Squeeze", [g.node("MatMul", [gi, p3], "gmf3"), g.ints("axis_last", [2])], "gmf")  # [B, N]
    ai = g.node("Gather", [g.const("A", g.f.A), "items"], "A_items", axis=0)  # [B, N, h0]
    z0 = g.node("Add", [ai, g.node("Unsqueeze", [zu, g.ints("axis1", [1])], "zu3")], "z0")
    mlp = g.mlp(z0, g.node("Shape", ["items"], "items_shape"))  # [B, N]
    g.logits(gmf, mlp)
    inputs = [
        helper.make_tensor_value_info("users", TensorProto.INT64, ["B"]),
        helper.make_tensor_value_info("items", TensorProto.INT64, ["B", "N"]),
    ]
    outputs = [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["B", "N"])]
    return g.finish("edgerec_neumf_score", inputs, outputs)


def fields(model: NCF, k: int) -> dict:
    return {"opset": OPSET, "batch": "dynamic", "k": k, "macs_per_item": folded_macs(model.arch)}


def export(model: NCF, precision: str, out: Path, *, k: int = DEFAULT_K) -> dict:
    """Write out (model.onnx); return the manifest fields this target adds."""
    onnx.save_model(build(model, precision, k), str(out))
    return {**fields(model, k), "inputs": ["users"], "outputs": ["top_items", "top_scores", "scores"]}
