"""The phone bundle export (target `tflite-bundle`): the folded NeuMF (edgerec.export.folded) as a TFLite model
with one signature, recommend(user_gmf [1, g], user_mlp [1, d]) -> (top-K items, their scores, all scores), and the
users' vectors as a server-side file (the app receives only its own user's two vectors).

Precisions: fp32; fp16 (weights and item constants stored in fp16); int8: full-integer static int8 for the MLP
part (the precomputed item half of the first layer is an int8 constant), the GMF dot products as an int8-weight
layer with one scale per item (dynamic range), and the head, the final sum and top-K in float (an int8 score would
tie items).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import torch

from edgerec.export.folded import FoldedNCF, user_vectors
from edgerec.export.tflite_model import add_fp16_weights, quiet
from edgerec.model.ncf import NCF

USER_VECTORS = "user_vectors.npy"  # server side: [n_users, g + d] float32; never shipped in the app
DEFAULT_K = 10


def _calibration(model: NCF, calib: tuple[np.ndarray, np.ndarray], n: int = 256) -> list[dict]:
    ug, um = user_vectors(model)
    users = np.unique(calib[0])[:n]
    return [{"user_gmf": ug[u : u + 1].numpy(), "user_mlp": um[u : u + 1].numpy()} for u in users]


def convert(model: NCF, k: int) -> bytes:
    import tempfile

    import litert_torch

    folded = FoldedNCF(model, k).eval()
    ug, um = user_vectors(model)
    kwargs = {"user_gmf": ug[:1], "user_mlp": um[:1]}
    with quiet(), tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.tflite"
        litert_torch.signature("recommend", folded, sample_kwargs=kwargs).convert().export(str(path))
        return path.read_bytes()


def quantize(flat: bytes, precision: str, data: list[dict]) -> tuple[bytes, dict]:
    if precision == "fp32":
        return flat, {"scheme": "none"}
    from ai_edge_quantizer import qtyping, quantizer

    op = qtyping.TFLOperationName
    qt = quantizer.Quantizer(flat)
    if precision == "fp16":
        add_fp16_weights(qt)
        with quiet():
            return bytes(qt.quantize(enable_progress_report=False).quantized_model), {"scheme": "fp16 weights"}
    chan = qtyping.QuantGranularity.CHANNELWISE
    qt.add_static_config(".*", op.ALL_SUPPORTED, 8, 8, chan)
    # one scale for all folded GMF item rows: per-item scales cost 12 bytes per item in TFLite (the zero points are
    # int64), more than the 8-byte rows themselves
    qt.add_dynamic_config(".*Linear_gmf.*", op.FULLY_CONNECTED, 8, qtyping.QuantGranularity.TENSORWISE)
    for name, regex in (
        (op.FULLY_CONNECTED, ".*head_.*"),
        (op.ADD, ".*recommend_output.*"),
        (op.RESHAPE, ".*"),
        (op.OUTPUT, ".*"),
        (op.INPUT, ".*"),  # the app passes float vectors
    ):
        qt.update_quantization_recipe(regex, name, None, algorithm_key="no_quantize")
    with quiet():
        qsvs = qt.calibrate({"recommend": data}, num_threads=1)
        result = qt.quantize(qsvs, enable_progress_report=False)
    info = {
        "scheme": "static int8 MLP part, int8-weight GMF layer (per item), float head and top-K",
        "tool": "ai-edge-quantizer",
        "calibration_users": len(data),
    }
    return bytes(result.quantized_model), info


def folded_macs(model: NCF) -> int:
    """Per-item work of the folded model: GMF dot product, the add of the item half, the later MLP layers, head."""
    layers = model.arch.mlp_layers
    return model.arch.gmf_dim + layers[0] + sum(a * b for a, b in itertools.pairwise(layers)) + layers[-1]


def export(
    model: NCF, precision: str, out: Path, *, calib: tuple[np.ndarray, np.ndarray], k: int = DEFAULT_K, **_: object
) -> dict:
    """Write out (model.tflite) and the server-side user vectors next to it; return the manifest fields."""
    flat, info = quantize(convert(model, k), precision, _calibration(model, calib))
    out.write_bytes(flat)
    ug, um = user_vectors(model)
    vectors = torch.cat([ug, um], dim=1).numpy().astype(np.float32)
    np.save(out.parent / USER_VECTORS, vectors, allow_pickle=False)
    g, d = ug.shape[1], um.shape[1]
    return {
        "signatures": {
            "recommend": {
                "inputs": {"user_gmf": ["float32", [1, g]], "user_mlp": ["float32", [1, d]]},
                "outputs": {
                    "output_0": ["int32", [k], "top-K item indices (id_maps.json 'items' gives the original ids)"],
                    "output_1": ["float32", [k], "their scores (logits), best first"],
                    "output_2": ["float32", [model.arch.n_items], "every item's score"],
                },
            }
        },
        "k": k,
        "buckets": [model.arch.n_items],  # every call scores the whole catalog: what bench measures
        "user_vector_dims": {"gmf": g, "mlp": d},
        "user_vectors": USER_VECTORS,
        "bundle_files": [out.name, "manifest.json", "id_maps.json"],
        "quantization": info,
        "macs_per_item": int(
            g
            + sum(a * b for a, b in zip(model.arch.mlp_layers[:-1], model.arch.mlp_layers[1:], strict=False))
            + model.arch.mlp_layers[-1]
        ),
    }
