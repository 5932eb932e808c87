"""`--format dle` (NVIDIA DeepLearningExamples' PyTorch NCF) and `--format state-dict` (any PyTorch NeuMF).

DLE's `model.pth` is `torch.save(model.state_dict())` of its NeuMF: `mf_user_embed`, `mf_item_embed`,
`mlp_user_embed`, `mlp_item_embed`, `mlp.{0..}` (a ModuleList of Linear layers, ReLU after each in forward) and
`final` over cat(xmf, xmlp); keys carry `module.` when saved from DistributedDataParallel, and the weights may be fp16.
Its ids are the `pd.factorize` order of its preprocessed CSV (only the counts are saved): give them with --id-maps,
else they are taken as 0..n-1.

`state-dict` reads any state_dict (.pth / .pt through torch.load(weights_only=True), or .safetensors) through a
mapping from edgerec's roles to the file's keys: gmf_user, gmf_item, mlp_user, mlp_item (embedding tables), mlp (the
Linear layers: a module prefix whose numbered children `PREFIX.<n>.weight` are taken in order, or the layers'
prefixes joined by `+`) and predict (the output layer's prefix; a missing bias imports as 0). Linear weights are
torch's [out, in]; concat says whether the output layer reads [gmf, mlp] (gmf-first) or [mlp, gmf] (mlp-first).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from edgerec.errors import EdgerecError
from edgerec.importers.files import state_dict, strip_prefix
from edgerec.importers.foreign import Foreign, exact_keys, f64, relu

DLE = {
    "gmf_user": "mf_user_embed",
    "gmf_item": "mf_item_embed",
    "mlp_user": "mlp_user_embed",
    "mlp_item": "mlp_item_embed",
    "mlp": "mlp",
    "predict": "final",
}
ROLES = ("gmf_user", "gmf_item", "mlp_user", "mlp_item", "mlp", "predict")


def _one(paths: list[Path], fmt: str) -> Path:
    if len(paths) != 1:
        raise EdgerecError(f"{fmt} takes one state_dict file; got {len(paths)}")
    return paths[0]


def _numbered(keys: set[str], prefix: str) -> list[str]:
    found = sorted(
        (int(m.group(1)) for k in keys if (m := re.fullmatch(re.escape(prefix) + r"\.(\d+)\.weight", k))),
    )
    return [f"{prefix}.{n}" for n in found]


def _layers(spec: str, keys: set[str]) -> list[str]:
    if "+" in spec:
        return [s.strip() for s in spec.split("+") if s.strip()]
    return _numbered(keys, spec) or ([spec] if f"{spec}.weight" in keys else [])


def _map(fmt: str, tensors: dict[str, np.ndarray], roles: Mapping[str, str], concat: str, exact: bool) -> Foreign:
    """Roles -> edgerec tensors, plus the reference forward over the file's own keys."""
    keys = set(tensors)
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise EdgerecError(f"{fmt}: unknown roles {', '.join(unknown)} in the mapping (known: {', '.join(ROLES)})")
    if "predict" not in roles:
        raise EdgerecError(f"{fmt}: the mapping must name the output layer: predict=PREFIX")
    tables = {r: roles[r] for r in ("gmf_user", "gmf_item", "mlp_user", "mlp_item") if r in roles}
    table_keys = {r: k if k in keys else f"{k}.weight" for r, k in tables.items()}
    layers = _layers(roles["mlp"], keys) if "mlp" in roles else []
    pred = roles["predict"]
    used = {*table_keys.values(), *(f"{p}.{s}" for p in layers for s in ("weight", "bias")), f"{pred}.weight"}
    if f"{pred}.bias" in keys:
        used.add(f"{pred}.bias")
    if exact:
        exact_keys(fmt, keys, used)
    else:
        missing = sorted(used - keys)
        if missing:
            raise EdgerecError(f"{fmt}: the mapping names keys the file does not have: {', '.join(missing)}")
        extra = sorted(keys - used)
        if extra:
            raise EdgerecError(f"{fmt}: keys the mapping does not use: {', '.join(extra)} (map them or remove them)")
    if "mlp" in roles and not layers:
        raise EdgerecError(f"{fmt}: no Linear layers under {roles['mlp']!r}")
    t = {k: v.astype(np.float32) for k, v in tensors.items()}
    out: dict[str, np.ndarray] = {}
    mapping: dict[str, str] = {}
    for r, k in table_keys.items():
        out[f"{r}.weight"], mapping[f"{r}.weight"] = t[k], k
    for n, p in enumerate(layers):
        for s in ("weight", "bias"):
            out[f"mlp.{n}.{s}"], mapping[f"mlp.{n}.{s}"] = t[f"{p}.{s}"], f"{p}.{s}"
    w = t[f"{pred}.weight"]
    b = t.get(f"{pred}.bias", np.zeros(1, dtype=np.float32))
    gmf_dim = t[table_keys["gmf_user"]].shape[-1] if "gmf_user" in table_keys else 0
    mapping["predict.weight"] = f"{pred}.weight"
    if concat == "mlp-first" and gmf_dim and layers and w.ndim == 2:  # edgerec reads [gmf, mlp]
        w = np.concatenate([w[:, w.shape[1] - gmf_dim :], w[:, : w.shape[1] - gmf_dim]], axis=1)
        mapping["predict.weight"] += " (columns reordered: the file reads [mlp, gmf])"
    out["predict.weight"], out["predict.bias"] = w, b
    mapping["predict.bias"] = f"{pred}.bias" if f"{pred}.bias" in keys else "0 (the file has no output bias)"

    def reference(u: np.ndarray, i: np.ndarray) -> np.ndarray:  # the model as the file's keys define it
        s = {k: f64(v) for k, v in tensors.items()}
        mf = mlp = None
        if "gmf_user" in table_keys:
            mf = s[table_keys["gmf_user"]][u] * s[table_keys["gmf_item"]][i]
        if layers:
            x = np.concatenate([s[table_keys["mlp_user"]][u], s[table_keys["mlp_item"]][i]], axis=1)
            for p in layers:
                x = relu(x @ s[f"{p}.weight"].T + s[f"{p}.bias"])
            mlp = x
        parts = [v for v in ((mlp, mf) if concat == "mlp-first" else (mf, mlp)) if v is not None]
        bias = s[f"{pred}.bias"][0] if f"{pred}.bias" in s else 0.0
        return np.concatenate(parts, axis=1) @ s[f"{pred}.weight"][0] + bias

    dtypes = sorted({str(v.dtype) for v in tensors.values()})
    return Foreign(fmt, out, mapping, reference, notes={"roles": dict(roles), "concat": concat, "dtypes": dtypes})


def load_dle(paths: list[Path]) -> Foreign:
    path = _one(paths, "dle")
    raw = state_dict(path, "dle")
    tensors = strip_prefix(raw)
    missing = [k for k in ("mf_user_embed.weight", "final.weight") if k not in tensors]
    if missing:
        keys = ", ".join(sorted(tensors)[:6]) + (" ..." if len(tensors) > 6 else "")
        raise EdgerecError(f"{path}: not an NVIDIA DLE NCF state_dict (no {', '.join(missing)}; it has {keys})")
    f = _map("dle", tensors, DLE, "gmf-first", exact=True)
    f.notes["module_prefix_stripped"] = tensors is not raw
    return f


def load_state_dict(paths: list[Path], roles: Mapping[str, str] | None, concat: str) -> Foreign:
    path = _one(paths, "state-dict")
    tensors = strip_prefix(state_dict(path, "state-dict"))
    if not roles:
        listing = ", ".join(f"{k} [{'x'.join(map(str, v.shape))}]" for k, v in sorted(tensors.items())[:12])
        raise EdgerecError(
            f"{path}: state-dict needs --map gmf_user=KEY,gmf_item=KEY,mlp_user=KEY,mlp_item=KEY,mlp=PREFIX,"
            f"predict=PREFIX naming the file's keys: {listing}"
        )
    return _map("state-dict", tensors, roles, concat, exact=False)
