"""Bundle deltas: update a phone bundle in place of a full download, with a hash chain. No numpy needed to apply.

A delta turns the parent bundle's model file into the child's byte for byte: the byte ranges that differ (after an
`edgerec update --scope rows`, the rows of the items the new interactions touched) plus the child's small files
(manifest.json, id_maps.json, README.md) whole. It applies only when the layout is unchanged (same model file size:
no new items, same architecture); otherwise the app downloads the full bundle.

delta folder:
    delta.json    format, the parent's and the child's model sha256 and version, the ranges (offset, length), the
                  sha256 of patches.bin and of every small file
    patches.bin   the child's bytes of every range, concatenated
    manifest.json, id_maps.json, README.md   the child's, whole

apply_delta checks, in order: the delta's own hashes, that the bundle on the device IS the parent (its model's
sha256 equals delta.json's parent sha256: the hash chain), then patches a copy and checks the result's sha256 equals
the child's before it replaces anything.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from edgerec.errors import EdgerecError
from edgerec.io import atomic_dir, read_versioned_json, sha256_file, write_json
from edgerec.manifest import MANIFEST, read_manifest

FORMAT = "edgerec.delta"
FORMAT_VERSION = 1
DELTA_JSON = "delta.json"
PATCHES = "patches.bin"
SMALL_FILES = (MANIFEST, "id_maps.json", "README.md")
GAP = 32  # ranges closer than this are merged (fewer, slightly longer ranges)


def _ranges(a: bytes, b: bytes) -> list[tuple[int, int]]:
    import numpy as np

    diff = np.flatnonzero(np.frombuffer(a, np.uint8) != np.frombuffer(b, np.uint8))
    if diff.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(diff) > GAP)
    starts = np.r_[diff[0], diff[breaks + 1]]
    ends = np.r_[diff[breaks], diff[-1]] + 1
    return [(int(s), int(e - s)) for s, e in zip(starts, ends, strict=True)]


def make_delta(parent: str | Path, child: str | Path, out: str | Path) -> dict[str, Any]:
    """Write the delta that turns bundle `parent` into bundle `child`; returns delta.json's content."""
    parent, child = Path(parent), Path(child)
    pm, cm = read_manifest(parent), read_manifest(child)
    for m, where in ((pm, parent), (cm, child)):
        if m.get("target") != "tflite-bundle":
            raise EdgerecError(f"{where}: deltas are for phone bundles (target tflite-bundle); got {m.get('target')}")
    if (pm["model_file"], pm["precision"]) != (cm["model_file"], cm["precision"]):
        raise EdgerecError("the two bundles differ in model file or precision: ship the full bundle")
    a, b = (parent / pm["model_file"]).read_bytes(), (child / cm["model_file"]).read_bytes()
    if len(a) != len(b):
        raise EdgerecError(
            f"the model's layout changed ({len(a):,} -> {len(b):,} bytes: new items or another architecture): "
            "a delta cannot express it; ship the full bundle"
        )
    ranges = _ranges(a, b)
    with atomic_dir(out) as tmp:
        patches = b"".join(b[o : o + n] for o, n in ranges)
        (tmp / PATCHES).write_bytes(patches)
        small = {}
        for name in SMALL_FILES:
            if (child / name).is_file():
                shutil.copyfile(child / name, tmp / name)
                small[name] = sha256_file(tmp / name)
        record = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model_file": cm["model_file"],
            "parent": {"model_sha256": pm["files"][pm["model_file"]]["sha256"], "version": pm.get("version", 1)},
            "child": {"model_sha256": cm["files"][cm["model_file"]]["sha256"], "version": cm.get("version", 1)},
            "model_bytes": len(b),
            "ranges": [[o, n] for o, n in ranges],
            "patch_bytes": len(patches),
            "patches_sha256": hashlib.sha256(patches).hexdigest(),
            "files": small,
        }
        write_json(tmp / DELTA_JSON, record)
    return record


def _read_delta(delta: Path) -> dict[str, Any]:
    """delta.json, every field type-checked, and the delta's own files checked against it."""
    record = read_versioned_json(delta / DELTA_JSON, FORMAT, FORMAT_VERSION, "bundle delta")
    try:
        out = {
            "model_file": record["model_file"],
            "model_bytes": record["model_bytes"],
            "ranges": [(o, n) for o, n in record["ranges"]],
            "files": dict(record["files"]),
            "parent_sha256": record["parent"]["model_sha256"],
            "parent_version": record["parent"].get("version"),
            "child_sha256": record["child"]["model_sha256"],
            "patches_sha256": record["patches_sha256"],
        }
    except (KeyError, TypeError, ValueError, AttributeError):
        raise EdgerecError(f"{delta / DELTA_JSON}: malformed delta record") from None
    texts = [out["model_file"], out["parent_sha256"], out["child_sha256"], out["patches_sha256"], *out["files"]]
    numbers = [out["model_bytes"], *(x for r in out["ranges"] for x in r)]
    if not all(isinstance(t, str) for t in [*texts, *out["files"].values()]) or not all(
        isinstance(x, int) and not isinstance(x, bool) for x in numbers
    ):
        raise EdgerecError(f"{delta / DELTA_JSON}: malformed delta record (wrong field types)")
    for name in [out["model_file"], *out["files"]]:
        if Path(name).name != name or name in ("", ".", ".."):
            raise EdgerecError(f"{delta / DELTA_JSON}: {name!r} is not a plain file name")
    end = 0
    for o, n in out["ranges"]:
        if o < end or n <= 0 or o + n > out["model_bytes"]:
            raise EdgerecError(f"{delta / DELTA_JSON}: ranges overlap, are empty or run past the model's end")
        end = o + n
    patches = delta / PATCHES
    if not patches.is_file() or sha256_file(patches) != out["patches_sha256"]:
        raise EdgerecError(f"{patches}: missing, or its sha256 does not match {DELTA_JSON}")
    if patches.stat().st_size != sum(n for _, n in out["ranges"]):
        raise EdgerecError(f"{patches}: its size does not match the ranges")
    for name, digest in out["files"].items():
        if not (delta / name).is_file() or sha256_file(delta / name) != digest:
            raise EdgerecError(f"{delta / name}: missing, or its sha256 does not match {DELTA_JSON}")
    if MANIFEST not in out["files"]:
        raise EdgerecError(f"{delta / DELTA_JSON}: the delta carries no child manifest")
    return out


def apply_delta(bundle: str | Path, delta: str | Path, out: str | Path) -> dict[str, Any]:
    """Write to `out` the child bundle: `bundle` (which must be the delta's parent) with the delta applied.

    `bundle` is the device's folder (the bundle files; server-side files need not be there); out may equal bundle
    (replaced atomically, only after the result checked out). Returns the new manifest.
    """
    bundle, delta = Path(bundle), Path(delta)
    record = _read_delta(delta)
    model = bundle / record["model_file"]
    if not model.is_file():
        raise EdgerecError(f"{model}: no such file; is {bundle} a phone bundle?")
    if sha256_file(model) != record["parent_sha256"]:
        raise EdgerecError(
            f"{model}: this bundle is not the delta's parent (sha256 differs from the parent recorded in the delta, "
            f"version {record['parent_version']}): download the full bundle"
        )
    data = bytearray(model.read_bytes())
    if len(data) != record["model_bytes"]:
        raise EdgerecError(f"{model}: size differs from the delta's model size")
    patches = (delta / PATCHES).read_bytes()
    pos = 0
    for o, n in record["ranges"]:
        data[o : o + n] = patches[pos : pos + n]
        pos += n
    if hashlib.sha256(data).hexdigest() != record["child_sha256"]:
        raise EdgerecError("the patched model's sha256 differs from the child's: the delta does not fit this bundle")
    try:
        child_files = json.loads((delta / MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        raise EdgerecError(f"{delta / MANIFEST}: missing or malformed child manifest") from None
    with atomic_dir(out) as tmp:
        for p in bundle.iterdir():  # keep unrelated files; the parent's server-side files would be stale: dropped
            if p.is_file() and p.name not in child_files and p.name != MANIFEST:
                shutil.copyfile(p, tmp / p.name)
        (tmp / record["model_file"]).write_bytes(bytes(data))
        for name in record["files"]:
            shutil.copyfile(delta / name, tmp / name)
    try:
        return json.loads((Path(out) / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
