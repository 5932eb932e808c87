"""Post-training quantization of NCF, simulated exactly in PyTorch, with a stored calibration result.

Integer scheme (what the exporters reproduce):
- embedding tables: row-wise. int8 symmetric (q = round(x / s_row), s_row = max|row| / 127); int4 asymmetric
  (16 levels between the row's min and max; scale and offset stored as fp16, FBGEMM's layout); or fp16.
- linear layers, int8: weights per output channel, symmetric; the layer input per tensor, symmetric, with the
  calibrated threshold; bias as int32 at scale s_in * s_w; accumulation in int32. Products of int8 values summed
  over at most a few hundred inputs stay far below 2^24, so float32 arithmetic on the integer values is exact:
  the simulation computes the same numbers an integer kernel would.
- the score is the prediction layer's int32 accumulator times its scale: it is not requantised to int8, because
  256 output levels would tie items and blur the top-10.
- fp16 linear layers: weights and layer inputs rounded to fp16.

A feature model (edgerec.model.features.FeatureNCF) is quantized as it is exported: its folded NeuMF, whose id rows
hold id embedding + feature encoding, so each row, id and features together, is one quantized row. The feature
tables themselves are stored row-wise at the embedding precision beside the id tables (quant.safetensors), and an
id added later by its features (`edgerec add-items`) is a folded row like any other.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field

import torch
from safetensors.torch import save
from torch import nn

from edgerec.compression.calibrate import Observer, calibration_set
from edgerec.compression.config import QuantConfig
from edgerec.data.split import Dataset
from edgerec.errors import EdgerecError
from edgerec.io import check_versioned, parse_json
from edgerec.model.checkpoint import Checkpoint
from edgerec.model.features import fold
from edgerec.model.ncf import NCF, NCFArch

SPEC_JSON, SPEC_TENSORS = "quant.json", "quant.safetensors"
SPEC_FORMAT, SPEC_VERSION = "edgerec.quant", 1
QMAX8 = 127


@dataclass
class QuantSpec:
    """The calibration result: per-tensor input thresholds of every linear layer (input part) plus the config.
    Weight and table scales follow deterministically from the weights and are recomputed (and stored) on export."""

    config: QuantConfig
    input_amax: dict[str, float] = field(default_factory=dict)  # linear module name -> symmetric input threshold

    def scale(self, name: str) -> float:
        amax = self.input_amax[name]
        return amax / QMAX8 if amax > 0 else 1.0


def _linears(model: NCF) -> dict[str, nn.Linear]:
    return {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear)}


def input_parts(model: NCF | NCFArch, name: str) -> dict[str, slice]:
    """The separately quantized column ranges of a linear layer's input.

    NeuMF's prediction layer reads concat(GMF product, MLP output); the two halves differ in range by an order of
    magnitude, so one per-tensor scale would crush the GMF half (top-10 agreement fell to 0.75 on synthetic data).
    The layer is therefore computed as two int8 layers over the halves plus an add, exactly equal in fp32.
    """
    arch = model if isinstance(model, NCFArch) else model.arch
    if name == "predict" and arch.gmf_dim and arch.mlp_layers:
        return {"predict.gmf": slice(0, arch.gmf_dim), "predict.mlp": slice(arch.gmf_dim, None)}
    return {name: slice(None)}


@torch.no_grad()
def calibrate(model: NCF, ds: Dataset, cfg: QuantConfig = QuantConfig(), batch: int = 4096) -> QuantSpec:
    """Run the calibration set through the fp32 model (a feature model: folded) and record every linear layer's
    input range."""
    model = fold(model)
    users, items = calibration_set(ds, cfg.calibration_size, seed=cfg.seed)
    points = {n: input_parts(model, n) for n in _linears(model)}
    observers = {p: Observer(cfg.observer, cfg.percentile) for parts in points.values() for p in parts}

    def observe(name: str, x: torch.Tensor) -> None:
        for part, cols in points[name].items():
            observers[part].update(x[:, cols].numpy())

    hooks = [
        m.register_forward_hook(lambda mod, inp, out, name=n: observe(name, inp[0])) for n, m in _linears(model).items()
    ]
    try:
        model.eval()
        for s in range(0, len(users), batch):
            model(torch.from_numpy(users[s : s + batch]), torch.from_numpy(items[s : s + batch]))
    finally:
        for h in hooks:
            h.remove()
    return QuantSpec(cfg, {n: float(o.threshold()) for n, o in observers.items()})


def rowwise_int8(table: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """([rows, dim] int8, [rows] fp32 scale), symmetric per row."""
    scale = table.abs().amax(dim=1).clamp_min(1e-12) / QMAX8
    return torch.round(table / scale[:, None]).clamp(-QMAX8, QMAX8).to(torch.int8), scale


def rowwise_int4(table: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """([rows, dim] uint8 codes 0..15, [rows] fp16 scale, [rows] fp16 offset), asymmetric per row."""
    lo, hi = table.amin(dim=1), table.amax(dim=1)
    scale = ((hi - lo) / 15).clamp_min(1e-8).half()
    offset = lo.half()
    codes = torch.round((table - offset.float()[:, None]) / scale.float()[:, None]).clamp(0, 15).to(torch.uint8)
    return codes, scale, offset


def dequantized_table(table: torch.Tensor, precision: str) -> torch.Tensor:
    if precision == "fp32":
        return table.clone()
    if precision == "fp16":
        return table.half().float()
    if precision == "int8":
        q, s = rowwise_int8(table)
        return q.float() * s[:, None]
    codes, scale, offset = rowwise_int4(table)
    return codes.float() * scale.float()[:, None] + offset.float()[:, None]


def per_channel_int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """([out, in] int8, [out] fp32 scale), symmetric per output channel."""
    return rowwise_int8(weight)


class QuantLinear(nn.Module):
    """A linear layer computing what its int8 (or fp16) kernel computes.

    parts maps input column ranges to their input scales; each range is one int8 layer with its own per-channel
    weight scales, and their outputs are added (one range: an ordinary int8 layer, with an int32 bias).
    """

    def __init__(self, linear: nn.Linear, precision: str, parts: list[tuple[slice, float]]) -> None:
        super().__init__()
        self.precision = precision
        self.slices = [sl for sl, _ in parts]
        w, b = linear.weight.detach(), linear.bias.detach()
        if precision == "int8":
            self.in_scales = [scale for _, scale in parts]
            for k, (sl, scale) in enumerate(parts):
                q, s_w = per_channel_int8(w[:, sl])
                self.register_buffer(f"w_q{k}", q.float())  # integer values held in float32 (exact)
                self.register_buffer(f"acc_scale{k}", scale * s_w)  # [out]
            if len(parts) == 1:
                self.register_buffer("b", torch.round(b / self.acc_scale0) * self.acc_scale0)  # int32 bias
            else:
                self.register_buffer("b", b.clone())  # added in float after the per-part dequantisation
        elif precision == "fp16":
            self.register_buffer("w", w.half().float())
            self.register_buffer("b", b.half().float())
        else:
            self.register_buffer("w", w.clone())
            self.register_buffer("b", b.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.precision != "int8":
            x = x.half().float() if self.precision == "fp16" else x
            return x @ self.w.T + self.b
        out = self.b
        for k, (sl, scale) in enumerate(zip(self.slices, self.in_scales, strict=True)):
            # activations saturate at -128, as int8 kernels (ONNX, TensorRT, TFLite) do; weights stay in +-127
            x_q = torch.round(x[:, sl] / scale).clamp(-QMAX8 - 1, QMAX8)
            out = out + (x_q @ getattr(self, f"w_q{k}").T) * getattr(self, f"acc_scale{k}")
        return out


class QuantizedNCF(nn.Module):
    """An NCF (a feature model: its folded NeuMF) whose tables and layers are replaced by their quantized
    counterparts (same forward signature)."""

    def __init__(self, model: NCF, spec: QuantSpec) -> None:
        super().__init__()
        self.arch: NCFArch = model.arch
        self.spec = spec
        fp = copy.deepcopy(fold(model)).eval()
        cfg = spec.config
        with torch.no_grad():
            for emb in fp.tables().values():
                emb.weight.copy_(dequantized_table(emb.weight, cfg.embeddings))
        names = {id(m): n for n, m in _linears(fp).items()}

        def swap(m: nn.Linear) -> QuantLinear:
            parts = input_parts(fp, names[id(m)])
            return QuantLinear(m, cfg.mlp, [(cols, spec.scale(p)) for p, cols in parts.items()])

        if fp.arch.mlp_layers:
            fp.mlp = nn.Sequential(*[swap(m) if isinstance(m, nn.Linear) else m for m in fp.mlp])
        fp.predict = swap(fp.predict)  # type: ignore[assignment]
        self.inner = fp

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.inner(users, items)


def quantize(model: NCF, ds: Dataset, cfg: QuantConfig = QuantConfig()) -> QuantizedNCF:
    """Calibrate on ds and return the simulated quantized model (its .spec is the calibration result)."""
    return QuantizedNCF(model, calibrate(model, ds, cfg))


def spec_files(model: NCF, spec: QuantSpec) -> dict[str, bytes]:
    """quant.json (config, input thresholds and scales) and quant.safetensors (the integer tables and weights with
    their scales), attached to a checkpoint: the exporters read these instead of recalibrating. A feature model's
    tables are its folded rows (what runs), and its feature tables are stored the same way under their own names."""
    tensors: dict[str, torch.Tensor] = {}
    tables = {n: m.weight for n, m in fold(model).named_modules() if isinstance(m, nn.Embedding)}
    tables.update({n: m.weight for n, m in model.named_modules() if isinstance(m, nn.EmbeddingBag)})
    for name, weight in tables.items():
        w = weight.detach()
        if spec.config.embeddings == "int8":
            tensors[f"{name}.q"], tensors[f"{name}.scale"] = rowwise_int8(w)
        elif spec.config.embeddings == "int4":
            tensors[f"{name}.q"], tensors[f"{name}.scale"], tensors[f"{name}.offset"] = rowwise_int4(w)
    for name, lin in _linears(model).items():
        for part, cols in input_parts(model, name).items():
            if spec.config.mlp == "int8":
                tensors[f"{part}.weight.q"], tensors[f"{part}.weight.scale"] = per_channel_int8(lin.weight[:, cols])
    meta = {
        "format": SPEC_FORMAT,
        "format_version": SPEC_VERSION,
        "config": asdict(spec.config),
        "input_amax": spec.input_amax,
        "input_scale": {n: spec.scale(n) for n in spec.input_amax},
        "input_zero_point": dict.fromkeys(spec.input_amax, 0),
        "score": "prediction-layer int32 accumulator times its scale (not requantised)",
    }
    files = {SPEC_JSON: (json.dumps(meta, indent=2) + "\n").encode()}
    if tensors:
        files[SPEC_TENSORS] = save({k: v.contiguous() for k, v in tensors.items()})
    return files


def spec_of(ck: Checkpoint) -> QuantSpec | None:
    """The calibration result a checkpoint carries (quant.json, read through the versioned reader), or None."""
    raw = ck.read(SPEC_JSON)
    if raw is None:
        return None
    where = ck.path / SPEC_JSON if ck.path else SPEC_JSON
    meta = check_versioned(parse_json(raw, where), where, SPEC_FORMAT, SPEC_VERSION, "calibration result")
    try:
        cfg = QuantConfig(**meta["config"])
        return QuantSpec(cfg, {str(k): float(v) for k, v in meta["input_amax"].items()})
    except (KeyError, TypeError, ValueError, EdgerecError) as e:
        raise EdgerecError(f"{where}: malformed calibration result ({e})") from None


def carried_spec_files(ck: Checkpoint, model: NCF) -> dict[str, bytes]:
    """ck's calibration result for `model`, ck's model grown by ids added through their features: the same input
    thresholds, the integer tables recomputed ({} when ck stores no calibration)."""
    spec = spec_of(ck)
    return {} if spec is None else spec_files(model, spec)


def runtime_model(ck: Checkpoint) -> nn.Module:
    """The model as it will run: the exact integer simulation when the checkpoint is calibrated, else its weights."""
    spec = spec_of(ck)
    return QuantizedNCF(ck.model, spec) if spec is not None else ck.model
