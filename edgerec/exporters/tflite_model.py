"""The TFLite export: litert-torch converts the serving module (one signature per batch bucket, weights shared),
litert-quantizer (formerly ai-edge-quantizer) quantizes it.

Precisions:
- fp32: as converted.
- fp16: weights and embedding tables stored in fp16 (float casting), computed in fp32.
- int8-dynamic: dynamic-range int8: int8 weights and tables, activations quantized on the fly by the kernels.
  On ML-1M NeuMF-8: HR@10 delta 0.000 at 25 % of the fp32 bytes.
- int8: full-integer static int8 (activations and weights), calibrated on the export's calibration set;
  embedding lookups int8 (a dynamic rule: the static recipe leaves them fp32). The head -- the two prediction
  dot products (length <= 64), their ADD and the output -- stays float: an int8 ADD or FULLY_CONNECTED requantizes
  the logit to 256 levels, which ties items (on ML-1M NeuMF-8 an int8 head cost 0.005 HR@10 more than the whole
  rest of the quantization). The score leaves the graph as float32; the app dequantizes nothing.
Granularity follows the target runtime: per-channel on ai-edge-litert, per-tensor on tflite-runtime 2.14, which
computes per-channel FULLY_CONNECTED and EMBEDDING_LOOKUP wrongly.

litert-quantizer's calibration keeps moving averages per batch, so calibrating each signature on its own gives
each bucket different scales and breaks batch parity. The largest bucket is calibrated and its statistics are
copied to the same tensors of every other signature (the signatures are one graph at different batch sizes).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from edgerec.errors import EdgerecError
from edgerec.exporters.serving import ServingNCF
from edgerec.model.ncf import NCF

log = logging.getLogger(__name__)


@contextlib.contextmanager
def quiet():
    """litert-torch and litert-quantizer print progress bars and reports to stdout/stderr; keep them out of the
    CLI's output (they go to the debug log instead)."""
    buf = io.StringIO()
    logging.disable(logging.WARNING)  # litert-quantizer warns through the root logger about shared buffers
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            yield
    finally:
        logging.disable(logging.NOTSET)
    if buf.getvalue().strip():
        log.debug("%s", buf.getvalue())


def convert(model: NCF, buckets: list[int]) -> bytes:
    """The fp32 TFLite flatbuffer, one signature b{B} per bucket B: users, items int32 [B] -> float32 logits [B]."""
    import litert_torch

    serving = ServingNCF(model).eval()
    conv = None
    for b in buckets:
        kwargs = {"users": torch.zeros(b, dtype=torch.int32), "items": torch.zeros(b, dtype=torch.int32)}
        conv = (conv or litert_torch).signature(f"b{b}", serving, sample_kwargs=kwargs)
    with quiet(), tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.tflite"
        conv.convert().export(str(path))  # type: ignore[union-attr]
        return path.read_bytes()


def _signature_tensors(model: bytes, key: str) -> list[str]:
    from litert_quantizer.utils import tfl_interpreter_utils as tiu

    interp = tiu.create_tfl_interpreter(model, allocate_tensors=False)
    sub = tiu.get_signature_main_subgraph_index(interp, key)
    return [d["name"] for d in interp.get_tensor_details(sub)]


def _shared_qsvs(model: bytes, qsvs: dict, src: str, others: list[str]) -> dict:
    """Copy the calibration statistics of signature src to the same-position tensors of the other signatures."""
    ref = _signature_tensors(model, src)
    out = dict(qsvs)
    for key in others:
        names = _signature_tensors(model, key)
        if len(names) != len(ref):
            raise EdgerecError(f"TFLite signatures {src} and {key} differ in structure; cannot share calibration")
        out.update({n: qsvs[r] for n, r in zip(names, ref, strict=True) if r in qsvs})
    return out


def add_fp16_weights(qt) -> None:  # qt: litert_quantizer.quantizer.Quantizer
    """Store every supported op's weights in fp16 (float casting), computed in fp32."""
    from litert_quantizer import qtyping

    fp16 = qtyping.OpQuantizationConfig(
        weight_tensor_config=qtyping.TensorQuantizationConfig(num_bits=16, dtype=qtyping.TensorDataType.FLOAT),
        compute_precision=qtyping.ComputePrecision.FLOAT,
        explicit_dequantize=True,
    )
    qt.update_quantization_recipe(".*", qtyping.TFLOperationName.ALL_SUPPORTED, fp16, algorithm_key="float_casting")


def quantize(
    model: bytes, precision: str, runtime: str, buckets: list[int], calib: tuple[np.ndarray, np.ndarray]
) -> tuple[bytes, dict]:
    """(quantized flatbuffer, manifest fields describing the quantization)."""
    if precision == "fp32":
        return model, {"scheme": "none"}
    from litert_quantizer import qtyping, quantizer

    op = qtyping.TFLOperationName
    per_tensor = runtime == "tflite-runtime"
    gran = qtyping.QuantGranularity.TENSORWISE if per_tensor else qtyping.QuantGranularity.CHANNELWISE
    # Tables are quantized per tensor on every runtime: TFLite stores a per-channel zero point as int64, so
    # per-row tables cost 12 extra bytes per row (NeuMF-8 on ML-1M: 40 % of fp32 bytes instead of 25 %), for no
    # measured gain in HR@10.
    per_tensor_tables = qtyping.QuantGranularity.TENSORWISE
    qt = quantizer.Quantizer(model)
    if precision == "fp16":
        add_fp16_weights(qt)
    elif precision == "int8-dynamic":
        qt.add_dynamic_config(".*", op.ALL_SUPPORTED, 8, gran)
        qt.add_dynamic_config(".*", op.EMBEDDING_LOOKUP, 8, per_tensor_tables)
    else:
        qt.add_static_config(".*", op.ALL_SUPPORTED, 8, 8, gran)
        qt.add_dynamic_config(".*", op.EMBEDDING_LOOKUP, 8, per_tensor_tables)
        for name, regex in (
            (op.FULLY_CONNECTED, ".*head_.*"),
            (op.ADD, ".*"),  # the sum of the two head halves: the logit
            (op.RESHAPE, ".*"),
            (op.OUTPUT, ".*"),
        ):
            qt.update_quantization_recipe(regex, name, None, algorithm_key="no_quantize")
    qsvs = None
    if qt.need_calibration:
        big = max(buckets)
        users, items = calib
        n = len(users) // big * big
        if n == 0:
            raise EdgerecError(f"calibration set ({len(users)} pairs) is smaller than the largest bucket ({big})")
        data = [
            {"users": users[s : s + big].astype(np.int32), "items": items[s : s + big].astype(np.int32)}
            for s in range(0, n, big)
        ]
        with quiet():
            qsvs = qt.calibrate({f"b{big}": data}, num_threads=max(1, os.cpu_count() or 1))
        qsvs = _shared_qsvs(model, qsvs, f"b{big}", [f"b{b}" for b in buckets if b != big])
    with quiet():
        result = qt.quantize(qsvs, enable_progress_report=False)
    info = {
        "scheme": {"fp16": "fp16 weights", "int8-dynamic": "dynamic-range int8", "int8": "static int8"}[precision],
        "granularity": ("per-tensor" if per_tensor else "per-channel") + " weights, per-tensor tables",
        "tool": "litert-quantizer",
    }
    if qsvs is not None:
        info["calibration_pairs"] = int(n)
        info["float_ops"] = "prediction head: its two dot products, their sum, the output (float32 score)"
    return bytes(result.quantized_model), info


def export(
    model: NCF,
    precision: str,
    out: Path,
    *,
    buckets: list[int],
    runtime: str,
    calib: tuple[np.ndarray, np.ndarray],
) -> dict:
    """Write out (a .tflite file); return the manifest fields this target adds."""
    flat, info = quantize(convert(model, buckets), precision, runtime, buckets, calib)
    out.write_bytes(flat)
    return {
        "buckets": buckets,
        "signatures": {f"b{b}": b for b in buckets},
        "inputs": ["users", "items"],
        "quantization": info,
    }
