"""Checkpoints: a folder with safetensors weights and JSON metadata. Never pickle.

DIR/model.safetensors   weights (state dict of edgerec.model.NCF)
DIR/config.json         format, architecture, data fingerprint, training config and report, versions,
                        sha256 of model.safetensors
DIR/id_maps.json        original user and item ids, by dense index
DIR/metrics.json        test metrics (keys "hr@10", "ndcg@10", "protocol", "full_hr@10", ...)
DIR/data.safetensors    (updated checkpoints) the train interactions and test protocol, dense indices
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load_file as load_numpy
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import load_file, save_file

from edgerec.data.interactions import Interactions, ids_from_list, ids_to_list
from edgerec.data.split import Dataset
from edgerec.errors import EdgerecError
from edgerec.io import atomic_dir, file_hashes, read_json, read_versioned_json, sha256_file, write_json
from edgerec.model.ncf import NCF, NCFArch

FORMAT = "edgerec.checkpoint"
FORMAT_VERSION = 1
DATA_FILE = "data.safetensors"
PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt")


@dataclass
class Checkpoint:
    model: NCF
    user_ids: np.ndarray
    item_ids: np.ndarray
    config: dict
    metrics: dict

    def check_data(self, ds: Dataset) -> None:
        """Refuse data whose id maps differ from the model's: indices would point at the wrong users or items."""
        same = np.array_equal(self.user_ids.astype(str), ds.train.user_ids.astype(str)) and np.array_equal(
            self.item_ids.astype(str), ds.train.item_ids.astype(str)
        )
        if not same:
            raise EdgerecError(
                f"the model's id maps ({len(self.user_ids)} users, {len(self.item_ids)} items) differ from the data's "
                f"({ds.n_users} users, {ds.n_items} items): evaluate it on the data it was trained on"
            )


def versions() -> dict[str, str]:
    import edgerec

    return {
        "edgerec": edgerec.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def save(
    path: str | Path,
    model: NCF,
    ds: Dataset,
    *,
    report: dict,
    extra: dict | None = None,
    write_extra: Callable[[Path], None] | None = None,
) -> Path:
    """Write a checkpoint folder atomically (a temporary folder renamed into place).

    extra adds keys to config.json; write_extra(folder) may add files (e.g. a calibration result) before the
    folder is renamed into place.
    """
    with atomic_dir(path) as tmp:
        if write_extra is not None:
            write_extra(tmp)
        extra_files = file_hashes(tmp)
        state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / "model.safetensors"))
        write_json(
            tmp / "id_maps.json", {"users": ids_to_list(ds.train.user_ids), "items": ids_to_list(ds.train.item_ids)}
        )
        write_json(tmp / "metrics.json", report.get("metrics", {}))
        write_json(
            tmp / "config.json",
            {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "arch": model.arch.to_json(),
                "parameters": sum(p.numel() for p in model.parameters()),
                "data": {**ds.summary(), "fingerprint": ds.fingerprint()},
                "weights_sha256": sha256_file(tmp / "model.safetensors"),
                "extra_files": extra_files,  # sha256 of the files write_extra added (calibration, data)
                "versions": versions(),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                **(extra or {}),
                "report": report,
            },
        )
    return Path(path)


def load(path: str | Path) -> Checkpoint:
    """Read and verify a checkpoint folder (format, weights hash, shapes against the recorded architecture)."""
    path = Path(path)
    if path.is_file() and path.suffix in PICKLE_SUFFIXES:
        raise EdgerecError(
            f"{path}: refusing a pickled file: unpickling can run arbitrary code; edgerec reads "
            "checkpoint folders of safetensors + JSON only"
        )
    if not path.is_dir():
        raise EdgerecError(f"{path}: no such checkpoint folder (expected model.safetensors and config.json)")
    weights = path / "model.safetensors"
    if not weights.is_file():
        pickled = [p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES]
        hint = f"; found {pickled[0]}, which is pickled and is never loaded (it could run code)" if pickled else ""
        raise EdgerecError(f"{path}: no model.safetensors{hint}")
    config = read_versioned_json(path / "config.json", FORMAT, FORMAT_VERSION, "checkpoint")
    if sha256_file(weights) != config.get("weights_sha256"):
        raise EdgerecError(f"{weights}: sha256 does not match config.json: the file was changed or is corrupt")
    arch = NCFArch.from_json(config.get("arch", {}))
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as e:
        raise EdgerecError(f"{weights}: unreadable safetensors file ({e})") from None
    model = NCF(arch)
    try:
        model.load_state_dict(state)
    except RuntimeError:
        raise EdgerecError(f"{weights}: tensor names or shapes do not match the architecture in config.json") from None
    model.eval()
    maps = read_json(path / "id_maps.json")
    try:
        user_ids, item_ids = ids_from_list(maps["users"]), ids_from_list(maps["items"])
    except (KeyError, TypeError):
        raise EdgerecError(f"{path}/id_maps.json: expected lists under 'users' and 'items'") from None
    if (len(user_ids), len(item_ids)) != (arch.n_users, arch.n_items):
        raise EdgerecError(f"{path}/id_maps.json: sizes do not match the architecture")
    metrics_path = path / "metrics.json"
    metrics = read_json(metrics_path) if metrics_path.exists() else {}
    return Checkpoint(model, user_ids, item_ids, config, metrics)


def save_data(folder: Path, ds: Dataset) -> None:
    """The checkpoint's own data (written by `edgerec update`): train interactions and test protocol."""
    save_numpy(
        {
            "train_users": ds.train.users.astype(np.int64),
            "train_items": ds.train.items.astype(np.int64),
            "test_users": ds.test_users.astype(np.int64),
            "test_items": ds.test_items.astype(np.int64),
            "test_negatives": ds.test_negatives.astype(np.int64),
        },
        str(folder / DATA_FILE),
    )


def stored_data(ck: Checkpoint, folder: str | Path) -> Dataset | None:
    """The data a checkpoint stores (hash-checked), on its own id maps; None when it stores none."""
    path = Path(folder) / DATA_FILE
    if not path.is_file():
        return None
    if sha256_file(path) != ck.config.get("extra_files", {}).get(DATA_FILE):
        raise EdgerecError(f"{path}: sha256 does not match config.json: the file was changed or is corrupt")
    try:
        a = load_numpy(str(path))
        train = Interactions(a["train_users"], a["train_items"], ck.user_ids, ck.item_ids)
        name = str(ck.config.get("data", {}).get("name", "stored"))
        ds = Dataset(name, train, a["test_users"], a["test_items"], a["test_negatives"])
        for what, values, n in (("user", [train.users, ds.test_users], train.n_users),
                                ("item", [train.items, ds.test_items, ds.test_negatives], train.n_items)):  # fmt: skip
            if any(v.size and (v.min() < 0 or v.max() >= n) for v in values):
                raise EdgerecError(f"{path}: {what} indices outside the id maps")
    except (SafetensorError, KeyError, OSError) as e:
        raise EdgerecError(f"{path}: unreadable data file ({e})") from None
    if ds.fingerprint() != ck.config.get("data", {}).get("fingerprint"):
        raise EdgerecError(f"{path}: the stored data does not match the checkpoint's data fingerprint")
    return ds
