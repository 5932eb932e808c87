"""Bundle deltas: update a phone bundle in place of a full download, with a hash chain. No numpy needed to apply.

A delta turns the parent bundle's model file into the child's byte for byte; the bundle's other files (manifest.json,
id_maps.json, README.md, and whatever the manifest's `bundle_files` lists: item_side.safetensors, user_encoder.json)
travel whole when they changed and are kept from the device's copy when they did not. Two encodings:

- `ranges` (format version 1): the layout is unchanged (same model file size: an `edgerec update --scope rows`
  touched some item rows); the byte ranges that differ, the child's bytes of each range in patches.bin. Applying it
  needs nothing but byte copies.
- `zstd-patch` (format version 2): the layout changed (new items from `edgerec add-items` or an update grow the
  item tables, so every later byte moves); patches.bin is one zstd frame of the child's model compressed with the
  parent's model as its reference (zstd's patch-from: the parent as a raw-content dictionary, long-distance
  matching, a window that spans both). An app applies it with the zstd library it already links
  (`ZSTD_DCtx_refPrefix` with the parent's bytes, `ZSTD_d_windowLogMax` at least the delta's `window_log`).

delta folder:
    delta.json    format, encoding, the parent's and the child's model sha256 and version, the ranges (offset,
                  length) or the zstd window, the sha256 of patches.bin and of every file shipped whole; `keep`: the
                  bundle's other files (its `bundle_files`) that did not change, with the sha256 the device's copy
                  must have
    patches.bin   the child's bytes of every range, concatenated; or the zstd frame
    manifest.json, id_maps.json, ...   the child's files that changed, whole

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
from edgerec.limits import require
from edgerec.manifest import MANIFEST, read_manifest

FORMAT = "edgerec.delta"
FORMAT_VERSION = 2  # 1: ranges; 2 adds the zstd-patch encoding (a ranges delta is still written as version 1)
RANGES, ZSTD = "ranges", "zstd-patch"
ZSTD_LEVEL = 19
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
    if len(a) == len(b):
        ranges = _ranges(a, b)
        patches = b"".join(b[o : o + n] for o, n in ranges)
        encoding: dict[str, Any] = {"format_version": 1, "ranges": [[o, n] for o, n in ranges]}
    else:  # new items or another architecture: every later byte moved
        window_log = _window_log(len(a) + len(b))
        patches = _zstd_patch(a, b, window_log)
        encoding = {"format_version": 2, "encoding": ZSTD, "window_log": window_log, "parent_model_bytes": len(a)}
    with atomic_dir(out) as tmp:
        (tmp / PATCHES).write_bytes(patches)
        small, keep = {}, {}
        for name in dict.fromkeys([*SMALL_FILES, *cm.get("bundle_files", ())]):
            if name == cm["model_file"] or not (child / name).is_file():
                continue
            digest = sha256_file(child / name)
            if name != MANIFEST and (parent / name).is_file() and sha256_file(parent / name) == digest:
                keep[name] = digest  # the device's own copy, checked when applied
            else:
                shutil.copyfile(child / name, tmp / name)
                small[name] = digest
        record = {
            "format": FORMAT,
            "model_file": cm["model_file"],
            "parent": {"model_sha256": pm["files"][pm["model_file"]]["sha256"], "version": pm.get("version", 1)},
            "child": {"model_sha256": cm["files"][cm["model_file"]]["sha256"], "version": cm.get("version", 1)},
            "model_bytes": len(b),
            **encoding,
            "patch_bytes": len(patches),
            "patches_sha256": hashlib.sha256(patches).hexdigest(),
            "files": small,
            "keep": keep,
        }
        write_json(tmp / DELTA_JSON, record)
    return record


def _window_log(nbytes: int) -> int:
    """The zstd window (log2 bytes) that spans the parent (the reference) and the child."""
    import zstandard

    lo, hi = zstandard.WINDOWLOG_MIN, zstandard.WINDOWLOG_MAX
    if nbytes > 1 << hi:
        raise EdgerecError(f"the two models ({nbytes:,} bytes together) exceed zstd's window; ship the full bundle")
    return max(lo, (nbytes - 1).bit_length())


def _zstd_patch(parent: bytes, child: bytes, window_log: int) -> bytes:
    import zstandard

    ref = zstandard.ZstdCompressionDict(parent, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    params = zstandard.ZstdCompressionParameters.from_level(
        ZSTD_LEVEL, window_log=window_log, enable_ldm=True, write_content_size=True
    )
    return zstandard.ZstdCompressor(dict_data=ref, compression_params=params).compress(child)


def _unpatch(parent: bytes, patch: bytes, window_log: int, size: int) -> bytes:
    import zstandard

    ref = zstandard.ZstdCompressionDict(parent, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    try:
        out = zstandard.ZstdDecompressor(dict_data=ref, max_window_size=1 << window_log).decompress(
            patch, max_output_size=size
        )
    except zstandard.ZstdError as e:
        raise EdgerecError(f"the delta's zstd patch does not decode against this bundle ({e})") from None
    if len(out) != size:
        raise EdgerecError("the delta's zstd patch decodes to another size than the child's model")
    return out


def _read_delta(delta: Path) -> dict[str, Any]:
    """delta.json, every field type-checked, and the delta's own files checked against it."""
    record = read_versioned_json(delta / DELTA_JSON, FORMAT, FORMAT_VERSION, "bundle delta")
    try:
        zstd = record["format_version"] >= 2 and record["encoding"] == ZSTD
        if record["format_version"] >= 2 and record["encoding"] not in (RANGES, ZSTD):
            raise ValueError(record["encoding"])
        out = {
            "model_file": record["model_file"],
            "model_bytes": record["model_bytes"],
            "zstd": zstd,
            "window_log": record["window_log"] if zstd else 0,
            "parent_model_bytes": record["parent_model_bytes"] if zstd else record["model_bytes"],
            "ranges": [] if zstd else [(o, n) for o, n in record["ranges"]],
            "files": dict(record["files"]),
            "keep": dict(record.get("keep", {})),
            "parent_sha256": record["parent"]["model_sha256"],
            "parent_version": record["parent"].get("version"),
            "child_sha256": record["child"]["model_sha256"],
            "patches_sha256": record["patches_sha256"],
        }
    except (KeyError, TypeError, ValueError, AttributeError):
        raise EdgerecError(f"{delta / DELTA_JSON}: malformed delta record") from None
    texts = [out["model_file"], out["parent_sha256"], out["child_sha256"], out["patches_sha256"], *out["files"]]
    numbers = [out["model_bytes"], out["window_log"], out["parent_model_bytes"], *(x for r in out["ranges"] for x in r)]
    texts += [*out["keep"], *out["keep"].values(), *out["files"].values()]
    if not all(isinstance(t, str) for t in texts) or not all(
        isinstance(x, int) and not isinstance(x, bool) for x in numbers
    ):
        raise EdgerecError(f"{delta / DELTA_JSON}: malformed delta record (wrong field types)")
    for name in [out["model_file"], *out["files"], *out["keep"]]:
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
    if out["zstd"]:
        import zstandard

        if not zstandard.WINDOWLOG_MIN <= out["window_log"] <= zstandard.WINDOWLOG_MAX or out["model_bytes"] <= 0:
            raise EdgerecError(f"{delta / DELTA_JSON}: malformed delta record (zstd window or model size)")
    elif patches.stat().st_size != sum(n for _, n in out["ranges"]):
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
    if len(data) != record["parent_model_bytes"]:
        raise EdgerecError(f"{model}: size differs from the delta's parent model size")
    patches = (delta / PATCHES).read_bytes()
    if record["zstd"]:
        require(record["model_bytes"], "the patched model", "the delta names a model this large")
        data = bytearray(_unpatch(bytes(data), patches, record["window_log"], record["model_bytes"]))
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
    for name, digest in record["keep"].items():
        if not (bundle / name).is_file() or sha256_file(bundle / name) != digest:
            raise EdgerecError(
                f"{bundle / name}: missing, or not the parent's copy the delta keeps: download the full bundle"
            )
    with atomic_dir(out) as tmp:
        for name in record["keep"]:
            shutil.copyfile(bundle / name, tmp / name)
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
