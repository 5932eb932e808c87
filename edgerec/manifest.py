"""manifest.json, the self-description of an artifact folder: written at export, read and checked before use.
numpy-free, torch-free.

manifest.json records the target, precision, runtime, I/O, batch buckets, quantization, the source checkpoint,
data fingerprint, tool versions, verification metrics under "metrics", and every other file's sha256 and bytes
under "files". Readers verify the hashes before a runtime touches a file.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from edgerec.errors import EdgerecError
from edgerec.io import read_versioned_json, sha256_file, write_json

MANIFEST = "manifest.json"
FORMAT = "edgerec.artifact"
FORMAT_VERSION = 1


def file_records(folder: Path) -> dict[str, dict[str, Any]]:
    """{path: {"sha256", "bytes"}} for every file under folder except the manifest; paths relative, with "/"
    (a Triton repository nests its models: recommend/config.pbtxt, recommend/1/model.onnx)."""
    return {
        p.relative_to(folder).as_posix(): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.relative_to(folder).as_posix() != MANIFEST
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
