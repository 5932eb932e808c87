"""import_model(): a model trained elsewhere -> a normal edgerec Checkpoint, checked before anything is written.

read (the format's reader, never running code from a file) -> map onto edgerec's NeuMF (architecture inferred from
the shapes) -> fidelity check (the source's own math vs the imported NeuMF on sampled pairs, refused beyond
FIDELITY_TOL) -> Checkpoint whose config records the source format, every source file's sha256 and the mapping
used -> with data: aligned to the imported id maps by original id and evaluated (metrics.json).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from edgerec.data.split import Dataset
from edgerec.errors import EdgerecError
from edgerec.importers.config import ImportConfig
from edgerec.importers.foreign import Foreign, build, fidelity
from edgerec.io import read_json, sha256_file
from edgerec.model.checkpoint import Checkpoint


def read_id_maps(path: str | Path) -> dict[str, list]:
    """--id-maps: JSON {"users": [...], "items": [...]}, original ids by the model's row."""
    maps = read_json(Path(path))
    if not isinstance(maps, dict) or not all(isinstance(maps.get(k), list) and maps[k] for k in ("users", "items")):
        raise EdgerecError(f"{path}: expected JSON with non-empty lists under 'users' and 'items'")
    for k in ("users", "items"):
        if len({str(x) for x in maps[k]}) != len(maps[k]):
            raise EdgerecError(f"{path}: the {k} list repeats an id")
    return maps


def _canonical(ids: np.ndarray) -> np.ndarray:
    """Ids as ints when every one is an integer written plainly (RecBole keeps tokens as text), else as text."""
    if ids.dtype.kind in "iu":
        return ids.astype(np.int64)
    text = [str(x) for x in ids]
    if all(t.lstrip("-").isdigit() and str(int(t)) == t and abs(int(t)) < 2**63 for t in text):
        return np.asarray([int(t) for t in text], dtype=np.int64)
    return np.asarray(text)


def _ids(f: Foreign, maps: dict[str, list] | None, n_users: int, n_items: int, fmt: str) -> tuple[np.ndarray, ...]:
    out = []
    for what, have, given, rows in (
        ("users", f.user_ids, maps and maps["users"], n_users),
        ("items", f.item_ids, maps and maps["items"], n_items),
    ):
        ids = have if have is not None else (np.asarray(given) if given else np.arange(rows, dtype=np.int64))
        if len(ids) != rows:
            raise EdgerecError(f"{fmt}: the id map has {len(ids)} {what} but the model's tables hold {rows} rows")
        out.append(_canonical(ids))
    return tuple(out)


def read_foreign(cfg: ImportConfig, paths: list[Path], maps: dict[str, list] | None = None) -> Foreign:
    if cfg.format == "keras-h5":
        from edgerec.importers import keras

        return keras.load(paths)
    if cfg.format == "recbole":
        from edgerec.importers import recbole

        return recbole.load(paths, maps)
    from edgerec.importers import state_dict

    if cfg.format == "dle":
        return state_dict.load_dle(paths)
    return state_dict.load_state_dict(paths, cfg.map, cfg.concat)


def import_model(
    sources: Path | str | Sequence[Path | str],
    cfg: ImportConfig,
    data: Dataset | None = None,
) -> Checkpoint:
    """The Checkpoint of a foreign model; with data, evaluated on it (aligned to the model's id maps)."""
    paths = [Path(p) for p in ([sources] if isinstance(sources, str | Path) else sources)]
    if not paths:
        raise EdgerecError("import needs at least one source file")
    maps = read_id_maps(cfg.id_maps) if cfg.id_maps else None
    f = read_foreign(cfg, paths, maps)
    model = build(f)
    check = fidelity(f, model, cfg.fidelity_pairs)
    user_ids, item_ids = _ids(f, maps, model.arch.n_users, model.arch.n_items, cfg.format)
    info = {
        "format": cfg.format,
        "sources": [{"file": p.name, "sha256": sha256_file(p), "bytes": p.stat().st_size} for p in paths],
        "mapping": f.mapping,
        "notes": f.notes,
        "id_maps": str(cfg.id_maps) if cfg.id_maps else ("from the source" if f.user_ids is not None else "0..n-1"),
        "fidelity": check,
    }
    if data is None:
        return Checkpoint.of(model, user_ids, item_ids, {}, extra={"imported": info})
    from edgerec.data.align import align
    from edgerec.metrics import evaluate
    from edgerec.model.training import torch_scorer

    ds, alignment = align(data, user_ids, item_ids, "the imported model")
    report = {"metrics": evaluate(torch_scorer(model), ds), "alignment": asdict(alignment)}
    summary = {**ds.summary(), "fingerprint": ds.fingerprint()}
    return Checkpoint.of(model, user_ids, item_ids, report, summary, {"imported": info})
