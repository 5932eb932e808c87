"""`--format keras-h5`: weights saved by the NCF authors' Keras code (He et al. 2017, `model.save_weights`).

The file (Keras 1 or 2, read with h5py) has a root attribute `layer_names` and, per layer group, a `weight_names`
attribute naming its datasets: Keras 1 `layer1/layer1_W`, `layer1/layer1_b`; Keras 2 `layer1/layer1/kernel:0`.
NeuMF.py names its layers `mf_embedding_user`, `mf_embedding_item`, `mlp_embedding_user`, `mlp_embedding_item`,
`layer1` .. `layerL` and `prediction`; GMF.py and MLP.py name their tables `user_embedding` / `item_embedding`.
Dense kernels are [in, out] (transposed into torch's [out, in]); `prediction` is a Dense(1, sigmoid) over
concat[mf_vector, mlp_vector], so its pre-activation is the logit. No architecture is stored: it is read off the
shapes. Ids are the dense 0-based ids of the NCF split files.

Two files, a GMF and an MLP, are joined the way NeuMF.py's `load_pretrain_model` does: towers copied, prediction
kernel = 0.5 * concat(gmf kernel, mlp kernel), bias = 0.5 * (gmf bias + mlp bias).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgerec.errors import EdgerecError
from edgerec.importers.files import expect
from edgerec.importers.foreign import Foreign, differences, f64, relu

NEUMF_TABLES = {
    "mf_embedding_user": "gmf_user",
    "mf_embedding_item": "gmf_item",
    "mlp_embedding_user": "mlp_user",
    "mlp_embedding_item": "mlp_item",
}


@dataclass
class KerasModel:
    """One Keras file's weights: layer name -> [kernel or embedding, bias], with the dataset path of each."""

    path: Path
    layers: dict[str, list[np.ndarray]]
    where: dict[str, list[str]]

    @property
    def dense(self) -> list[str]:
        return sorted((n for n in self.layers if re.fullmatch(r"layer\d+", n)), key=lambda n: int(n[5:]))

    @property
    def kind(self) -> str:
        if "mf_embedding_user" in self.layers or "mlp_embedding_user" in self.layers:
            return "neumf"
        return "mlp" if self.dense else "gmf"


def _text(v: object) -> str:
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


def read(path: Path) -> KerasModel:
    """The layers of a Keras weights file that hold weights, in file order."""
    import h5py

    expect(path, "keras-h5", ("hdf5",))
    layers: dict[str, list[np.ndarray]] = {}
    where: dict[str, list[str]] = {}
    try:
        with h5py.File(path, "r") as f:
            root = f["model_weights"] if "layer_names" not in f.attrs and "model_weights" in f else f
            if "layer_names" not in root.attrs:
                raise EdgerecError(
                    f"{path}: an HDF5 file without the 'layer_names' attribute: not a Keras weights file "
                    "(save it with model.save_weights)"
                )
            for name in map(_text, root.attrs["layer_names"]):
                if name not in root or "weight_names" not in root[name].attrs:
                    raise EdgerecError(f"{path}: layer {name!r} is listed in layer_names but has no weight_names")
                names = [_text(w) for w in root[name].attrs["weight_names"]]
                if not names:
                    continue  # Input, Flatten, merge: no weights
                try:
                    arrays = [np.asarray(root[name][w]) for w in names]
                except KeyError as e:
                    raise EdgerecError(f"{path}: layer {name!r} names a weight it does not hold ({e})") from None
                order = sorted(range(len(names)), key=lambda k: _is_bias(names[k]))  # kernel first, then bias
                layers[name] = [arrays[k] for k in order]
                where[name] = [f"{name}/{names[k]}" for k in order]
    except OSError as e:
        raise EdgerecError(f"{path}: unreadable HDF5 file ({e})") from None
    return KerasModel(path, layers, where)


def _is_bias(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return base.endswith("_b") or base.startswith("bias")


def _check_layers(m: KerasModel) -> None:
    tables = list(NEUMF_TABLES) if m.kind == "neumf" else ["user_embedding", "item_embedding"]
    expected = {*tables, *m.dense, "prediction"}
    diff = differences(set(m.layers), expected)
    if diff:
        raise EdgerecError(f"{m.path}: the layers are not an NCF {m.kind.upper()}'s: {diff}")
    for name in tables:
        if len(m.layers[name]) != 1:
            raise EdgerecError(f"{m.path}: embedding layer {name!r} holds {len(m.layers[name])} weights, expected 1")
    for name in [*m.dense, "prediction"]:
        if len(m.layers[name]) != 2:
            raise EdgerecError(f"{m.path}: dense layer {name!r} holds {len(m.layers[name])} weights, expected 2")


def _towers(m: KerasModel, tensors: dict[str, np.ndarray], mapping: dict[str, str]) -> None:
    if m.kind == "neumf":
        roles = dict(NEUMF_TABLES)
    else:
        side = "gmf" if m.kind == "gmf" else "mlp"
        roles = {"user_embedding": f"{side}_user", "item_embedding": f"{side}_item"}
    for layer, role in roles.items():
        tensors[f"{role}.weight"] = m.layers[layer][0]
        mapping[f"{role}.weight"] = m.where[layer][0]
    for k, layer in enumerate(m.dense):
        w, b = m.layers[layer]
        tensors[f"mlp.{k}.weight"], tensors[f"mlp.{k}.bias"] = w.T, b
        mapping[f"mlp.{k}.weight"] = m.where[layer][0] + " (transposed)"
        mapping[f"mlp.{k}.bias"] = m.where[layer][1]


def _logits(m: KerasModel, u: np.ndarray, i: np.ndarray) -> np.ndarray:
    """The Keras model's pre-sigmoid output, from its own layer definitions (x @ kernel + bias)."""
    L = {n: [f64(a) for a in ws] for n, ws in m.layers.items()}
    parts = []
    if m.kind == "neumf":
        parts.append(L["mf_embedding_user"][0][u] * L["mf_embedding_item"][0][i])
        x = np.concatenate([L["mlp_embedding_user"][0][u], L["mlp_embedding_item"][0][i]], axis=1)
    elif m.kind == "gmf":
        parts.append(L["user_embedding"][0][u] * L["item_embedding"][0][i])
    else:
        x = np.concatenate([L["user_embedding"][0][u], L["item_embedding"][0][i]], axis=1)
    if m.kind != "gmf":
        for n in m.dense:
            x = relu(x @ L[n][0] + L[n][1])
        parts.append(x)
    w, b = L["prediction"]
    return np.concatenate(parts, axis=1) @ w[:, 0] + b[0]


def load(paths: list[Path]) -> Foreign:
    if len(paths) not in (1, 2):
        raise EdgerecError("keras-h5 takes one weights file (GMF, MLP or NeuMF) or a GMF file and an MLP file")
    models = [read(p) for p in paths]
    for m in models:
        _check_layers(m)
    tensors: dict[str, np.ndarray] = {}
    mapping: dict[str, str] = {}
    if len(models) == 1:
        m = models[0]
        _towers(m, tensors, mapping)
        w, b = m.layers["prediction"]
        tensors["predict.weight"], tensors["predict.bias"] = w.T, b
        mapping["predict.weight"] = m.where["prediction"][0] + " (transposed)"
        mapping["predict.bias"] = m.where["prediction"][1]
        return Foreign("keras-h5", tensors, mapping, lambda u, i: _logits(m, u, i), notes={"keras_model": m.kind})
    kinds = sorted(m.kind for m in models)
    if kinds != ["gmf", "mlp"]:
        raise EdgerecError(f"keras-h5 with two files needs a GMF file and an MLP file; got {' and '.join(kinds)}")
    gmf, mlp = sorted(models, key=lambda m: m.kind)
    _towers(gmf, tensors, mapping)
    _towers(mlp, tensors, mapping)
    (wg, bg), (wm, bm) = gmf.layers["prediction"], mlp.layers["prediction"]
    if wg.ndim != 2 or wm.ndim != 2:
        raise EdgerecError(f"{gmf.path}, {mlp.path}: the prediction kernels must be [inputs, 1]")
    tensors["predict.weight"] = 0.5 * np.concatenate([wg, wm], axis=0).T
    tensors["predict.bias"] = 0.5 * (bg + bm)
    mapping["predict.weight"] = "0.5 * concat(GMF prediction_W, MLP prediction_W), transposed (NCF pre-training)"
    mapping["predict.bias"] = "0.5 * (GMF prediction_b + MLP prediction_b)"

    def pair(u: np.ndarray, i: np.ndarray) -> np.ndarray:  # NeuMF.py's pre-trained init: the mean of the two logits
        return 0.5 * _logits(gmf, u, i) + 0.5 * _logits(mlp, u, i)

    notes = {"keras_model": "gmf+mlp pair", "pair_weights": [0.5, 0.5]}
    return Foreign("keras-h5", tensors, mapping, pair, notes=notes)
