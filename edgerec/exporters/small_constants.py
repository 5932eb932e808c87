"""Store the large float constants that litert-quantizer's weight-only recipes do not cover as int8 (or float16) +
DEQUANTIZE.

litert-quantizer stores FULLY_CONNECTED / BATCH_MATMUL / EMBEDDING_LOOKUP weights as int8 with an explicit
DEQUANTIZE (weight-only, computed in float), but leaves a constant operand of ADD in float32. The phone bundle's
largest tensor is such an operand: the precomputed item half of the first MLP layer, [n_items, h0], added to the
user's projection (edgerec.exporters.folded), and looked up by the `score` signature. This pass rewrites every 2-D
float32 constant of at least `min_elements` read by ADD or a lookup (GATHER, GATHER_ND, EMBEDDING_LOOKUP) as an int8
tensor with one symmetric scale per column (quantized dimension 1), or as a float16 tensor, plus a DEQUANTIZE op
producing the float32 tensor, so compute stays float32 and the file shrinks 4x (2x) for these tensors. LiteRT
evaluates a DEQUANTIZE of a constant once, not per call: measured in benchmarks/bundle.py, the int8 bundle's
recommend is as fast as the fp32 one.

Subgraphs of one model may share a buffer (one per signature); the int8 copy is shared the same way, and float
constants of equal content (litert-quantizer copies a constant that ops of different quantization read) share one
narrow copy.
"""

from __future__ import annotations

import hashlib

import numpy as np

from edgerec.errors import EdgerecError

FLOAT32, FLOAT16, INT8 = 0, 1, 9  # TensorType codes of the TFLite schema
ADD, DEQUANTIZE, EMBEDDING_LOOKUP, GATHER, GATHER_ND = 0, 6, 7, 36, 107  # BuiltinOperator codes
DEQUANTIZE_VERSION = {"int8": 4, "float16": 3}  # per-channel int8; float16


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


def small_constants(flat: bytes, dtype: str = "int8", min_elements: int = 1024) -> tuple[bytes, list[dict]]:
    """(rewritten flatbuffer, one record per rewritten buffer: shape, bytes before and after, max abs error).
    dtype: "int8" (one scale per column) or "float16"."""
    from ai_edge_litert import schema_py_generated as schema
    from litert_quantizer.utils import tfl_flatbuffer_utils as tfl

    model = tfl.read_model(flat)
    readers = (ADD, GATHER, GATHER_ND, EMBEDDING_LOOKUP)
    codes = {i for i, oc in enumerate(model.operatorCodes) if max(oc.builtinCode, oc.deprecatedBuiltinCode) in readers}
    if dtype not in DEQUANTIZE_VERSION:
        raise EdgerecError(f"constants can be stored as {' or '.join(DEQUANTIZE_VERSION)}; got {dtype}")
    narrow: dict[tuple, tuple[int, np.ndarray | None]] = {}  # float content -> (narrow buffer, int8 scales)
    rewritten: set[int] = set()  # float buffers read through a narrow copy
    records: list[dict] = []

    def narrow_buffer(t) -> tuple[int, np.ndarray | None]:
        raw = bytes(model.buffers[t.buffer].data)
        key = (tuple(t.shape), hashlib.sha256(raw).digest())
        rewritten.add(t.buffer)
        if key not in narrow:
            values = np.frombuffer(raw, dtype=np.float32).reshape(t.shape)
            if dtype == "int8":
                q, scale = _quantize_columns(values)
                back = q.astype(np.float32) * scale
            else:
                if np.abs(values).max() > np.finfo(np.float16).max:
                    raise EdgerecError(f"a constant of shape {list(t.shape)} exceeds the float16 range")
                q, scale = values.astype(np.float16), None
                back = q.astype(np.float32)
            qbuf = schema.BufferT()
            qbuf.data = q.tobytes()
            model.buffers.append(qbuf)
            narrow[key] = len(model.buffers) - 1, scale
            records.append(
                {
                    "shape": list(map(int, t.shape)),
                    "dtype": dtype,
                    "bytes_float32": values.nbytes,
                    # int8: + a float32 scale and an int64 zero point per column
                    "bytes": q.nbytes + (12 * scale.size if scale is not None else 0),
                    "max_abs_error": float(np.abs(back - values).max()),
                }
            )
        return narrow[key]

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
                        buffer, scale = narrow_buffer(t)
                        qt = schema.TensorT()
                        qt.shape, qt.type, qt.buffer = list(t.shape), INT8 if scale is not None else FLOAT16, buffer
                        if scale is not None:
                            qp = schema.QuantizationParametersT()
                            qp.scale, qp.zeroPoint, qp.quantizedDimension = scale.tolist(), [0] * scale.size, 1
                            qt.quantization = qp
                        out = schema.TensorT()  # buffer 0: computed at run time (by DEQUANTIZE, once)
                        out.shape, out.type, out.buffer = list(t.shape), FLOAT32, 0
                        qt.name, out.name = (t.name or b"") + b"_" + dtype.encode(), (t.name or b"") + b"_dq"
                        sg.tensors += [qt, out]
                        deq = schema.OperatorT()
                        deq.opcodeIndex = _opcode_index(model, DEQUANTIZE, DEQUANTIZE_VERSION[dtype])
                        deq.inputs, deq.outputs = [len(sg.tensors) - 2], [len(sg.tensors) - 1]
                        new_ops.append(deq)
                        dequantized[t_idx] = len(sg.tensors) - 1
                    op.inputs[pos] = dequantized[t_idx]
            new_ops.append(op)
        sg.operators = new_ops
    used = {sg.tensors[i].buffer for sg in model.subgraphs for op in sg.operators for i in op.inputs if i >= 0}
    used |= {sg.tensors[i].buffer for sg in model.subgraphs for i in sg.outputs}
    for old in rewritten - used:
        model.buffers[old].data = None  # no op reads the float copy any more
    return bytes(tfl.flatbuffer_utils.convert_object_to_bytearray(model)), records
