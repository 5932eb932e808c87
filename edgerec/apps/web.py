"""The web client: a static site that runs a phone bundle (target tflite-bundle) in the browser through LiteRT.js.

build_site() checks the bundle (its manifest and file hashes), then writes, atomically:

    index.html, app.js, style.css   the page (package data, edgerec/apps/web/)
    model.tflite                    the bundle's model, unchanged (the page checks its sha256 before loading it)
    manifest.json                   the bundle's manifest trimmed to what the page reads (signatures, sizes, k ...)
    id_maps.json                    {"items": original item ids by dense index} (no user ids)
    site.json                       titles (--items), demo users, how reasons are made, the LiteRT.js version
    user_encoder.json               only for bundles with `user_features`: the bundle's user encoder, unchanged (the
                                    page checks its sha256 and encodes a new user's attributes with it)
    item_vectors.bin                only for bundles without an `explain` signature but with the item side: the unit
                                    item vectors of the similarity explainer (float32, little-endian, [n_items, D])
    vendor/litertjs/                LiteRT.js (npm @litertjs/core and @litertjs/wasm-utils) and its WASM files

The page calls the model's signatures by name, reading their inputs and outputs from manifest.json: fold_in (the
picked items -> the user's two vectors, on the device), then recommend, then explain. A bundle of a model with user
features (`user_features`, its user_encoder.json) also gets a form of the encoder's columns: the attributes typed
there are encoded in the page as edgerec.data.features.Encoder.encode_attributes does (web/features.js), then
user_features, then recommend; with picked items too, fold_in_from starts from those vectors. A bundle with neither
fold_in nor user_features (exported without --explain) makes a site only when asked for demo users: the page then
takes the demo user (from the server-side user_vectors.npy, a handful written into site.json) whose scores of the
picked items are highest.
Nothing is fetched from anywhere but the site's own origin.

LiteRT.js is installed with npm into edgerec's cache the first time (cache_root()/litertjs-<version>).
numpy only, never torch.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from edgerec.errors import EdgerecError, one_line, shown
from edgerec.io import SavesJson, atomic_dir, build_lock, cache_root, read_bytes, read_json, write_json

LITERTJS_VERSION = "2.5.3"
PAGE_FILES = ("index.html", "app.js", "features.js", "style.css")
# the non-threaded WASM builds: LiteRT.js picks litert_wasm_internal where the browser has relaxed SIMD, else compat
# (the threaded and JSPI builds are loaded only when asked for, and threads need a cross-origin isolated page)
WASM_FILES = tuple(f"litert_wasm{v}_internal.{ext}" for v in ("", "_compat") for ext in ("js", "wasm"))
DEMO_USERS = 16  # user vectors written into site.json for bundles without fold_in
REASONS = 3  # reasons per recommendation from the page's similarity explainer
ID_COLUMNS = ("item", "item_id", "itemid", "movie_id", "movieid", "id")
TITLE_COLUMNS = ("title", "name", "movie_title")
MAX_ITEMS_FILE = 256 * 2**20
TRIMMED = ("target", "precision", "model_file", "n_items", "k", "user_vector_dims", "max_history", "signatures",
           "user_features")  # fmt: skip
USER_ENCODER = "user_encoder.json"


@dataclass(frozen=True)
class WebSite(SavesJson):
    """What build_site wrote: the folder, what the page will do with this bundle, and its size."""

    folder: Path
    n_items: int
    signatures: tuple[str, ...]  # the model's, as the manifest lists them
    user_from: str  # "fold_in" (on the device), "demo users" (known users' vectors in site.json) or "attributes"
    attributes: tuple[str, ...]  # the user encoder's columns the page's form asks for (user_features), or ()
    reasons: str  # "explain" (the signature), "similarity" (computed by the page), or "none"
    titles: int  # items with a title from --items (0 without it)
    litertjs: str
    bytes: int  # the whole site

    def to_json(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "n_items": self.n_items,
            "signatures": list(self.signatures),
            "user_from": self.user_from,
            "attributes": list(self.attributes),
            "reasons": self.reasons,
            "titles": self.titles,
            "litertjs": self.litertjs,
            "bytes": self.bytes,
        }

    def serve_command(self) -> str:
        return f"python -m http.server --bind 127.0.0.1 8080 --directory {self.folder}"


def build_site(
    bundle: str | Path, out: str | Path, items_file: str | Path | None = None, demo_users: bool = False
) -> WebSite:
    """Write the static site for the phone bundle at `bundle` to `out` (atomically); `items_file`: a CSV / TSV of
    item ids and titles (or MovieLens' movies.dat) the page shows instead of bare ids. A bundle with user_features
    gets the attributes form. A bundle with neither fold_in nor user_features is refused unless `demo_users`: then
    the page recommends for the known user (from the server-side user_vectors.npy) who scores the picks highest."""
    bundle = Path(bundle)
    manifest = _check_bundle(bundle)
    sigs = manifest["signatures"]
    columns = _attribute_columns(bundle, manifest)
    if "fold_in" not in sigs and not columns and not demo_users:
        raise EdgerecError(
            f"{bundle}: the bundle has no fold_in / explain signatures, so the page could not fold in the visitor's "
            "picks; export it with `edgerec export --target tflite-bundle --explain`, or build a demo page of known "
            "users with --demo-users"
        )
    item_ids = [str(x) for x in _item_ids(bundle, manifest)]
    titles = None if items_file is None else read_titles(Path(items_file), item_ids)
    demo = [] if "fold_in" in sigs or (columns and not demo_users) else _demo_users(bundle, manifest)
    vectors = None if "explain" in sigs else _similarity_vectors(bundle, manifest)
    runtime = litertjs_runtime()
    site = {
        "format": "edgerec.web-site",
        "format_version": 1,
        "litertjs": LITERTJS_VERSION,
        "bundle": {"data": (manifest.get("data") or {}).get("name"), "version": manifest.get("version")},
        "titles": titles,
        "demo_users": demo,
        "reasons": _reasons_entry(sigs, vectors),
    }
    with atomic_dir(out) as tmp:
        for name in PAGE_FILES:
            (tmp / name).write_bytes(resources.files("edgerec.apps").joinpath("web", name).read_bytes())
        (tmp / "index.html").write_text(_page((tmp / "index.html").read_text()))
        shutil.copyfile(bundle / manifest["model_file"], tmp / "model.tflite")
        write_json(tmp / "manifest.json", _trimmed(manifest))
        write_json(tmp / "id_maps.json", {"items": item_ids})
        write_json(tmp / "site.json", site)
        if columns:
            shutil.copyfile(bundle / manifest["user_features"]["encoder"], tmp / USER_ENCODER)
        if vectors is not None:
            (tmp / "item_vectors.bin").write_bytes(vectors.astype("<f4").tobytes())
        vendor = tmp / "vendor" / "litertjs"
        (vendor / "wasm").mkdir(parents=True)
        shutil.copyfile(runtime / "core" / "dist" / "index.js", vendor / "core.js")
        shutil.copyfile(runtime / "wasm-utils" / "dist" / "index.js", vendor / "wasm-utils.js")
        for pkg in ("core", "wasm-utils"):
            shutil.copyfile(runtime / pkg / "package.json", vendor / f"{pkg}.package.json")
        for name in WASM_FILES:
            shutil.copyfile(runtime / "core" / "wasm" / name, vendor / "wasm" / name)
        (tmp / "README.md").write_text(_readme(manifest))
        size = 0
        for path in [tmp, *tmp.rglob("*")]:  # a web server's user reads them (temporary files are private)
            path.chmod(0o755 if path.is_dir() else 0o644)
            size += path.stat().st_size if path.is_file() else 0
    return WebSite(
        folder=Path(out),
        n_items=int(manifest["n_items"]),
        signatures=tuple(sigs),
        user_from="fold_in" if "fold_in" in sigs else "demo users" if demo else "attributes",
        attributes=columns,
        reasons=site["reasons"]["method"],
        titles=0 if titles is None else sum(t is not None for t in titles),
        litertjs=LITERTJS_VERSION,
        bytes=size,
    )


# -- the bundle ---------------------------------------------------------------------------------------------------


def _check_bundle(folder: Path) -> dict[str, Any]:
    """The bundle's manifest after checking its target, its signatures and its files' hashes (the bundle files must
    be present; the server-side user_vectors.npy is checked when present), as edgerec.runtime.load_bundle does."""
    from edgerec.manifest import read_manifest, verify_files

    if folder.is_dir() and not (folder / "manifest.json").is_file():
        raise EdgerecError(
            f"{folder}: not a phone bundle (no manifest.json); export one with `edgerec export --target tflite-bundle`"
        )
    manifest = read_manifest(folder, verify=False)
    if manifest.get("target") != "tflite-bundle":
        raise EdgerecError(
            f"{folder}: not a phone bundle (target is {manifest.get('target')!r}, not 'tflite-bundle'); "
            "export one with `edgerec export --target tflite-bundle`"
        )
    bundle_files = manifest.get("bundle_files")
    if not isinstance(bundle_files, list):
        raise EdgerecError(f"{folder}/manifest.json: no bundle_files list")
    verify_files(folder, manifest, [manifest["model_file"], *(n for n in bundle_files if n != "manifest.json")])
    sigs = manifest.get("signatures")
    if not isinstance(sigs, dict) or "recommend" not in sigs:
        raise EdgerecError(f"{folder}/manifest.json: no recommend signature")
    for name, sig in sigs.items():
        if not (isinstance(sig, dict) and isinstance(sig.get("inputs"), dict) and isinstance(sig.get("outputs"), dict)):
            raise EdgerecError(f"{folder}/manifest.json: signature {shown(name)} has no inputs / outputs")
        for kind in ("inputs", "outputs"):
            for tensor, spec in sig[kind].items():
                if not _tensor_spec_ok(spec):
                    raise EdgerecError(
                        f"{folder}/manifest.json: {name} {kind[:-1]} {shown(tensor)}: expected [dtype, shape]; "
                        f"got {shown(spec)}"
                    )
    try:
        int(manifest["n_items"]), int(manifest["k"])
        dims = manifest["user_vector_dims"]
        int(dims["gmf"]), int(dims["mlp"])
    except (KeyError, TypeError, ValueError):
        raise EdgerecError(f"{folder}/manifest.json: missing n_items, k or user_vector_dims") from None
    return manifest


def _attribute_columns(folder: Path, manifest: dict[str, Any]) -> tuple[str, ...]:
    """The columns of the bundle's user encoder (hash-checked, read as edgerec.runtime.load_bundle reads it) when the
    bundle has user_features, else (); its input width must be the encoder's."""
    sigs = manifest["signatures"]
    if "user_features" not in sigs:
        return ()
    from edgerec.runtime.tflite_bundle import read_user_encoder

    encoder = read_user_encoder(folder, manifest)
    for tensor in ("feature_indices", "feature_weights"):
        spec = sigs["user_features"]["inputs"].get(tensor)
        if spec is None or spec[1] != [encoder.width]:
            raise EdgerecError(
                f"{folder}/manifest.json: user_features input {tensor} is {shown(spec)}; the user encoder takes "
                f"[{encoder.width}]"
            )
    return tuple(c.name for c in encoder.columns)


def _tensor_spec_ok(spec: Any) -> bool:
    return (
        isinstance(spec, list)
        and len(spec) >= 2
        and spec[0] in ("float32", "int32")
        and isinstance(spec[1], list)
        and all(isinstance(n, int) and n >= 1 for n in spec[1])
    )


def _item_ids(folder: Path, manifest: dict[str, Any]) -> list[Any]:
    maps = read_json(folder / "id_maps.json")
    items = maps.get("items") if isinstance(maps, dict) else None
    if not isinstance(items, list) or len(items) != int(manifest["n_items"]):
        raise EdgerecError(f"{folder}/id_maps.json: expected {manifest['n_items']} item ids under 'items'")
    return items


def _trimmed(manifest: dict[str, Any]) -> dict[str, Any]:
    """What the page reads, plus where the model came from (no file list, no server-side names)."""
    out = {k: manifest[k] for k in TRIMMED if k in manifest}
    out["model_sha256"] = manifest["files"][manifest["model_file"]]["sha256"]
    out["model_file"] = "model.tflite"
    out["version"] = manifest.get("version")
    out["created"] = manifest.get("created")
    if "user_features" in out:  # the encoder the page reads, and its hash (checked before it is used)
        name = manifest["user_features"]["encoder"]
        out["user_features"] = {**out["user_features"], "encoder": USER_ENCODER,
                                "sha256": manifest["files"][name]["sha256"]}  # fmt: skip
    out["metrics"] = {k: v for k, v in (manifest.get("metrics") or {}).items() if k in ("hr@10", "ndcg@10")}
    return out


def _demo_users(folder: Path, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """A handful of known users' vectors (evenly spaced dense indices), for a bundle that cannot fold a user in."""
    name = manifest.get("user_vectors")
    if not name or not (folder / name).is_file():
        raise EdgerecError(
            f"{folder}: the bundle has no fold_in signature and no user_vectors.npy, so the page would have no user "
            "to recommend for; build the site from the server-side bundle folder (with user_vectors.npy)"
        )
    g, d = int(manifest["user_vector_dims"]["gmf"]), int(manifest["user_vector_dims"]["mlp"])
    vectors = np.load(folder / name, allow_pickle=False)
    if vectors.ndim != 2 or vectors.shape[1] != g + d:
        raise EdgerecError(f"{folder / name}: shape {vectors.shape} does not match user_vector_dims ({g} + {d})")
    maps = read_json(folder / "id_maps.json")
    users = maps.get("users") if isinstance(maps, dict) else None
    if not isinstance(users, list) or len(users) != len(vectors):
        raise EdgerecError(f"{folder}/id_maps.json: expected {len(vectors)} user ids under 'users'")
    rows = np.unique(np.linspace(0, len(vectors) - 1, min(DEMO_USERS, len(vectors))).round().astype(int))
    f32 = vectors.astype(np.float32)
    return [
        {"id": str(users[r]), "index": int(r), "user_gmf": f32[r, :g].tolist(), "user_mlp": f32[r, g:].tolist()}
        for r in rows
    ]


def _similarity_vectors(folder: Path, manifest: dict[str, Any]) -> np.ndarray | None:
    """[n_items, D] float32 unit item vectors of edgerec's similarity explainer (the GMF item rows beside the folded
    item half of the first MLP layer), for a bundle with the item side but no explain signature; else None."""
    name = manifest.get("item_side")
    if not name or not (folder / name).is_file():
        return None
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    from edgerec.runtime.explain import Explainer, item_side_from_tensors

    try:
        tensors = load_file(str(folder / name))
    except (SafetensorError, OSError) as e:
        raise EdgerecError(f"{folder / name}: unreadable safetensors file ({one_line(e)})") from None
    unit = Explainer(item_side_from_tensors(tensors, str(folder))).unit
    if unit.shape[0] != int(manifest["n_items"]):
        raise EdgerecError(f"{folder / name}: {unit.shape[0]} items; the manifest says {manifest['n_items']}")
    return unit.astype(np.float32)


def _reasons_entry(sigs: dict[str, Any], vectors: np.ndarray | None) -> dict[str, Any]:
    if "explain" in sigs:
        return {"method": "explain"}
    if vectors is not None:
        return {"method": "similarity", "file": "item_vectors.bin", "dims": int(vectors.shape[1]), "top": REASONS}
    return {"method": "none"}


# -- titles -------------------------------------------------------------------------------------------------------


def read_titles(path: Path, item_ids: list[str]) -> list[str | None]:
    """Titles by dense index from a CSV / TSV with a header (an item id column: item, item_id, movie_id, id ...; a
    title column: title or name; a year column is appended) or MovieLens' movies.dat (MovieID::Title::Genres,
    ISO-8859-1). Where several columns could be the id, the one matching most of the bundle's ids is used."""
    data = read_bytes(path, "an items file (CSV or TSV with an item id and a title column)")
    if len(data) > MAX_ITEMS_FILE:
        raise EdgerecError(f"{path}: {len(data):,} bytes; an items file is at most {MAX_ITEMS_FILE:,}")
    first = data.split(b"\n", 1)[0]
    if b"::" in first:  # MovieLens movies.dat
        rows = [line.split("::") for line in data.decode("latin-1").splitlines() if line.strip()]
        header, body = ["movie_id", "title"], [r[:2] for r in rows if len(r) >= 2]
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
        delimiter = "\t" if "\t" in text.split("\n", 1)[0] else ","
        rows = [r for r in csv.reader(io.StringIO(text), delimiter=delimiter) if r]
        if not rows:
            raise EdgerecError(f"{path}: empty items file")
        header, body = [h.strip().lower() for h in rows[0]], rows[1:]
    title_col = next((header.index(c) for c in TITLE_COLUMNS if c in header), None)
    id_cols = [header.index(c) for c in ID_COLUMNS if c in header]
    if title_col is None or not id_cols:
        raise EdgerecError(
            f"{path}: expected a header with an item id column ({', '.join(ID_COLUMNS)}) and a title column "
            f"({', '.join(TITLE_COLUMNS)}); found {shown(header)}"
        )
    year_col = header.index("year") if "year" in header else None
    index = {x: n for n, x in enumerate(item_ids)}

    def matches(col: int) -> int:
        return sum(1 for r in body if len(r) > col and r[col].strip() in index)

    id_col = max(id_cols, key=matches)  # the first of the best
    if matches(id_col) == 0:
        raise EdgerecError(f"{path}: no item id in columns {', '.join(header[c] for c in id_cols)} is in the bundle")
    titles: list[str | None] = [None] * len(item_ids)
    for r in body:
        if len(r) <= max(id_col, title_col):
            continue
        n = index.get(r[id_col].strip())
        if n is None:
            continue
        title = r[title_col].strip()
        year = r[year_col].strip() if year_col is not None and len(r) > year_col else ""
        if year and not title.endswith(f"({year})"):
            title = f"{title} ({year})"
        titles[n] = title or None
    return titles


# -- LiteRT.js ----------------------------------------------------------------------------------------------------


def litertjs_runtime(version: str = LITERTJS_VERSION) -> Path:
    """The node_modules/@litertjs folder of LiteRT.js `version`, installed with npm into edgerec's cache the first
    time (processes building at once take turns)."""
    dest = cache_root() / f"litertjs-{version}"
    runtime = dest / "node_modules" / "@litertjs"
    with build_lock(dest):
        if _runtime_complete(runtime, version):
            return runtime
        npm = shutil.which("npm")
        if npm is None:
            raise EdgerecError(
                f"npm not found: the web client needs LiteRT.js (npm @litertjs/core@{version}); install Node.js "
                "and npm (e.g. `apt-get install -y npm`) and run the command again"
            )
        with atomic_dir(dest) as tmp:
            cmd = [npm, "install", "--prefix", str(tmp), "--no-audit", "--no-fund", f"@litertjs/core@{version}"]
            env = {**os.environ, "npm_config_update_notifier": "false"}
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
            except subprocess.TimeoutExpired:
                raise EdgerecError(f"npm install @litertjs/core@{version}: no answer in 600 s") from None
            if proc.returncode != 0:
                why = _npm_reason(proc.stderr) or f"exit status {proc.returncode}"
                raise EdgerecError(
                    f"npm install @litertjs/core@{version} failed ({why}); check that the npm registry is reachable "
                    "(npm config get registry)"
                )
            if not _runtime_complete(tmp / "node_modules" / "@litertjs", version):
                raise EdgerecError(f"npm installed @litertjs/core@{version} without the files the page needs")
    return runtime


def _npm_reason(stderr: str) -> str:
    """npm's own words for a failure: its first error line that is not a code, a stack frame or the log's path."""
    lines = [ln.removeprefix("npm error").removeprefix("npm ERR!") for ln in stderr.splitlines()]
    skip = ("code ", "syscall ", "errno ", "A complete log", " ")
    told = [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith(skip) and not ln.startswith("  ")]
    return told[0] if told else (lines[0].strip() if lines else "")


def _runtime_complete(runtime: Path, version: str) -> bool:
    needed = [runtime / "core" / "dist" / "index.js", runtime / "wasm-utils" / "dist" / "index.js"]
    needed += [runtime / "core" / "wasm" / name for name in WASM_FILES]
    if not all(p.is_file() for p in needed):
        return False
    try:
        return json.loads((runtime / "core" / "package.json").read_text()).get("version") == version
    except (OSError, ValueError):
        return False


def _page(template: str) -> str:
    """index.html with its import map (LiteRT.js's bare module names -> the vendored files) and that map's hash in
    the page's Content-Security-Policy, which allows no other inline script and no request to another origin."""
    import base64
    import hashlib

    imports = {"@litertjs/core": "./vendor/litertjs/core.js", "@litertjs/wasm-utils": "./vendor/litertjs/wasm-utils.js"}
    body = json.dumps({"imports": imports})
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    tag = f'<script type="importmap">{body}</script>'
    return template.replace("IMPORTMAP_SHA256", digest).replace("IMPORTMAP", tag)


def _readme(manifest: dict[str, Any]) -> str:
    columns = (manifest.get("user_features") or {}).get("columns")
    attributes = (
        f"A new user can also describe themselves ({', '.join(columns)}): user_encoder.json encodes it in the page.\n"
        if columns
        else ""
    )
    return f"""# edgerec web client

A static site that runs the phone bundle's `model.tflite` in the browser with LiteRT.js {LITERTJS_VERSION}
(WebAssembly, on the CPU). Serve this folder and open it:

    python -m http.server --bind 127.0.0.1 8080 --directory .
    # then open http://127.0.0.1:8080/ ; Ctrl-C stops the server

(`edgerec app web BUNDLE --out SITE --serve` does the same.) Opening index.html as a file does not work: browsers
load WebAssembly and JSON only over http(s). Nothing is fetched from anywhere but the site itself.

Catalog: {manifest["n_items"]} items; signatures: {", ".join(manifest["signatures"])}.
{attributes}LiteRT.js (npm @litertjs/core and @litertjs/wasm-utils, Apache-2.0) is in vendor/litertjs/.
"""
