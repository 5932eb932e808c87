"""A foreign model as the format readers hand it over, and its mapping onto edgerec's NeuMF.

A reader returns a `Foreign`: the weights already renamed and laid out as edgerec's `NCF` state dict (torch layout,
predict layer over concat[gmf_vector, mlp_vector]), the source key each came from, the id maps, and a reference
forward written from the source format's own definition over the file's raw tensors (its transposes, its concat
order, its padding row). `build` infers the architecture from the shapes, refusing shapes that do not make a NeuMF
(naming the tensors that disagree); `fidelity` scores a sample of pairs both ways and refuses a mapping whose logits
differ by more than FIDELITY_TOL.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgerec.errors import EdgerecError

FIDELITY_TOL = 1e-5  # largest |logit difference| between the source's math and the imported NeuMF
FIDELITY_PAIRS = 4096
TABLES = ("gmf_user", "gmf_item", "mlp_user", "mlp_item")

# (dense user indices, dense item indices) -> [B] float64 logits computed the source's way
Reference = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass
class Foreign:
    format: str
    tensors: dict[str, np.ndarray]  # edgerec NCF state-dict key -> array (torch layout)
    mapping: dict[str, str]  # edgerec key -> where it came from in the source ("layer1/layer1_W, transposed")
    reference: Reference
    user_ids: np.ndarray | None = None  # None: dense 0..n-1
    item_ids: np.ndarray | None = None
    notes: dict[str, Any] = field(default_factory=dict)


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def f64(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _shape(a: np.ndarray) -> str:
    return "x".join(str(n) for n in a.shape)


def architecture(f: Foreign) -> Any:  # -> edgerec.model.ncf.NCFArch
    """The NCFArch the tensors describe; one-line errors name the tensors whose shapes disagree."""
    from edgerec.model.ncf import NCFArch

    t, src = f.tensors, f.mapping

    def name(k: str) -> str:
        return f"{src.get(k, k)} [{_shape(t[k])}]"

    for k, a in t.items():
        if a.ndim != (1 if k.endswith(".bias") else 2):
            dims = 1 if k.endswith(".bias") else 2
            raise EdgerecError(f"{f.format}: {src.get(k, k)} has shape [{_shape(a)}]: expected {dims} dimensions")
    gmf = "gmf_user.weight" in t or "gmf_item.weight" in t
    layers = sorted(int(m.group(1)) for k in t if (m := re.fullmatch(r"mlp\.(\d+)\.weight", k)))
    mlp = bool(layers) or "mlp_user.weight" in t or "mlp_item.weight" in t
    need = ["predict.weight", "predict.bias"]
    if gmf:
        need += ["gmf_user.weight", "gmf_item.weight"]
    if mlp:
        need += ["mlp_user.weight", "mlp_item.weight"] + [f"mlp.{n}.bias" for n in layers]
    missing = [src.get(k, k) for k in need if k not in t]
    if mlp and not layers:
        missing.append("the MLP's Linear layers")
    if missing:
        raise EdgerecError(f"{f.format}: missing tensors: {', '.join(missing)}")
    users = [k for k in ("gmf_user.weight", "mlp_user.weight") if k in t]
    items = [k for k in ("gmf_item.weight", "mlp_item.weight") if k in t]
    for side, keys in (("user", users), ("item", items)):
        if len({t[k].shape[0] for k in keys}) > 1:
            raise EdgerecError(f"{f.format}: the {side} tables differ in rows: {' vs '.join(name(k) for k in keys)}")
    n_users, n_items = t[users[0]].shape[0], t[items[0]].shape[0]
    gmf_dim = 0
    if gmf:
        if t["gmf_user.weight"].shape[1] != t["gmf_item.weight"].shape[1]:
            pair = f"{name('gmf_user.weight')} vs {name('gmf_item.weight')}"
            raise EdgerecError(f"{f.format}: GMF tables differ in width: {pair}")
        gmf_dim = t["gmf_user.weight"].shape[1]
    hidden: list[int] = []
    mu = mi = 0
    if mlp:
        mu, mi = t["mlp_user.weight"].shape[1], t["mlp_item.weight"].shape[1]
        width, before = mu + mi, "the MLP input (user + item embedding widths)"
        for n in layers:
            w, b = t[f"mlp.{n}.weight"], t[f"mlp.{n}.bias"]
            if w.shape[1] != width:
                layer = name(f"mlp.{n}.weight")
                raise EdgerecError(f"{f.format}: {layer} takes {w.shape[1]} inputs but {before} is {width}")
            if b.shape[0] != w.shape[0]:
                raise EdgerecError(f"{f.format}: {name(f'mlp.{n}.bias')} does not fit {name(f'mlp.{n}.weight')}")
            width, before = w.shape[0], src.get(f"mlp.{n}.weight", f"mlp.{n}.weight") + " outputs"
            hidden.append(width)
    predictive = gmf_dim + (hidden[-1] if hidden else 0)
    if t["predict.weight"].shape != (1, predictive) or t["predict.bias"].shape != (1,):
        parts = " + ".join(p for p in ((f"GMF {gmf_dim}" if gmf else ""), (f"MLP {hidden[-1]}" if hidden else "")) if p)
        raise EdgerecError(
            f"{f.format}: {name('predict.weight')} / {name('predict.bias')} do not fit the towers "
            f"(expected [1x{predictive}] over {parts})"
        )
    kind = "neumf" if gmf and mlp else ("gmf" if gmf else "mlp")
    return NCFArch(kind, n_users, n_items, gmf_dim, mu, mi, tuple(hidden))


def build(f: Foreign) -> Any:  # -> edgerec.model.ncf.NCF
    """The edgerec NCF holding the foreign weights (float32)."""
    import torch

    from edgerec.model.ncf import NCF

    arch = architecture(f)
    model = NCF(arch)
    # edgerec's MLP is a Sequential of (Linear, ReLU) pairs: the n-th Linear layer is mlp.{2n}
    order = sorted(int(m.group(1)) for k in f.tensors if (m := re.fullmatch(r"mlp\.(\d+)\.weight", k)))
    rename = {f"mlp.{n}.{p}": f"mlp.{2 * k}.{p}" for k, n in enumerate(order) for p in ("weight", "bias")}
    state = {rename.get(k, k): torch.from_numpy(np.ascontiguousarray(v, np.float32)) for k, v in f.tensors.items()}
    model.load_state_dict(state)
    return model.eval()


def fidelity(f: Foreign, model: Any, pairs: int = FIDELITY_PAIRS, seed: int = 0) -> dict[str, Any]:
    """Score `pairs` random (user, item) pairs by the source's math and by the imported NCF (both in float64);
    raise when they differ by more than FIDELITY_TOL. Returns the measured check for config.json."""
    import copy

    import torch

    rng = np.random.default_rng(seed)
    users = rng.integers(0, model.arch.n_users, pairs)
    items = rng.integers(0, model.arch.n_items, pairs)
    want = f.reference(users, items)
    with torch.no_grad():
        got = copy.deepcopy(model).double()(torch.from_numpy(users), torch.from_numpy(items)).numpy()
    err = float(np.max(np.abs(got - want)))
    if not np.isfinite(want).all() or not err <= FIDELITY_TOL:
        raise EdgerecError(
            f"{f.format}: fidelity check failed: the imported NeuMF's logits differ from the source's by up to "
            f"{err:.3g} (limit {FIDELITY_TOL:g}) on {pairs} pairs; nothing was written"
        )
    return {"pairs": pairs, "max_abs_logit_error": err, "tolerance": FIDELITY_TOL, "seed": seed}


def differences(found: set[str], expected: set[str]) -> str:
    """'missing a, b; extra c' ('' when the two sets are equal)."""
    missing, extra = sorted(expected - found), sorted(found - expected)
    parts = [f"missing {', '.join(missing)}"] if missing else []
    return "; ".join([*parts, *([f"extra {', '.join(extra)}"] if extra else [])])


def exact_keys(fmt: str, found: set[str], expected: set[str]) -> None:
    """Refuse a file whose keys are not the format's: name the missing and the extra ones."""
    diff = differences(found, expected)
    if diff:
        raise EdgerecError(f"{fmt}: the file's keys are not a {fmt} NeuMF's: {diff}")
