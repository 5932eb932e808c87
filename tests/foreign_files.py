"""Fixtures in the foreign formats edgerec imports, written the way the foreign tools write them.

keras_h5 follows Keras' `save_weights` (Keras 1.2 `save_weights_to_hdf5_group`: root `layer_names`, one group per
layer with a `weight_names` attribute, datasets `<layer>/<layer>_W` / `_b`; Keras 2: `<layer>/<layer>/kernel:0`),
with the layer names of the NCF authors' GMF.py, MLP.py and NeuMF.py, weightless layers included. dle_state_dict
writes the key names of NVIDIA DeepLearningExamples' NeuMF module; recbole_checkpoint pickles the dict RecBole's
trainer saves, with its classes standing in modules named as RecBole's.
"""

from __future__ import annotations

import collections
import contextlib
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import torch

from edgerec.model.ncf import NCF


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


def linears(model: NCF) -> list[torch.nn.Linear]:
    return [m for m in model.mlp if isinstance(m, torch.nn.Linear)] if model.arch.mlp_layers else []


def keras_layers(model: NCF, standalone: bool = True) -> dict[str, list[tuple[str, np.ndarray]]]:
    """Layer name -> [(weight suffix, value)] as the authors' code names them (kernels [in, out])."""
    kind = model.arch.kind
    layers: dict[str, list[tuple[str, np.ndarray]]] = {"user_input": [], "item_input": []}
    if kind == "neumf":
        layers["mlp_embedding_user"] = [("W", _np(model.mlp_user.weight))]
        layers["mlp_embedding_item"] = [("W", _np(model.mlp_item.weight))]
        layers["mf_embedding_user"] = [("W", _np(model.gmf_user.weight))]
        layers["mf_embedding_item"] = [("W", _np(model.gmf_item.weight))]
    else:
        user, item = (model.gmf_user, model.gmf_item) if kind == "gmf" else (model.mlp_user, model.mlp_item)
        layers["user_embedding"] = [("W", _np(user.weight))]
        layers["item_embedding"] = [("W", _np(item.weight))]
    layers["flatten_1"], layers["flatten_2"], layers["merge_1"] = [], [], []
    for k, lin in enumerate(linears(model), start=1):
        layers[f"layer{k}"] = [("W", _np(lin.weight).T), ("b", _np(lin.bias))]
    layers["prediction"] = [("W", _np(model.predict.weight).T), ("b", _np(model.predict.bias))]
    return layers


def keras_h5(path: Path, model: NCF, keras: int = 1, order: str = "file") -> Path:
    keras2 = {"W": "kernel:0", "b": "bias:0"}
    with h5py.File(path, "w") as f:
        layers = keras_layers(model)
        names = list(layers)
        f.attrs["layer_names"] = [n.encode() for n in names]
        f.attrs["backend"] = b"theano" if keras == 1 else b"tensorflow"
        f.attrs["keras_version"] = b"1.2.2" if keras == 1 else b"2.2.4"
        for name in names:
            g = f.create_group(name)
            weight_names = []
            for suffix, value in layers[name]:
                if keras == 1:
                    wn = f"{name}_{suffix}"
                else:
                    wn = f"{name}/" + ("embeddings:0" if "embedding" in name else keras2[suffix])
                weight_names.append(wn.encode())
                g.create_dataset(wn, data=value)
            g.attrs["weight_names"] = weight_names
    return path


def dle_state(model: NCF, fp16: bool = False, module: bool = False) -> dict[str, torch.Tensor]:
    """NVIDIA DLE NeuMF's state_dict keys for `model` (a NeuMF)."""
    sd: dict[str, torch.Tensor] = collections.OrderedDict()
    sd["mf_user_embed.weight"] = model.gmf_user.weight
    sd["mf_item_embed.weight"] = model.gmf_item.weight
    sd["mlp_user_embed.weight"] = model.mlp_user.weight
    sd["mlp_item_embed.weight"] = model.mlp_item.weight
    for k, lin in enumerate(linears(model)):
        sd[f"mlp.{k}.weight"], sd[f"mlp.{k}.bias"] = lin.weight, lin.bias
    sd["final.weight"], sd["final.bias"] = model.predict.weight, model.predict.bias
    out = collections.OrderedDict()
    for k, v in sd.items():
        v = v.detach().clone()
        out[("module." if module else "") + k] = v.half() if fp16 else v
    return out


def recbole_state(model: NCF) -> dict[str, torch.Tensor]:
    """RecBole NeuMF's state_dict for `model`: a [PAD] row 0 in every table, MLPLayers' Linear at 1, 4, 7, ..."""
    sd: dict[str, torch.Tensor] = collections.OrderedDict()
    names = {"gmf_user": "user_mf_embedding", "gmf_item": "item_mf_embedding"}
    names |= {"mlp_user": "user_mlp_embedding", "mlp_item": "item_mlp_embedding"}
    for ours, theirs in names.items():
        table = getattr(model, ours).weight.detach()
        sd[f"{theirs}.weight"] = torch.cat([torch.randn(1, table.shape[1]), table])  # row 0: padding
    for k, lin in enumerate(linears(model)):
        sd[f"mlp_layers.mlp_layers.{3 * k + 1}.weight"] = lin.weight.detach().clone()
        sd[f"mlp_layers.mlp_layers.{3 * k + 1}.bias"] = lin.bias.detach().clone()
    sd["predict_layer.weight"] = model.predict.weight.detach().clone()
    sd["predict_layer.bias"] = model.predict.bias.detach().clone()
    return sd


@contextlib.contextmanager
def fake_modules(*qualnames: str) -> Iterator[dict[str, type]]:
    """Classes importable under RecBole's module names for the duration (so pickle records those globals)."""
    made: dict[str, type] = {}
    added: list[str] = []
    for q in qualnames:
        mod, _, name = q.rpartition(".")
        parts = mod.split(".")
        for n in range(1, len(parts) + 1):
            m = ".".join(parts[:n])
            if m not in sys.modules:
                sys.modules[m] = types.ModuleType(m)
                added.append(m)
        cls = type(name, (), {"__module__": mod})
        setattr(sys.modules[mod], name, cls)
        made[q] = cls
    try:
        yield made
    finally:
        for m in added:
            sys.modules.pop(m, None)


def recbole_checkpoint(path: Path, model: NCF, config: dict, extra_state: dict | None = None) -> Path:
    """torch.save of the dict RecBole's Trainer._save_checkpoint writes, its Config a RecBole-named class."""
    with fake_modules("recbole.config.configurator.Config", "recbole.utils.enum_type.ModelType") as cls:
        cfg = cls["recbole.config.configurator.Config"]()
        cfg.final_config_dict = {"model": "NeuMF", "MODEL_TYPE": cls["recbole.utils.enum_type.ModelType"](), **config}
        state = {**recbole_state(model), **(extra_state or {})}
        obj = {
            "config": cfg,
            "epoch": 7,
            "cur_step": 0,
            "best_valid_score": 0.25,
            "state_dict": state,
            "other_parameter": None,
            "optimizer": {"state": {}, "param_groups": []},
        }
        torch.save(obj, path)
    return path


def recbole_dataset(path: Path, users: list[str], items: list[str]) -> Path:
    """pickle.dump of a RecBole Dataset object (protocol 4) holding field2id_token with the [PAD] token first."""
    import pickle

    with fake_modules("recbole.data.dataset.dataset.Dataset", "pandas.core.frame.DataFrame") as cls:
        ds = cls["recbole.data.dataset.dataset.Dataset"]()
        ds.uid_field, ds.iid_field = "user_id", "item_id"
        ds.field2id_token = {
            "user_id": np.asarray(["[PAD]", *users], dtype=object),
            "item_id": np.asarray(["[PAD]", *items], dtype=object),
        }
        ds.inter_feat = cls["pandas.core.frame.DataFrame"]()
        with path.open("wb") as fh:
            pickle.dump(ds, fh, protocol=4)
    return path
