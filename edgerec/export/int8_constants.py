"""Store the large float constants that ai-edge-quantizer's weight-only recipes do not cover as int8 + DEQUANTIZE.

ai-edge-quantizer stores FULLY_CONNECTED / BATCH_MATMUL / EMBEDDING_LOOKUP weights as int8 with an explicit
DEQUANTIZE (weight-only, computed in float), but leaves a constant operand of ADD in float32. The phone bundle's
largest tensor is such an operand: the precomputed item half of the first MLP layer, [n_items, h0], added to the
user's projection (edgerec.export.folded), and looked up by the `score` signature. This pass rewrites every 2-D
float32 constant of at least `min_elements` read by ADD or a lookup (GATHER, GATHER_ND, EMBEDDING_LOOKUP) as an
int8 tensor with one symmetric scale per column (quantized dimension 1) plus a DEQUANTIZE op producing the float
tensor, so compute stays float32 and the file shrinks 4x for these tensors. LiteRT evaluates a DEQUANTIZE of a
constant once, not per call: measured in benchmarks/bundle.py, the int8 bundle's recommend is as fast as the fp32
one.

Subgraphs of one model may share a buffer (one per signature); the int8 copy is shared the same way.
"""

from __future__ import annotations

import numpy as np

FLOAT32, INT8 = 0, 9  # TensorType codes of the TFLite schema
ADD, DEQUANTIZE, EMBEDDING_LOOKUP, GATHER, GATHER_ND = 0, 6, 7, 36, 107  # BuiltinOperator codes
DEQUANTIZE_VERSION = 4  # per-channel int8


def _opcode_index(model, code: int, version: int) -> int:
    from ai_edge_litert import schema_py_generated as schema

    for i, oc in enumerate(model.operatorCodes):
        if max(oc.builtinCode, oc.deprecatedBuiltinCode) == code:
            oc.version = max(oc.version, version)
            return i
    oc = schema.OperatorCodeT()
    oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = code, code, version
    model.operatorCodes.append(oc)
    return len(model.operatorCodes) - 1


def _quantize_columns(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 with one scale per column (last axis) of a 2-D array; an all-zero column gets scale 1."""
    peak = np.abs(values).max(axis=0)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    return np.clip(np.rint(values / scale), -127, 127).astype(np.int8), scale


def int8_constants(flat: bytes, min_elements: int = 1024) -> tuple[bytes, list[dict]]:
    """(rewritten flatbuffer, one record per rewritten buffer: shape, bytes before and after, max abs error)."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_quantizer.utils import tfl_flatbuffer_utils as tfl

    model = tfl.read_model(flat)
    readers = (ADD, GATHER, GATHER_ND, EMBEDDING_LOOKUP)
    codes = {i for i, oc in enumerate(model.operatorCodes) if max(oc.builtinCode, oc.deprecatedBuiltinCode) in readers}
    rewritten: dict[int, tuple[int, np.ndarray]] = {}  # float buffer -> (int8 buffer, scales)
    records: list[dict] = []

    def int8_buffer(t) -> tuple[int, np.ndarray]:
        if t.buffer not in rewritten:
            values = np.frombuffer(bytes(model.buffers[t.buffer].data), dtype=np.float32).reshape(t.shape)
            q, scale = _quantize_columns(values)
            qbuf = schema.BufferT()
            qbuf.data = q.tobytes()
            model.buffers.append(qbuf)
            rewritten[t.buffer] = len(model.buffers) - 1, scale
            records.append(
                {
                    "shape": list(map(int, t.shape)),
                    "bytes_float32": values.nbytes,
                    "bytes_int8": q.nbytes + 12 * scale.size,  # + a float32 scale and an int64 zero point per column
                    "max_abs_error": float(np.abs(q.astype(np.float32) * scale - values).max()),
                }
            )
        return rewritten[t.buffer]

    for sg in model.subgraphs:
        dequantized: dict[int, int] = {}  # float constant tensor -> the DEQUANTIZE output replacing it
        new_ops = []
        for op in sg.operators:
            if op.opcodeIndex in codes:
                op.inputs = list(op.inputs)
                for pos, t_idx in enumerate(op.inputs):
                    t = sg.tensors[t_idx]
                    data = model.buffers[t.buffer].data if t_idx >= 0 else None
                    if t.type != FLOAT32 or data is None or len(t.shape) != 2 or len(data) < 4 * min_elements:
                        continue
                    if t_idx not in dequantized:
                        buffer, scale = int8_buffer(t)
                        qp = schema.QuantizationParametersT()
                        qp.scale, qp.zeroPoint, qp.quantizedDimension = scale.tolist(), [0] * scale.size, 1
                        qt = schema.TensorT()
                        qt.shape, qt.type, qt.buffer, qt.quantization = list(t.shape), INT8, buffer, qp
                        out = schema.TensorT()  # buffer 0: computed at run time (by DEQUANTIZE, once)
                        out.shape, out.type, out.buffer = list(t.shape), FLOAT32, 0
                        qt.name, out.name = (t.name or b"") + b"_int8", (t.name or b"") + b"_dq"
                        sg.tensors += [qt, out]
                        deq = schema.OperatorT()
                        deq.opcodeIndex = _opcode_index(model, DEQUANTIZE, DEQUANTIZE_VERSION)
                        deq.inputs, deq.outputs = [len(sg.tensors) - 2], [len(sg.tensors) - 1]
                        new_ops.append(deq)
                        dequantized[t_idx] = len(sg.tensors) - 1
                    op.inputs[pos] = dequantized[t_idx]
            new_ops.append(op)
        sg.operators = new_ops
    used = {sg.tensors[i].buffer for sg in model.subgraphs for op in sg.operators for i in op.inputs if i >= 0}
    used |= {sg.tensors[i].buffer for sg in model.subgraphs for i in sg.outputs}
    for old in rewritten.keys() - used:
        model.buffers[old].data = None  # no op reads the float copy any more
    return bytes(tfl.flatbuffer_utils.convert_object_to_bytearray(model)), records
