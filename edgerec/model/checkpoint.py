"""Checkpoints: a trained NeuMF and everything that travels with it, in memory and as a folder. Never pickle.

DIR/model.safetensors   weights (state dict of edgerec.model.NCF)
DIR/config.json         format, architecture, data fingerprint, report, versions, sha256 of every other file
DIR/id_maps.json        original user and item ids, by dense index
DIR/metrics.json        test metrics (keys "hr@10", "ndcg@10", "protocol", "full_hr@10", ...)
DIR/features.json       a feature model's encoders, id dropout and table reports (edgerec.model.features)
DIR/features.safetensors  its encoded user / item features by dense index
DIR/<other files>       what a stage attached: quant.json + quant.safetensors (a calibration result),
                        data.safetensors (an updated checkpoint's own data), compress.json, search/...

`Checkpoint` is what the verbs take and return; `.save(path)` writes the folder atomically and `load(path)` reads it
back, checking every file against the hashes in config.json.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as load_numpy_bytes
from safetensors.numpy import save as save_numpy_bytes
from safetensors.torch import load_file, save

from edgerec.data.align import align
from edgerec.data.features import (
    BAG_SUFFIX,
    FEATURES_JSON,
    FEATURES_TENSORS,
    FeaturePath,
    checkpoint_feature_record,
    checkpoint_features,
    encoded_tensors,
)
from edgerec.data.interactions import Interactions, ids_to_list, load_id_maps
from edgerec.data.ratings import require_implicit
from edgerec.data.split import Dataset
from edgerec.errors import EdgerecError
from edgerec.io import (
    atomic_dir,
    read_json,
    read_versioned_json,
    sha256_bytes,
    sha256_file,
    write_json,
)
from edgerec.model.features import FeatureNCF, ModelFeatures, fold
from edgerec.model.ncf import NCF, NCFArch
from edgerec.sysinfo import versions

FORMAT = "edgerec.checkpoint"
FORMAT_VERSION = 1
WEIGHTS, CONFIG, ID_MAPS, METRICS = "model.safetensors", "config.json", "id_maps.json", "metrics.json"
DATA_FILE = "data.safetensors"
PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt")
_OWN = (WEIGHTS, CONFIG, ID_MAPS, METRICS)
_FEATURE_FILES = (FEATURES_JSON, FEATURES_TENSORS)


def weights_bytes(model: NCF) -> bytes:
    return save({k: v.detach().contiguous() for k, v in model.state_dict().items()})


@dataclass
class Checkpoint:
    """A NeuMF (or GMF / MLP) with its id maps, config and report, and the files stages attached to it.

    `files` maps a relative path to its bytes (attached in memory) or to the file it was loaded from (read when
    needed, hash-checked). `path` is where it was loaded from or last saved (None: only in memory).
    """

    model: NCF
    user_ids: np.ndarray
    item_ids: np.ndarray
    config: dict[str, Any]
    metrics: dict[str, Any]
    files: dict[str, bytes | Path] = field(default_factory=dict)
    path: Path | None = None

    @classmethod
    def create(
        cls,
        model: NCF,
        ds: Dataset,
        report: dict[str, Any],
        extra: dict[str, Any] | None = None,
        files: dict[str, bytes] | None = None,
        store_data: bool = False,
    ) -> Checkpoint:
        """A new checkpoint of `model` trained on `ds`. extra adds keys to config.json; files are attached;
        store_data attaches the data itself (train interactions and test protocol), so that a later step (an
        update) needs no --data."""
        attached: dict[str, bytes | Path] = dict(files or {})
        if store_data:
            attached[DATA_FILE] = data_bytes(ds)
        data = {**ds.summary(), "fingerprint": ds.fingerprint()}
        return cls.of(model, ds.train.user_ids, ds.train.item_ids, report, data, extra, attached)

    @classmethod
    def of(
        cls,
        model: NCF,
        user_ids: np.ndarray,
        item_ids: np.ndarray,
        report: dict[str, Any],
        data: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
        files: dict[str, bytes | Path] | None = None,
    ) -> Checkpoint:
        """A new checkpoint of `model` on these id maps; data: the summary and fingerprint of the data it was
        trained or measured on ({} for none: an import without data)."""
        config = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "arch": model.arch.to_json(),
            "parameters": sum(p.numel() for p in model.parameters()),
            "data": data or {},
            "versions": versions(("edgerec", "torch", "numpy")),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **(extra or {}),
            "report": report,
        }
        attached = {**dict(files or {}), **feature_files(model)}
        if isinstance(model, FeatureNCF):
            config["features"] = {"sides": sorted(model.features.encoded), **model.features.training()}
        return cls(model.eval(), user_ids, item_ids, config, report.get("metrics", {}), attached)

    # -- what it holds ------------------------------------------------------------------------------------------

    @property
    def report(self) -> dict[str, Any]:
        return self.config.get("report", {})

    @property
    def objective(self) -> str:
        """What the model's output means: "implicit" (a logit: ranked) or "rating" (a predicted rating)."""
        return str(self.config.get("objective", "implicit"))

    @property
    def version(self) -> int:
        """The model's version: 1, +1 per `edgerec update`, `add-items` or `add-users`."""
        return int(self.config.get("version", 1))

    @property
    def weights_sha256(self) -> str:
        return str(self.config.get("weights_sha256") or sha256_bytes(weights_bytes(self.model)))

    def as_parent(self) -> dict[str, Any]:
        """Who this checkpoint is, as a child's lineage names its parent."""
        return {
            "parent_version": self.version,
            "parent_weights_sha256": self.weights_sha256,
            "parent_config_sha256": sha256_file(self.path / CONFIG) if self.path else None,
            "parent_path": str(self.path.resolve()) if self.path else None,
        }

    def read(self, name: str) -> bytes | None:
        """An attached file's bytes (None when it has none); a loaded file must match its hash in config.json."""
        value = self.files.get(name)
        if value is None or isinstance(value, bytes):
            return value
        data = value.read_bytes()
        if sha256_bytes(data) != self.config.get("extra_files", {}).get(name):
            raise EdgerecError(f"{value}: sha256 does not match config.json: the file was changed or is corrupt")
        return data

    @property
    def data(self) -> Dataset | None:
        """The data the checkpoint stores (an updated checkpoint), on its own id maps; None when it stores none."""
        raw = self.read(DATA_FILE)
        return None if raw is None else stored_dataset(self, raw)

    def feature_path(self, side: str = "user") -> FeaturePath | None:
        """A feature NeuMF's `side` feature path (its encoder and both towers' feature bags, numpy): the vectors of a
        `side` id it never saw, from that id's features. None for a model without `side` features."""
        model = self.model
        if not isinstance(model, FeatureNCF) or side not in model.features.encoders:
            return None
        if not (model.arch.gmf_dim and model.arch.mlp_layers):
            return None
        weights = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items() if k.endswith(BAG_SUFFIX)}
        return FeaturePath.of(weights, model.features.encoders[side])

    def require_implicit(self) -> None:
        """Refuse a rating model in one line: compression, export and updates need implicit-feedback logits."""
        require_implicit(self.objective, str(self.path or "the checkpoint"), "compression, export and updating")

    def folded(self) -> Checkpoint:
        """What export reads: a feature model as the plain NeuMF whose id rows hold id embedding + feature encoding
        (edgerec.model.features.fold: every known id scores as before), without the feature files; a checkpoint
        without features is returned as it is. A rating model is refused (require_implicit)."""
        self.require_implicit()
        if not isinstance(self.model, FeatureNCF):
            return self
        config = {k: v for k, v in self.config.items() if k not in ("weights_sha256", "features")}
        config["features_folded"] = self.config.get("features", {})
        config["arch"] = self.model.arch.to_json()
        files = {n: f for n, f in self.files.items() if n not in _FEATURE_FILES}
        extra = config.get("extra_files", {})
        if isinstance(extra, dict):
            config["extra_files"] = {n: h for n, h in extra.items() if n not in _FEATURE_FILES}
        return Checkpoint(fold(self.model), self.user_ids, self.item_ids, config, self.metrics, files, self.path)

    def align(self, ds: Dataset) -> Dataset:
        """ds on the model's id maps, matched by original id (edgerec.data.align: unknown ids counted and left
        out, data that barely matches refused)."""
        return align(ds, self.user_ids, self.item_ids, str(self.path or "the model"))[0]

    # -- on disk ------------------------------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the checkpoint folder atomically (a temporary folder renamed into place); returns the path."""
        path = Path(path)
        # the feature files, like the weights, from the model as it is now (a cold fit may have changed it in place)
        files = {**{name: self.read(name) for name in self.files}, **feature_files(self.model)}
        weights = weights_bytes(self.model)
        with atomic_dir(path) as tmp:
            for name, data in files.items():
                (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                (tmp / name).write_bytes(data or b"")
            (tmp / WEIGHTS).write_bytes(weights)
            maps = {"users": ids_to_list(self.user_ids), "items": ids_to_list(self.item_ids)}
            write_json(tmp / ID_MAPS, maps)
            write_json(tmp / METRICS, self.metrics)
            config = {
                **self.config,
                "weights_sha256": sha256_bytes(weights),
                "extra_files": {name: sha256_bytes(data or b"") for name, data in sorted(files.items())},
            }
            write_json(tmp / CONFIG, config)
        self.config, self.path = config, path
        self.files = {name: path / name for name in files}
        return path


def load(path: str | Path) -> Checkpoint:
    """Read and verify a checkpoint folder (format, weights hash, shapes against the recorded architecture)."""
    path = Path(path)
    if path.is_file() and path.suffix in PICKLE_SUFFIXES:
        raise EdgerecError(
            f"{path}: refusing a pickled file: unpickling can run arbitrary code; edgerec reads "
            "checkpoint folders of safetensors + JSON only (a model trained elsewhere: `edgerec import`)"
        )
    if not path.is_dir():
        raise EdgerecError(f"{path}: no such checkpoint folder (expected {WEIGHTS} and {CONFIG})")
    weights = path / WEIGHTS
    if not weights.is_file():
        pickled = [p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES]
        hint = f"; found {pickled[0]}, which is pickled and is never loaded (it could run code)" if pickled else ""
        raise EdgerecError(f"{path}: no {WEIGHTS}{hint}")
    config = read_versioned_json(path / CONFIG, FORMAT, FORMAT_VERSION, "checkpoint")
    if sha256_file(weights) != config.get("weights_sha256"):
        raise EdgerecError(f"{weights}: sha256 does not match {CONFIG}: the file was changed or is corrupt")
    arch = NCFArch.from_json(config.get("arch", {}))
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as e:
        raise EdgerecError(f"{weights}: unreadable safetensors file ({e})") from None
    model = NCF(arch) if FEATURES_TENSORS not in config.get("extra_files", {}) else _feature_model(path, arch, config)
    try:
        model.load_state_dict(state)
    except RuntimeError:
        raise EdgerecError(f"{weights}: tensor names or shapes do not match the architecture in {CONFIG}") from None
    model.eval()
    user_ids, item_ids = load_id_maps(path / ID_MAPS)
    if (len(user_ids), len(item_ids)) != (arch.n_users, arch.n_items):
        raise EdgerecError(f"{path}/{ID_MAPS}: sizes do not match the architecture")
    metrics = read_json(path / METRICS) if (path / METRICS).exists() else {}
    extra = config.get("extra_files", {})
    if not isinstance(extra, dict) or any(Path(n).is_absolute() or ".." in Path(n).parts for n in extra):
        raise EdgerecError(f"{path}/{CONFIG}: malformed 'extra_files' (relative file names inside the folder)")
    files: dict[str, bytes | Path] = {name: path / name for name in extra if name not in _OWN}
    return Checkpoint(model, user_ids, item_ids, config, metrics, files, path)


def feature_files(model: NCF) -> dict[str, bytes | Path]:
    """The files a feature model's checkpoint carries (none for a plain one)."""
    if not isinstance(model, FeatureNCF):
        return {}
    tensors = save_numpy_bytes(encoded_tensors(dict(model.features.encoded)))
    return {FEATURES_JSON: json.dumps(model.features.to_json(), indent=1).encode(), FEATURES_TENSORS: tensors}


def _feature_model(path: Path, arch: NCFArch, config: dict[str, Any]) -> FeatureNCF:
    encoded = checkpoint_features(path, config)
    record = checkpoint_feature_record(path, config)
    return FeatureNCF(arch, ModelFeatures.from_json(record, encoded or {}, str(path)))


def is_checkpoint(path: Path) -> bool:
    """Whether `path` looks like a checkpoint folder (what `edgerec.load` dispatches on)."""
    return (path / CONFIG).is_file() and (path / WEIGHTS).is_file()


def data_bytes(ds: Dataset) -> bytes:
    """A checkpoint's own data file: train interactions and test protocol, dense indices."""
    return save_numpy_bytes(
        {
            "train_users": ds.train.users.astype(np.int64),
            "train_items": ds.train.items.astype(np.int64),
            "test_users": ds.test_users.astype(np.int64),
            "test_items": ds.test_items.astype(np.int64),
            "test_negatives": ds.test_negatives.astype(np.int64),
        }
    )


def stored_dataset(ck: Checkpoint, raw: bytes) -> Dataset:
    """The data file's Dataset on the checkpoint's id maps, checked against its fingerprint."""
    where = f"{ck.path / DATA_FILE if ck.path else DATA_FILE}"
    try:
        a = load_numpy_bytes(raw)
        train = Interactions(a["train_users"], a["train_items"], ck.user_ids, ck.item_ids)
        name = str(ck.config.get("data", {}).get("name", "stored"))
        ds = Dataset(name, train, a["test_users"], a["test_items"], a["test_negatives"])
        for what, values, n in (("user", [train.users, ds.test_users], train.n_users),
                                ("item", [train.items, ds.test_items, ds.test_negatives], train.n_items)):  # fmt: skip
            if any(v.size and (v.min() < 0 or v.max() >= n) for v in values):
                raise EdgerecError(f"{where}: {what} indices outside the id maps")
    except (SafetensorError, KeyError, OSError) as e:
        raise EdgerecError(f"{where}: unreadable data file ({e})") from None
    if ds.fingerprint() != ck.config.get("data", {}).get("fingerprint"):
        raise EdgerecError(f"{where}: the stored data does not match the checkpoint's data fingerprint")
    return ds
