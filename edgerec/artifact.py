"""Artifacts: a model file plus manifest.json (self-describing) and id_maps.json in a folder. numpy-free, torch-free.

manifest.json records the target, precision, runtime, I/O, batch buckets, quantization, the source checkpoint,
data fingerprint, tool versions, verification metrics under "metrics", and every other file's sha256 and bytes
under "files". Readers verify the hashes before a runtime touches a file.
"""

from __future__ import annotations

import shutil
import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from edgerec.errors import EdgerecError
from edgerec.io import atomic_dir, read_versioned_json, sha256_file, write_json

MANIFEST = "manifest.json"
FORMAT = "edgerec.artifact"
FORMAT_VERSION = 1


def file_records(folder: Path) -> dict[str, dict[str, Any]]:
    """{name: {"sha256", "bytes"}} for every file in folder except the manifest."""
    return {
        p.name: {"sha256": sha256_file(p), "bytes": p.stat().st_size}
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name != MANIFEST
    }


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
        if Path(name).name != name or name in (".", ".."):
            raise EdgerecError(
                f"{folder / MANIFEST}: file entry {name!r} is not a plain file name in the artifact folder"
            )
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


class Artifact:
    """An exported model: a folder holding the model file, manifest.json and id_maps.json (and what the target adds:
    the bundle's README and user vectors, trtexec.sh ...). `edgerec.export` returns one, `edgerec.bench` takes one.

    An artifact exported without `out` lives in a temporary folder that goes with the object; `.save(path)` copies
    it into place atomically (and the object then points there).
    """

    def __init__(self, folder: str | Path, manifest: dict[str, Any] | None = None, owned: Path | None = None) -> None:
        """owned: a temporary folder (holding `folder`) that is removed with the object."""
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder) if manifest is None else manifest
        self._cleanup = weakref.finalize(self, shutil.rmtree, owned, True) if owned is not None else None

    @classmethod
    def load(cls, folder: str | Path) -> Artifact:
        """Open an artifact folder after checking every file against its manifest."""
        return cls(folder)

    @property
    def target(self) -> str:
        return str(self.manifest["target"])

    @property
    def precision(self) -> str:
        return str(self.manifest["precision"])

    @property
    def status(self) -> str:
        """verified (checked in its runtime and within its parity bound) or export-only (see engine_missing)."""
        return str(self.manifest.get("status", "verified"))

    @property
    def engine_missing(self) -> str | None:
        """Why a TensorRT engine could not be built here (the artifact then holds the verified ONNX), else None."""
        return self.manifest.get("engine_missing")

    @property
    def metrics(self) -> dict[str, Any]:
        """HR@10 / NDCG@10 (sampled and full ranking) measured through the artifact's runtime at export."""
        return dict(self.manifest.get("metrics", {}))

    @property
    def verification(self) -> dict[str, Any]:
        """Deltas against the fp32 source, top-10 agreement, max score error, batch parity."""
        return dict(self.manifest.get("verification", {}))

    @property
    def model_file(self) -> Path:
        return self.folder / str(self.manifest["model_file"])

    @property
    def bytes(self) -> int:
        return int(self.manifest["files"][self.manifest["model_file"]]["bytes"])

    def scorer(self, threads: int = 1, runtime: str | None = None):  # -> edgerec.runtime.Scorer
        """The artifact opened in its runtime (or `runtime`, where the target has several)."""
        from edgerec.runtime import load_scorer

        return load_scorer(self.folder, threads=threads, runtime=runtime)

    def save(self, path: str | Path) -> Path:
        """Copy the artifact folder to `path` atomically (replacing what is there); the object then points there."""
        path = Path(path)
        if path.resolve() == self.folder.resolve():
            return path
        with atomic_dir(path) as tmp:
            shutil.copytree(self.folder, tmp, dirs_exist_ok=True)
            verify_files(tmp, self.manifest, self.manifest["files"])
        if self._cleanup is not None:
            self._cleanup()
            self._cleanup = None
        self.folder = path
        return path

    def __repr__(self) -> str:
        return f"Artifact({str(self.folder)!r}, target={self.target!r}, precision={self.precision!r}, {self.status})"


def is_artifact(path: Path) -> bool:
    return (path / MANIFEST).is_file()
