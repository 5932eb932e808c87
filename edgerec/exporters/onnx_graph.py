"""The ONNX export, written node by node from the weights, in the explicit-quantization form TensorRT consumes.

Graph (dynamic batch B): users, items int32 [B] -> scores float32 [B] (logits; see edgerec.exporters.serving).
- fp32: Gather, Mul, Concat, Gemm, Relu, Add.
- fp16: every weight and table stored in fp16 and Cast to fp32 after the Gather / before the Gemm (half the
  bytes; onnxruntime on CPU computes in fp32; TensorRT's FP16 builder flag computes in fp16).
- int8: the scheme of edgerec.compression.quantize: tables int8 per row -> DequantizeLinear (axis 0) -> Gather,
  row scales stored in fp16 (the one departure from the simulation, which keeps them in fp32); every linear
  layer input QuantizeLinear -> DequantizeLinear with the calibrated per-tensor scale and zero point 0; weights
  int8 per output channel -> DequantizeLinear (axis 0); the prediction layer in two halves; the score left
  unquantized. The scales are the compression step's calibration result (quant.json) when the checkpoint has one;
  otherwise the exporter calibrates with the same code.

Written by hand rather than by torch.onnx.export plus onnxruntime's quantizer so that the int8 graph is the model
the compression gate measured, tensor for tensor, instead of a second, differently calibrated quantization.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgerec.compression.quantize import QMAX8, QuantSpec, input_parts
from edgerec.errors import EdgerecError
from edgerec.model.ncf import NCF, NCFArch

OPSET = 19


class _Graph:
    def __init__(self, precision: str) -> None:
        self.precision = precision
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[TensorProto] = []
        self._n = 0

    def name(self, base: str) -> str:
        self._n += 1
        return f"{base}_{self._n}"

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], base: str, **attrs) -> str:
        out = self.name(base)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def dequantized(self, name: str, w: np.ndarray) -> str:
        """A weight [out, in] or table [rows, dim] as an fp32 tensor: stored at the graph's precision."""
        if self.precision == "fp16":
            return self.node("Cast", [self.const(name, w.astype(np.float16))], f"{name}_fp32", to=TensorProto.FLOAT)
        if self.precision == "int8":
            scale = np.maximum(np.abs(w).max(axis=1), 1e-12) / QMAX8  # per row / output channel, as rowwise_int8
            q = np.clip(np.round(w / scale[:, None]), -QMAX8, QMAX8).astype(np.int8)
            args = [self.const(f"{name}_q", q), self.const(f"{name}_scale", scale.astype(np.float32))]
            return self.node("DequantizeLinear", args, f"{name}_dq", axis=0)
        return self.const(name, w.astype(np.float32))

    def lookup(self, table: str, w: np.ndarray, ids: str) -> str:
        """Gathered rows [B, dim] in fp32. fp16 tables are gathered in fp16 and only the rows cast. int8 row scales
        are stored in fp16 and cast up (fp32 scales would add 4 bytes per row, 50 % on top of an 8-dim int8 row);
        the rows are then exactly q * scale in fp32."""
        if self.precision == "fp16":
            rows = self.node("Gather", [self.const(table, w.astype(np.float16)), ids], f"{table}_rows16")
            return self.node("Cast", [rows], f"{table}_rows", to=TensorProto.FLOAT)
        if self.precision == "fp32":
            return self.node("Gather", [self.const(table, w), ids], f"{table}_rows")
        scale16 = (np.maximum(np.abs(w).max(axis=1), 1e-12) / QMAX8).astype(np.float16)
        q = np.clip(np.round(w / scale16.astype(np.float32)[:, None]), -QMAX8, QMAX8).astype(np.int8)
        scale = self.node("Cast", [self.const(f"{table}_scale16", scale16)], f"{table}_scale", to=TensorProto.FLOAT)
        table_dq = self.node("DequantizeLinear", [self.const(f"{table}_q", q), scale], f"{table}_dq", axis=0)
        return self.node("Gather", [table_dq, ids], f"{table}_rows")

    def fake_quant(self, x: str, scale: float | None, base: str) -> str:
        """QuantizeLinear -> DequantizeLinear, symmetric int8 (zero point 0), per tensor; identity unless int8."""
        if scale is None:
            return x
        s = self.const(f"{base}_in_scale", np.array(scale, dtype=np.float32))
        z = self.const(f"{base}_in_zero", np.array(0, dtype=np.int8))
        return self.node("DequantizeLinear", [self.node("QuantizeLinear", [x, s, z], f"{base}_q"), s, z], f"{base}_dq")

    def linear(self, x: str, w: np.ndarray, b: np.ndarray | None, base: str, in_scale: float | None) -> str:
        args = [self.fake_quant(x, in_scale, base), self.dequantized(f"{base}_weight", w)]
        if b is not None:
            args.append(self.const(f"{base}_bias", b.astype(np.float32)))
        return self.node("Gemm", args, base, transB=1)


def build(model: NCF, precision: str, spec: QuantSpec | None = None) -> onnx.ModelProto:
    """The ONNX model of `model` at `precision` (fp32 | fp16 | int8; int8 needs the calibration result `spec`)."""
    if precision == "int8" and spec is None:
        raise EdgerecError("int8 ONNX export needs a calibration result")
    arch: NCFArch = model.arch
    w = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    g = _Graph(precision)

    def in_scale(part: str) -> float | None:
        return spec.scale(part) if precision == "int8" and spec is not None else None

    def acc_rounded_bias(layer_w: np.ndarray, b: np.ndarray, part: str) -> np.ndarray:
        """int8 layers with one input range keep an int32 bias at the accumulator scale (as QuantLinear does)."""
        s = in_scale(part)
        if s is None:
            return b
        acc = s * np.maximum(np.abs(layer_w).max(axis=1), 1e-12) / QMAX8
        return (np.round(b / acc) * acc).astype(np.float32)

    heads: list[str] = []
    parts = input_parts(arch, "predict")
    pw, pb = w["predict.weight"], w["predict.bias"]
    if arch.gmf_dim:
        prod = g.node(
            "Mul",
            [g.lookup("gmf_user", w["gmf_user.weight"], "users"), g.lookup("gmf_item", w["gmf_item.weight"], "items")],
            "gmf_product",
        )  # [B, gmf_dim]
        part = "predict.gmf" if len(parts) == 2 else "predict"
        heads.append(g.linear(prod, pw[:, parts[part]], None, part.replace(".", "_"), in_scale(part)))
    if arch.mlp_layers:
        x = g.node(
            "Concat",
            [g.lookup("mlp_user", w["mlp_user.weight"], "users"), g.lookup("mlp_item", w["mlp_item.weight"], "items")],
            "mlp_input",
            axis=1,
        )
        for k in range(len(arch.mlp_layers)):
            lw, lb = w[f"mlp.{2 * k}.weight"], w[f"mlp.{2 * k}.bias"]
            part = f"mlp.{2 * k}"
            x = g.node(
                "Relu", [g.linear(x, lw, acc_rounded_bias(lw, lb, part), f"mlp_{2 * k}", in_scale(part))], "relu"
            )
        part = "predict.mlp" if len(parts) == 2 else "predict"
        heads.append(g.linear(x, pw[:, parts[part]], None, part.replace(".", "_"), in_scale(part)))
    bias = pb if len(parts) == 2 else acc_rounded_bias(pw, pb, "predict")
    logit = heads[0] if len(heads) == 1 else g.node("Add", heads, "logit")  # [B, 1]
    logit = g.node("Add", [logit, g.const("predict_bias", bias.astype(np.float32))], "logit_biased")
    shape = g.const("flat_shape", np.array([-1], dtype=np.int64))
    g.nodes.append(helper.make_node("Reshape", [logit, shape], ["scores"], name="scores"))

    batch = ["batch"]
    graph = helper.make_graph(
        g.nodes,
        "edgerec_ncf",
        [helper.make_tensor_value_info(n, TensorProto.INT32, batch) for n in ("users", "items")],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, batch)],
        g.inits,
    )
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="edgerec")
    onnx_model.ir_version = 9
    onnx.checker.check_model(onnx_model, full_check=True)
    return onnx_model


def export(model: NCF, precision: str, out: Path, *, spec: QuantSpec | None = None) -> dict:
    """Write out (a .onnx file); return the manifest fields this target adds."""
    onnx.save_model(build(model, precision, spec), str(out))
    return {"opset": OPSET, "batch": "dynamic", "inputs": ["users", "items"], "output": "scores"}
