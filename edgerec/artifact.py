"""Artifacts: an exported model in a folder (model file, manifest.json, id_maps.json), as the object the verbs pass
around. torch-free."""

from __future__ import annotations

import shutil
import weakref
from pathlib import Path
from typing import Any

from edgerec.io import atomic_dir
from edgerec.manifest import MANIFEST, read_manifest, verify_files


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
        """verified (checked in its runtime and within its parity bound) or export-only (see export_only)."""
        return str(self.manifest.get("status", "verified"))

    @property
    def export_only(self) -> str | None:
        """Why the export could not be finished here (a TensorRT engine without TensorRT: the artifact then holds
        the verified ONNX), else None."""
        return self.manifest.get("export_only")

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

    def discard(self) -> None:
        """Remove a temporary artifact's folder now (an artifact that was saved, or loaded, is left alone)."""
        if self._cleanup is not None:
            self._cleanup()
            self._cleanup = None

    def __repr__(self) -> str:
        return f"Artifact({str(self.folder)!r}, target={self.target!r}, precision={self.precision!r}, {self.status})"


def is_artifact(path: Path) -> bool:
    return (path / MANIFEST).is_file()
