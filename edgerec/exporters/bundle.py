"""The phone bundle export (target `tflite-bundle`): the folded NeuMF (edgerec.exporters.folded) as one TFLite model,
and the users' vectors as a server-side file (the app receives only its own user's vectors). Signatures:

- recommend(user_gmf [1, g], user_mlp [1, d]) -> (top-K items, their scores, every item's score): the catalog; with
  shortlist = S > 0, -> (top-K items, their scores, the shortlist [S], its scores): the S items of best GMF half +
  item prior, found in the graph and ranked by the whole NeuMF (gated by shortlist_gate; score comes with it);
- with candidates = C > 0: score(user_gmf, user_mlp, items [C] int32, -1 = padding) -> (the items' scores, the
  top-K of the list, their scores): a candidate list or a few items, with the MLP run for those only;
- and retrieve(user_gmf) -> (the C items with the best GMF half, those scores): the first stage of the two-stage
  path for large catalogs (retrieve, then score re-ranks the C candidates with the whole NeuMF);
- from a model with user features: user_features(feature_indices [W] int32, feature_weights [W]) -> (user_gmf,
  user_mlp), a new user's vectors from their attributes encoded by the bundle's USER_ENCODER (and with the on-device
  functions, fold_in_from: fold_in started from given vectors).

Precisions: fp32; fp16 (weights and item constants stored in fp16, compute in float32); int8: every weight and item
constant stored in int8 and dequantized once when the model loads, compute in float32 (litert-quantizer's
weight-only recipe for the layers, edgerec.exporters.small_constants for the precomputed item half of the first MLP
layer, which that recipe leaves in float). With compute = "int8" (BundleOptions) the int8 bundle computes the
catalog-wide MLP of `recommend` and `score` in int8 (edgerec.exporters.int8_compute: XNNPACK's QS8 kernels); the
GMF dot products, the head's projection, the logit sum and top-K stay float32, so scores keep float precision
(benchmarks/results/integer_bundle.md); retrieve, fold_in and explain compute in float32 as above. Tensor names
and empty quantization records are stripped from every precision: they are a few kilobytes of a ~150 KB model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgerec.data.features import FeaturePath
from edgerec.errors import EdgerecError
from edgerec.exporters.folded import (
    PAD_SCORE,
    CandidateScorer,
    Explain,
    FoldedNCF,
    FoldIn,
    FoldInFrom,
    Retriever,
    UserFeatures,
    user_vectors,
)
from edgerec.exporters.small_constants import small_constants
from edgerec.exporters.tflite_model import add_fp16_weights, quiet
from edgerec.io import write_json
from edgerec.model.ncf import NCF
from edgerec.runtime.explain import ITEM_SIDE, item_side_tensors
from edgerec.runtime.fold import fold, folded_macs

USER_VECTORS = "user_vectors.npy"  # server side: [n_users, g + d] float32; never shipped in the app
USER_ENCODER = "user_encoder.json"  # a feature model's user encoder (edgerec.data.features.Encoder's JSON)
MAX_FEATURE_VALUES = 4096  # the longest user_features input
DEFAULT_K = 10
MAX_CANDIDATES = 1_000_000


def fold_in_negatives(n_items: int, count: int, seed: int) -> np.ndarray:
    """The fixed negative items of the on-device fold-in: `count` distinct items drawn uniformly (seeded), sorted."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_items, min(count, n_items), replace=False)).astype(np.int32)


def convert(model: NCF, k: int, candidates: int, app: Any = None, user_features: FeaturePath | None = None) -> bytes:
    """The fp32 flatbuffer: recommend; score and retrieve over `candidates` items when candidates > 0; fold_in and
    explain with `app` (the bundle's options, when they ask for the on-device functions); user_features with a
    model's user feature path (and fold_in_from, with the on-device functions)."""
    import tempfile

    import litert_torch

    row_lookups = getattr(app, "item_table", "int8") != "int8"
    folded = FoldedNCF(model, k, row_lookups=row_lookups, shortlist=getattr(app, "shortlist", 0)).eval()
    ug, um = user_vectors(model)
    kwargs = {"user_gmf": ug[:1], "user_mlp": um[:1]}
    items = torch.arange(candidates, dtype=torch.int32) % model.arch.n_items
    with quiet(), tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.tflite"
        converter = litert_torch.signature("recommend", folded, sample_kwargs=kwargs)
        if candidates:
            converter = converter.signature(
                "score", CandidateScorer(folded).eval(), sample_kwargs={**kwargs, "items": items}
            ).signature("retrieve", Retriever(folded, candidates).eval(), sample_kwargs={"user_gmf": ug[:1]})
        if user_features is not None:
            width = user_features.encoder.width
            converter = converter.signature(
                "user_features",
                UserFeatures(user_features).eval(),
                sample_kwargs={
                    "feature_indices": torch.arange(width, dtype=torch.int32) % user_features.encoder.size,
                    "feature_weights": torch.full((width,), 1.0 / width),
                },
            )
        if app is not None and app.explain:
            n = model.arch.n_items
            history = {
                "history": torch.arange(app.max_history, dtype=torch.int32) % n,
                "history_mask": torch.ones(app.max_history),
            }
            negatives = fold_in_negatives(n, app.fold_in_negatives, app.fold_in.seed)
            converter = converter.signature(
                "fold_in", FoldIn(folded, negatives, app.fold_in).eval(), sample_kwargs=history
            ).signature(
                "explain",
                Explain(folded, min(app.reasons, app.max_history)).eval(),
                sample_kwargs={**kwargs, **history, "items": torch.arange(k, dtype=torch.int32) % n},
            )
            if user_features is not None:
                converter = converter.signature(
                    "fold_in_from",
                    FoldInFrom(folded, negatives, app.fold_in).eval(),
                    sample_kwargs={**history, **kwargs},
                )
        converter.convert().export(str(path))
        return path.read_bytes()


def _int8_weights(granularity: str):
    from litert_quantizer import qtyping

    return qtyping.OpQuantizationConfig(
        weight_tensor_config=qtyping.TensorQuantizationConfig(
            num_bits=8, symmetric=True, granularity=qtyping.QuantGranularity(granularity)
        ),
        compute_precision=qtyping.ComputePrecision.FLOAT,
        explicit_dequantize=True,
    )


@contextlib.contextmanager
def bytes_names_on_duplicates() -> Iterator[None]:
    """litert-quantizer 0.11.0 names the copy it makes of a constant shared by ops of different quantization (the
    folded GMF rows: a FULLY_CONNECTED weight in `recommend`, a lookup table in `fold_in` and `explain`) with a str,
    and its DEQUANTIZE insertion then fails concatenating bytes to that name (TypeError). While this is active the
    copy's name is kept as bytes; nothing else changes (the export extra pins litert-quantizer < 0.12)."""
    from litert_quantizer.transformations import duplicate_tensor as module

    original = module.duplicate_tensor

    def duplicate(transformation_input: Any) -> Any:
        info = original(transformation_input)
        for tensor in transformation_input.subgraph.tensors:
            if isinstance(tensor.name, str):
                tensor.name = tensor.name.encode()
        return info

    module.duplicate_tensor = duplicate
    try:
        yield
    finally:
        module.duplicate_tensor = original


def quantize(
    flat: bytes,
    precision: str,
    compute: str = "float",
    model: NCF | None = None,
    candidates: int = 0,
    shortlist: int = 0,
) -> tuple[bytes, dict]:
    if precision == "fp32":
        return flat, {"scheme": "none"}
    with bytes_names_on_duplicates():
        return _quantize(flat, precision, compute, model, candidates, shortlist)


def _quantize(
    flat: bytes, precision: str, compute: str, model: NCF | None, candidates: int, shortlist: int
) -> tuple[bytes, dict]:
    from litert_quantizer import qtyping, quantizer

    from edgerec.exporters import int8_compute

    qt = quantizer.Quantizer(flat)
    if precision == "fp16":
        add_fp16_weights(qt)
        with quiet():
            flat = bytes(qt.quantize(enable_progress_report=False).quantized_model)
        flat, records = small_constants(flat, "float16")
        info = {
            "scheme": "fp16 weights and item constants, float32 compute",
            "tool": "litert-quantizer float casting (layers) + edgerec.exporters.small_constants (item constants)",
            "item_constants": records,
        }
        return flat, info
    op = qtyping.TFLOperationName
    fc = op.FULLY_CONNECTED
    qt.update_quantization_recipe(".*", fc, _int8_weights("CHANNELWISE"))
    if compute == "int8":
        qt.add_static_config(int8_compute.SCOPE, op.ALL_SUPPORTED, 8, 8, qtyping.QuantGranularity.CHANNELWISE)
        # the head's projection reads the int8 activations dequantized and returns float logits: an int8 output
        # would leave the score 256 levels
        qt.update_quantization_recipe(".*Linear_head_mlp.*", fc, _int8_weights("CHANNELWISE"))
    # one scale for all folded GMF item rows: per-item scales cost 12 bytes per item in TFLite (the zero points are
    # int64), more than the 8-byte rows themselves
    qt.update_quantization_recipe(".*Linear_gmf.*", fc, _int8_weights("TENSORWISE"))
    qsvs = None
    if compute == "int8":
        if model is None:
            raise EdgerecError("int8 compute calibrates on the model's user vectors; no model given")
        with quiet():
            qsvs = int8_compute.calibrate(qt, model, candidates, shortlist)
    with quiet():
        flat = bytes(qt.quantize(qsvs, enable_progress_report=False).quantized_model)
    if compute == "int8" and not shortlist:  # a shortlist's recommend looks its rows up as score does
        flat = int8_compute.share_item_constant(flat)
    flat, records = small_constants(flat, "int8")
    info = {
        "scheme": "int8 weights and item constants, dequantized at load; float32 compute",
        "tool": "litert-quantizer weight-only (layers; the GMF item rows one scale) + "
        "edgerec.exporters.small_constants "
        "(the item half of the first MLP layer, one scale per column)",
        "item_constants": records,
    }
    if compute == "int8":
        info["scheme"] = (
            "int8 weights and item constants; the catalog-wide MLP of recommend (and score) computed in int8 (static "
            "int8 activations), the GMF dot products, head projection, logit sum and top-K in float32; retrieve, "
            "fold_in and explain in float32"
        )
        info["compute"] = "int8"
        info["calibration_users"] = min(int8_compute.CALIBRATION_USERS, model.arch.n_users) if model else 0
        info["int8_ops"] = "the user projection, the item-constant ADD and the hidden FULLY_CONNECTED layers"
    return flat, info


def strip(flat: bytes) -> bytes:
    """Drop tensor names and empty quantization records (signatures name their inputs and outputs themselves)."""
    from litert_quantizer.utils import tfl_flatbuffer_utils as tfl

    model = tfl.read_model(flat)
    for sg in model.subgraphs:
        for t in sg.tensors:
            t.name = b""
            q = t.quantization
            if q is not None and q.scale is None and q.min is None and q.max is None and q.details is None:
                t.quantization = None
    return bytes(tfl.flatbuffer_utils.convert_object_to_bytearray(model))


def export(
    model: NCF, precision: str, out: Path, opts: Any, k: int = DEFAULT_K, user_features: FeaturePath | None = None
) -> dict:  # opts: BundleOptions
    """Write out (model.tflite) and the server-side user vectors next to it (and with a user feature path, the user
    encoder as USER_ENCODER); return the manifest fields."""
    if opts.shortlist and not opts.candidates:  # score is what ranks the items a shortlist leaves out
        opts = replace(opts, candidates=opts.shortlist)
    candidates = opts.candidates
    top = min(MAX_CANDIDATES, model.arch.n_items)
    if opts.shortlist and not k <= opts.shortlist <= top:
        raise EdgerecError(
            f"--shortlist must be 0 (recommend ranks the catalog) or lie in {k}..{top:,} (at least K = {k}, at most "
            f"the catalog's {model.arch.n_items:,} items and {MAX_CANDIDATES:,}); got {opts.shortlist:,}"
        )
    if candidates and not k <= candidates <= top:
        raise EdgerecError(
            f"--candidates must be 0 (no score signature) or lie in {k}..{top:,} (at least K = {k}, at most the "
            f"catalog's {model.arch.n_items:,} items and {MAX_CANDIDATES:,}); got {candidates:,}"
        )
    compute = getattr(opts, "compute", "float")
    if compute == "int8" and precision != "int8":
        raise EdgerecError(f"compute int8 needs precision int8 (the int8 weights it computes with); got {precision}")
    if user_features is not None and user_features.encoder.width > MAX_FEATURE_VALUES:
        raise EdgerecError(
            f"the user encoder's rows take up to {user_features.encoder.width:,} feature values; the bundle's "
            f"user_features takes at most {MAX_FEATURE_VALUES:,} (fewer multi-valued categories or text tokens)"
        )
    if getattr(opts, "item_table", "int8") != "int8" and model.arch.mlp_layers:  # fails before the conversion
        from edgerec.exporters import item_tables

        item_tables.choices(opts, model.arch.gmf_dim, model.arch.mlp_layers[0], model.arch.n_items)
    flat = convert(model, k, candidates, opts, user_features)
    if getattr(opts, "item_table", "int8") == "int8":
        flat, info = quantize(flat, precision, compute, model, candidates, opts.shortlist)
        flat = strip(flat)
    else:
        flat, info = compressed_tables(model, flat, precision, opts, k, user_features=user_features)
    shortlist = shortlist_gate(model, flat, opts, k) if opts.shortlist else None
    out.write_bytes(flat)
    ug, um = user_vectors(model)
    vectors = torch.cat([ug, um], dim=1).numpy().astype(np.float32)
    np.save(out.parent / USER_VECTORS, vectors, allow_pickle=False)
    g, d, n = ug.shape[1], um.shape[1], model.arch.n_items
    files = [out.name, "manifest.json", "id_maps.json"]
    if opts.explain:
        from safetensors.numpy import save_file

        weights = {name: v.detach().numpy() for name, v in model.state_dict().items()}
        save_file(item_side_tensors(weights), str(out.parent / ITEM_SIDE))
        files.append(ITEM_SIDE)
    width = 0
    if user_features is not None:
        write_json(out.parent / USER_ENCODER, user_features.encoder.to_json())
        files.append(USER_ENCODER)
        width = user_features.encoder.width
    fields = {
        "signatures": signatures(g, d, n, k, opts, width),
        "k": k,
        "candidates": candidates,
        # what bench measures: recommend over the catalog, and score over a full candidate list
        "buckets": sorted({n, *([candidates] if candidates else [])}),
        "user_vector_dims": {"gmf": g, "mlp": d},
        "user_vectors": USER_VECTORS,
        "bundle_files": files,
        "explainers": ["similarity", "exact"] if opts.explain else [],
        **({"item_side": ITEM_SIDE} if opts.explain else {}),
        "quantization": info,
        "macs_per_item": folded_macs(model.arch),
    }
    if shortlist is not None:
        fields["shortlist"] = shortlist
    if opts.explain:
        fields["max_history"] = opts.max_history
        fields["reasons"] = min(opts.reasons, opts.max_history)
        negatives = fold_in_negatives(n, opts.fold_in_negatives, opts.fold_in.seed)
        fields["fold_in"] = {**asdict(opts.fold_in), "negative_items": negatives.tolist()}
    if user_features is not None:
        fields["user_features"] = {
            "encoder": USER_ENCODER,
            "width": width,
            "columns": [c.name for c in user_features.encoder.columns],
        }
    return fields


def compressed_tables(
    model: NCF,
    flat: bytes,
    precision: str,
    opts: Any,
    k: int,
    ref: Any = None,
    plain: bytes | None = None,
    user_features: FeaturePath | None = None,
) -> tuple[bytes, dict]:
    """The bundle with compressed item tables (edgerec.exporters.item_tables): each format of opts (one, or every
    candidate with `auto`) encoded into the fp32 graph, quantized, and measured in LiteRT against the uncompressed
    model's exhaustive top-K (`ref`, an item_tables.Reference: computed here when not given); the int8 candidate is
    the bundle item_table int8 exports (`plain`, its fp32 flatbuffer: converted when needed). Kept: the smallest that
    passes the gate and max_bytes; the candidates are built in the order of their estimated bytes (codebooks and maps
    left out) until an estimate reaches the smallest passing bundle's size. None passing: a one-line error naming
    each tried format's bytes and recall (nothing is written). `user_features`: the model's user feature path (its
    bundle's user_features signature), as `flat` was converted with."""
    from edgerec.exporters import item_tables

    folded = FoldedNCF(model, k)
    tables = {
        "gmf": folded.gmf.weight.detach().numpy(),
        "mlp": folded.item_mlp.detach().numpy(),
        "prior": folded.prior.detach().numpy(),
    }
    g, h0 = tables["gmf"].shape[1], tables["mlp"].shape[1]
    n = model.arch.n_items
    tries = item_tables.choices(opts, g, h0, n)
    ref = ref or reference(model, opts.gate_users, k)
    budget, tried = opts.max_bytes, []
    kept: tuple[Any, Any, bytes, dict, dict[str, float]] | None = None  # the smallest passing: choice, enc, q, ...
    for c in tries:
        estimate = c.bytes_per_item(g, h0, n) * n
        if kept is not None and estimate >= len(kept[2]):
            break  # in the order of estimates: this one and every later one would be larger than the one kept
        if budget is not None and estimate > budget:
            tried.append(f"{c.label} ~{estimate:,.0f} bytes (over the budget by ~{estimate - budget:,.0f}, not built)")
            continue
        enc = item_tables.encode(
            tables["gmf"], tables["mlp"], tables["prior"], c.fmt, c.pq_gmf, c.pq_mlp, head=c.pq_head
        )
        if c.fmt == "int8":  # the int8 bundle as item_table int8 writes it (score's GMF half over the catalog)
            plain = plain or convert(model, k, opts.candidates, replace(opts, item_table="int8"), user_features)
            q, info = quantize(plain, precision, "float", model, opts.candidates)
        else:
            q, info = quantize(item_tables.rewrite(flat, tables, enc), precision, "float", model, opts.candidates)
        q = strip(q)
        recall = ref.recall(q, opts.candidates)
        worst = min(recall.values())
        shown = ", ".join(f"{name} {v:.3f}" for name, v in recall.items())
        if worst < opts.table_recall:
            tried.append(
                f"{c.label} {len(q):,} bytes, recall@{k} {shown} (short of {opts.table_recall} by "
                f"{opts.table_recall - worst:.3f})"
            )
            continue
        if budget is not None and len(q) > budget:
            tried.append(f"{c.label} {len(q):,} bytes (over the budget by {len(q) - budget:,}), recall@{k} {shown}")
            continue
        this = (c, enc, q, info, recall)
        if kept is not None:  # two pass: the larger is recorded as tried
            small, large = (this, kept) if len(q) < len(kept[2]) else (kept, this)
            tried.append(
                f"{large[0].label} {len(large[2]):,} bytes, recall@{k} {min(large[4].values()):.3f} (passes; larger "
                f"than {small[0].label}'s {len(small[2]):,})"
            )
            this = small
        kept = this
    if kept is not None:
        c, enc, q, info, recall = kept
        if c.fmt != "int8":
            info["scheme"] = (
                f"{precision} weights, float32 compute; item tables {c.label} decoded in the graph "
                "once, when a signature is prepared (edgerec.exporters.item_tables), the item prior in 8 bits"
            )
            info.pop("item_constants", None)
        info = {
            **info,
            "item_table": {
                **enc.record(),
                "label": c.label,
                "bytes": len(q),
                "gate": {
                    "recall_at_k": recall,
                    "min_recall": opts.table_recall,
                    "users": len(ref.top),
                    "against": "the uncompressed (fp32) model's exhaustive top-K",
                },
                "tried": tried,
            },
        }
        return q, info
    what = "no item-table format passes" if len(tries) > 1 else f"item table {tries[0].label} fails"
    gate = f"recall@{k} >= {opts.table_recall} against the uncompressed model's top-{k}"
    limit = f" within {budget:,} bytes" if budget is not None else ""
    raise EdgerecError(f"{what} the gate ({gate}{limit}); nothing written: " + "; ".join(tried))


def shortlist_gate(model: NCF, flat: bytes, opts: Any, k: int) -> dict:
    """The shortlist's gate: recall@K of the bundle's recommend against the uncompressed model's exhaustive top-K on
    gate_users seeded users, at least table_recall; below it a one-line error and nothing written."""
    ref = reference(model, opts.gate_users, k)
    recall = ref.recall(flat, 0)["recommend"]
    if recall < opts.table_recall:
        raise EdgerecError(
            f"shortlist {opts.shortlist:,}: recall@{k} of recommend {recall:.3f} against the uncompressed model's "
            f"exhaustive top-{k} ({len(ref.top)} users) is short of {opts.table_recall} by "
            f"{opts.table_recall - recall:.3f}; nothing written (a longer shortlist, or 0: the whole catalog)"
        )
    return {
        "size": opts.shortlist,
        "first_stage": "GMF half + item prior (the retrieve signature's score)",
        "gate": {
            "recall_at_k": recall,
            "min_recall": opts.table_recall,
            "users": len(ref.top),
            "against": "the uncompressed (fp32) model's exhaustive top-K",
        },
    }


def reference(model: NCF, users: int, k: int) -> Any:  # -> item_tables.Reference
    """The uncompressed (fp32) model's exhaustive top-K for a seeded sample of its users."""
    from edgerec.exporters import item_tables

    ug, um = user_vectors(model)
    weights = {name: v.detach().numpy().astype(np.float32) for name, v in model.state_dict().items()}
    return item_tables.Reference.of(fold(weights), ug.numpy(), um.numpy(), users, k)


def signatures(g: int, d: int, n: int, k: int, opts: Any, feature_width: int = 0) -> dict[str, dict]:
    """Every signature's inputs and outputs, by name: [dtype, shape, meaning] (the app's contract); feature_width:
    the user_features signature's input length (0: the model has no user features)."""
    user = {"user_gmf": ["float32", [1, g], "the user's GMF vector"], "user_mlp": ["float32", [1, d], "MLP vector"]}
    top = {
        "top_items": ["int32", [k], "top-K item indices (id_maps.json 'items' gives the original ids)"],
        "top_scores": ["float32", [k], "their scores (logits), best first"],
    }
    s = getattr(opts, "shortlist", 0)
    if s:
        rest = {
            "shortlist": ["int32", [s], "the shortlist: the items of best GMF half + item prior, best first"],
            "shortlist_scores": ["float32", [s], "their scores (logits; rank them to leave items out)"],
        }
    else:
        rest = {"scores": ["float32", [n], "every item's score"]}
    out: dict[str, dict] = {"recommend": {"inputs": user, "outputs": {**top, **rest}}}
    if feature_width:
        out["user_features"] = {
            "inputs": {
                "feature_indices": [
                    "int32",
                    [feature_width],
                    f"the user's attributes encoded by {USER_ENCODER}, padded with index 0",
                ],
                "feature_weights": ["float32", [feature_width], "their weights, padded with 0"],
            },
            "outputs": {
                "user_gmf": ["float32", [1, g], "the GMF vector of a user known by their attributes alone"],
                "user_mlp": ["float32", [1, d], "their MLP vector (feed both to recommend, or to fold_in_from)"],
            },
        }
    c = opts.candidates
    if c:
        out["score"] = {
            "inputs": {**user, "items": ["int32", [c], "item indices to score; -1 pads a shorter list"]},
            "outputs": {
                "scores": ["float32", [c], f"each item's score (logit); padding scores {PAD_SCORE:g}"],
                "top_items": ["int32", [k], "the list's top-K item indices (padding only if it has < K items)"],
                "top_scores": ["float32", [k], "their scores, best first"],
            },
        }
        out["retrieve"] = {
            "inputs": {"user_gmf": user["user_gmf"]},
            "outputs": {
                "items": ["int32", [c], "the items whose GMF half scores highest: pass them to score"],
                "scores": ["float32", [c], "those GMF scores, best first"],
            },
        }
    if opts.explain:
        h, r = opts.max_history, min(opts.reasons, opts.max_history)
        history = {
            "history": ["int32", [h], "the user's item indices, padded with any index"],
            "history_mask": ["float32", [h], "1 for a history entry, 0 for padding"],
        }
        out["fold_in"] = {
            "inputs": history,
            "outputs": {
                "user_gmf": ["float32", [1, g], "the new user's GMF vector (feed it to recommend)"],
                "user_mlp": ["float32", [1, d], "the new user's MLP vector"],
            },
        }
        if feature_width:
            out["fold_in_from"] = {
                "inputs": {
                    **history,
                    "user_gmf": ["float32", [1, g], "the GMF vector to start from (user_features' output)"],
                    "user_mlp": ["float32", [1, d], "the MLP vector to start from"],
                },
                "outputs": out["fold_in"]["outputs"],
            }
        out["explain"] = {
            "inputs": {**user, **history, "items": ["int32", [k], "the recommended item indices"]},
            "outputs": {
                "reasons": ["int32", [k, r], "per recommended item, the history items behind it, strongest first"],
                "reason_weights": [
                    "float32",
                    [k, r],
                    f"their cosine similarity in the model's item spaces; {PAD_SCORE:g} where the history has fewer "
                    "than R items",
                ],
            },
        }
    return out
