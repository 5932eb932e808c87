"""manifest.json, the self-description of an artifact folder: written at export, read and checked before use.
numpy-free, torch-free.

manifest.json records the target, precision, runtime, I/O, batch buckets, quantization, the source checkpoint,
data fingerprint, tool versions, verification metrics under "metrics", and every other file's sha256 and bytes
under "files". Readers verify the hashes before a runtime touches a file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgerec.errors import EdgerecError
from edgerec.io import read_versioned_json, sha256_file, write_json

MANIFEST = "manifest.json"
FORMAT = "edgerec.artifact"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Source:
    """The checkpoint an artifact was exported from."""

    checkpoint: str | None  # its folder's name, when it was loaded from one (never a path of the exporting machine)
    weights_sha256: str
    arch: dict[str, Any]
    metrics: dict[str, Any]  # its HR@10 / NDCG@10 as trained


@dataclass(frozen=True)
class Manifest:
    """What an export writes into manifest.json, one field per key (its schema is this class). On disk the target's
    own fields (`target_fields`: I/O names, signatures, buckets, quantization ...) and `extra` (a profile's record)
    sit beside these keys at the top level, and `files` is added by write_manifest."""

    target: str
    precision: str
    runtime: str
    model_file: str
    n_users: int
    n_items: int
    version: int  # the model's version: 1, +1 per `edgerec update`
    seed: int
    source: Source
    data: dict[str, Any]  # the data's summary and fingerprint
    tolerance: dict[str, Any]  # the parity bound it was gated on
    versions: dict[str, Any]  # the tools that made it
    created: str
    calibration: str | None = None  # how int8 scales were obtained
    target_fields: dict[str, Any] = field(default_factory=dict)
    lint: dict[str, Any] | None = None  # polygraphy check lint of the ONNX file, where the target has one
    lineage: dict[str, Any] | None = None  # an updated model's parents
    export_only: str | None = None  # why the artifact could not be finished here (else it is verified)
    metrics: dict[str, Any] | None = None  # HR@10 / NDCG@10 measured through the artifact's runtime
    verification: dict[str, Any] | None = None  # deltas, agreement, score error, batch parity against fp32
    extra: dict[str, Any] = field(default_factory=dict)
    score: str = "float32 logit (sigmoid gives the probability); higher = more relevant"
    ids: str = "dense indices; id_maps.json maps them to the original user and item ids"

    @property
    def status(self) -> str:
        return "export-only" if self.export_only else "verified"

    def to_json(self) -> dict[str, Any]:
        optional = {"lint": self.lint, "lineage": self.lineage, "export_only": self.export_only}
        return {
            "target": self.target,
            "precision": self.precision,
            "runtime": self.runtime,
            "model_file": self.model_file,
            "status": self.status,
            "n_users": self.n_users,
            "n_items": self.n_items,
            "score": self.score,
            "ids": self.ids,
            **self.target_fields,
            "calibration": self.calibration,
            "source": {
                "checkpoint": self.source.checkpoint,
                "weights_sha256": self.source.weights_sha256,
                "arch": self.source.arch,
                "metrics": self.source.metrics,
            },
            "version": self.version,
            "data": self.data,
            "seed": self.seed,
            "tolerance": self.tolerance,
            "versions": self.versions,
            "created": self.created,
            **{k: v for k, v in optional.items() if v is not None},
            **({"metrics": self.metrics} if self.metrics is not None else {}),
            **({"verification": self.verification} if self.verification is not None else {}),
            **self.extra,
        }


def file_records(folder: Path) -> dict[str, dict[str, Any]]:
    """{path: {"sha256", "bytes"}} for every file under folder except the manifest and Python's bytecode caches;
    paths relative, with "/" (a Triton repository nests its models: recommend/config.pbtxt, recommend/1/model.onnx)."""
    return {
        p.relative_to(folder).as_posix(): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.relative_to(folder).as_posix() != MANIFEST and "__pycache__" not in p.parts
    }


def plain_path(name: str) -> bool:
    """A relative path inside the folder: no absolute path, no "..", no empty or "." parts, "/" separators."""
    parts = name.split("/")
    return bool(name) and "\\" not in name and all(p not in ("", ".", "..") for p in parts)


def write_manifest(folder: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    full = {"format": FORMAT, "format_version": FORMAT_VERSION, **manifest, "files": file_records(folder)}
    write_json(folder / MANIFEST, full)
    return full


def read_manifest(folder: str | Path, verify: bool = True) -> dict[str, Any]:
    """The manifest of an artifact folder, after checking that every listed file is present and unchanged."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EdgerecError(f"{folder}: no such artifact folder (expected {MANIFEST} and a model file)")
    manifest = read_versioned_json(folder / MANIFEST, FORMAT, FORMAT_VERSION, "artifact manifest")
    files = manifest.get("files")
    if (
        not isinstance(files, dict)
        or not isinstance(manifest.get("model_file"), str)
        or manifest["model_file"] not in files
    ):
        raise EdgerecError(f"{folder / MANIFEST}: malformed (no 'files' entry for the model file)")
    for name in files:
        if not isinstance(name, str) or not plain_path(name):
            raise EdgerecError(f"{folder / MANIFEST}: file entry {name!r} is not a relative path inside the folder")
    if verify:
        verify_files(folder, manifest, files)
    return manifest


def verify_files(folder: Path, manifest: dict[str, Any], required: Iterable[str]) -> None:
    """Every listed file that is present must match its hash; the `required` ones must be present."""
    required = set(required)
    for name, rec in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            if name in required:
                raise EdgerecError(f"{path}: listed in {MANIFEST} but missing; re-export the artifact")
            continue
        if (
            not isinstance(rec, dict)
            or path.stat().st_size != rec.get("bytes")
            or sha256_file(path) != rec.get("sha256")
        ):
            raise EdgerecError(f"{path}: sha256 does not match {MANIFEST}: the file was changed or is corrupt")
