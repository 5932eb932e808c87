"""`--format recbole`: a RecBole NeuMF checkpoint (and optionally RecBole's saved Dataset for the id map).

RecBole's trainer saves `torch.save({config, epoch, cur_step, best_valid_score, state_dict, other_parameter,
optimizer})`, a pickle of RecBole classes that `torch.load(weights_only=True)` refuses: it is read with
`pickled.load`, which runs none of it. NeuMF's keys: `user_mf_embedding.weight`, `item_mf_embedding.weight`,
`user_mlp_embedding.weight`, `item_mlp_embedding.weight`, `mlp_layers.mlp_layers.{1,4,7,...}.weight/bias` (MLPLayers
is a Sequential of Dropout, Linear, ReLU per layer, the ReLU after the last layer too) and `predict_layer.weight/bias`
over cat(mf_output, mlp_output); with `mf_train` or `mlp_train` False the predict layer reads only one tower.
Row 0 of every table is padding (`[PAD]`): RecBole's internal id is 1 + the token's factorized index, and the token
of each internal id is `field2id_token[field][id]` in its Dataset file (or give the ids as JSON).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from edgerec.errors import EdgerecError
from edgerec.importers import pickled
from edgerec.importers.files import expect
from edgerec.importers.foreign import Foreign, exact_keys, f64, relu

TABLES = {
    "user_mf_embedding.weight": "gmf_user.weight",
    "item_mf_embedding.weight": "gmf_item.weight",
    "user_mlp_embedding.weight": "mlp_user.weight",
    "item_mlp_embedding.weight": "mlp_item.weight",
}
PAD = "[PAD]"


def _config(ckpt: dict) -> dict[str, Any]:
    """RecBole's Config values (the stub's recorded state: final_config_dict), {} when the file has none."""
    cfg = ckpt.get("config")
    if isinstance(cfg, pickled.Inert):
        fields = cfg.fields()
        inner = fields.get("final_config_dict")
        return dict(inner) if isinstance(inner, dict) else fields
    return dict(cfg) if isinstance(cfg, dict) else {}


def _open(path: Path) -> Any:
    expect(path, "recbole", ("torch-zip", "pickle"))
    return pickled.load(path)


def _token_ids(dataset: Any, field: str, path: Path) -> np.ndarray:
    fields = dataset.fields() if isinstance(dataset, pickled.Inert) else {}
    tokens = fields.get("field2id_token", {})
    if not isinstance(tokens, dict) or not isinstance(tokens.get(field), np.ndarray | list):
        raise EdgerecError(f"{path}: no field2id_token[{field!r}] in the RecBole Dataset file")
    return np.asarray([str(t) for t in tokens[field]])


def _layers(state: dict[str, np.ndarray]) -> list[int]:
    """Module indices of MLPLayers' Linear layers (1, 4, 7, ... without batch norm)."""
    idx = sorted({int(m.group(1)) for k in state if (m := re.fullmatch(r"mlp_layers\.mlp_layers\.(\d+)\.weight", k))})
    if any(k.endswith("running_mean") for k in state):
        raise EdgerecError("recbole: the MLP uses batch normalisation (use_bn), which edgerec's NeuMF does not have")
    return idx


def load(paths: list[Path], id_maps: dict[str, list] | None) -> Foreign:
    objs = [(p, _open(p)) for p in paths]
    ckpts = [(p, o) for p, o in objs if isinstance(o, dict) and isinstance(o.get("state_dict"), dict)]
    datasets = [(p, o) for p, o in objs if isinstance(o, pickled.Inert) and "field2id_token" in o.fields()]
    if len(ckpts) != 1 or len(ckpts) + len(datasets) != len(paths):
        raise EdgerecError(
            "recbole takes the checkpoint RecBole's trainer saved (a dict with 'state_dict'), optionally followed by "
            "its saved Dataset file (for field2id_token); " + ", ".join(str(p) for p, _ in objs) + " are not that"
        )
    path, ck = ckpts[0]
    state = {str(k): v for k, v in ck["state_dict"].items()}
    if not all(isinstance(v, np.ndarray) for v in state.values()):
        raise EdgerecError(f"{path}: the state_dict holds entries that are not tensors")
    state = {k: v.astype(np.float32) if v.dtype != np.float32 else v for k, v in state.items()}
    cfg = _config(ck)
    layers = _layers(state)
    expected = {*TABLES, "predict_layer.weight", "predict_layer.bias"}
    expected |= {f"mlp_layers.mlp_layers.{n}.{p}" for n in layers for p in ("weight", "bias")}
    exact_keys("recbole", set(state), expected)
    for k in TABLES:
        if state[k].ndim != 2 or state[k].shape[0] < 2:
            raise EdgerecError(f"{path}: {k} has shape {list(state[k].shape)}: expected [1 + ids, width]")

    mf_dim = state["user_mf_embedding.weight"].shape[1]
    mlp_out = state[f"mlp_layers.mlp_layers.{layers[-1]}.weight"].shape[0] if layers else 0
    width = state["predict_layer.weight"].shape[-1]
    mf_train, mlp_train = bool(cfg.get("mf_train", True)), bool(cfg.get("mlp_train", True))
    if "mf_train" not in cfg and "mlp_train" not in cfg:  # no config: read it off the predict layer
        mf_train, mlp_train = width in (mf_dim, mf_dim + mlp_out), width in (mlp_out, mf_dim + mlp_out)
        if width == mf_dim == mlp_out:
            raise EdgerecError(f"{path}: cannot tell which tower the predict layer reads (the file has no config)")
    use = {"gmf": mf_train, "mlp": mlp_train}

    tensors: dict[str, np.ndarray] = {}
    mapping: dict[str, str] = {}
    for src, dst in TABLES.items():
        if use[dst[:3]]:
            tensors[dst], mapping[dst] = state[src][1:], f"{src} rows 1.. (row 0 is [PAD])"
    if mlp_train:
        for k, n in enumerate(layers):
            for p in ("weight", "bias"):
                tensors[f"mlp.{k}.{p}"] = state[f"mlp_layers.mlp_layers.{n}.{p}"]
                mapping[f"mlp.{k}.{p}"] = f"mlp_layers.mlp_layers.{n}.{p}"
    tensors["predict.weight"], tensors["predict.bias"] = state["predict_layer.weight"], state["predict_layer.bias"]
    mapping["predict.weight"], mapping["predict.bias"] = "predict_layer.weight", "predict_layer.bias"

    def reference(u: np.ndarray, i: np.ndarray) -> np.ndarray:  # NeuMF.forward on RecBole's internal ids
        s = {k: f64(v) for k, v in state.items()}
        uu, ii = u + 1, i + 1
        parts = []
        if mf_train:
            parts.append(s["user_mf_embedding.weight"][uu] * s["item_mf_embedding.weight"][ii])
        if mlp_train:
            x = np.concatenate([s["user_mlp_embedding.weight"][uu], s["item_mlp_embedding.weight"][ii]], axis=-1)
            for n in layers:  # Dropout (identity in eval), Linear, ReLU
                x = relu(x @ s[f"mlp_layers.mlp_layers.{n}.weight"].T + s[f"mlp_layers.mlp_layers.{n}.bias"])
            parts.append(x)
        return np.concatenate(parts, axis=-1) @ s["predict_layer.weight"][0] + s["predict_layer.bias"][0]

    n_users, n_items = state["user_mf_embedding.weight"].shape[0], state["item_mf_embedding.weight"].shape[0]
    users, items = _ids(cfg, datasets, id_maps, n_users, n_items)
    notes = {"padding_row": 0, "mf_train": mf_train, "mlp_train": mlp_train, "epoch": _plain(ck.get("epoch"))}
    notes["best_valid_score"] = _plain(ck.get("best_valid_score"))
    return Foreign("recbole", tensors, mapping, reference, users, items, notes)


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic | np.ndarray) and np.size(v) == 1:
        return v.item()
    return v if isinstance(v, int | float) else None


def _ids(
    cfg: dict, datasets: list[tuple[Path, Any]], id_maps: dict[str, list] | None, n_users: int, n_items: int
) -> tuple[np.ndarray, np.ndarray]:
    """Original ids per dense index (internal id - 1): from --id-maps, else the Dataset file, else refused."""
    if id_maps is not None:
        users, items, where = np.asarray(id_maps["users"]), np.asarray(id_maps["items"]), "--id-maps"
    elif datasets:
        path, ds = datasets[0]
        users = _token_ids(ds, str(cfg.get("USER_ID_FIELD", "user_id")), path)
        items = _token_ids(ds, str(cfg.get("ITEM_ID_FIELD", "item_id")), path)
        where = str(path)
    else:
        raise EdgerecError(
            "recbole: give the id map: RecBole's saved Dataset file as a second source (save_dataset: True) "
            "or --id-maps JSON {'users': [...], 'items': [...]}"
        )
    out = []
    for what, ids, rows in (("users", users, n_users), ("items", items, n_items)):
        if len(ids) == rows and str(ids[0]) == PAD:
            ids = ids[1:]
        if len(ids) != rows - 1:
            raise EdgerecError(
                f"{where}: {len(ids)} {what} in the id map, but the tables hold {rows - 1} (plus the [PAD] row)"
            )
        out.append(ids)
    return out[0], out[1]
