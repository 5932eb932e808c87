"""Fuzzing of what `edgerec update` and `edgerec apply-delta` read: new-interaction files against a parent's id maps,
and delta records. Property: a valid result (whose invariants hold) or a clean EdgerecError with a short message."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from edgerec.data import load_interactions
from edgerec.errors import EdgerecError
from edgerec.manifest import write_manifest
from edgerec.updates.delta import apply_delta, make_delta
from edgerec.updates.merge import merge

from .conftest import fuzz

FUZZ = fuzz(80)
ids = st.one_of(st.integers(-3, 400).map(str), st.sampled_from(["", "u1", "x y", "9" * 25, "1.5", "nan", "007"]))
rows = st.lists(st.lists(ids, min_size=1, max_size=4).map(",".join), max_size=30).map("\n".join)
headers = st.sampled_from(["user,item", "user,item,timestamp", "user,item,colour", "item,user", "user", ""])


def clean(e: EdgerecError) -> None:
    """An input error: EdgerecError itself (not a config or gate error) with a short message that says something."""
    assert type(e) is EdgerecError, repr(e)
    assert 10 < len(str(e).strip()) < 600, repr(e)


@FUZZ
@given(header=headers, body=rows)
def test_new_interactions_against_the_parents_maps(tmp_path_factory, ds, header, body) -> None:
    path = tmp_path_factory.mktemp("new") / "new.csv"
    path.write_text(header + "\n" + body + "\n")
    try:
        merged = merge(ds, load_interactions(path, strict=True))
    except EdgerecError as e:
        clean(e)
        return
    s, train = merged.change, merged.data.train
    assert np.array_equal(train.user_ids[: ds.n_users], ds.train.user_ids)  # old indices never move
    assert np.array_equal(train.item_ids[: ds.n_items], ds.train.item_ids)
    assert (train.n_users, train.n_items) == (ds.n_users + s.users_added, ds.n_items + s.items_added)
    assert s.interactions_added + s.already_known + s.duplicate_rows == s.rows_read + s.duplicate_rows
    assert len(train) == len(ds.train) + s.interactions_added


def _bundle(folder: Path, payload: bytes, version: int) -> Path:
    folder.mkdir()
    (folder / "model.tflite").write_bytes(payload)
    (folder / "id_maps.json").write_text('{"users": [0], "items": [0]}\n')
    files = ["model.tflite", "manifest.json", "id_maps.json"]
    manifest = {"target": "tflite-bundle", "precision": "fp32", "model_file": files[0], "version": version}
    write_manifest(folder, {**manifest, "bundle_files": files})
    return folder


@FUZZ
@given(
    edits=st.lists(
        st.tuples(
            st.sampled_from(["ranges", "model_bytes", "model_file", "files", "parent", "patches_sha256", "format",
                             "encoding", "window_log", "parent_model_bytes", "format_version"]),
            st.one_of(st.none(), st.integers(-5, 5000), st.text(max_size=8), st.just([[0, 4], [2, 4]]),
                      st.just([[-1, 3]]), st.just({"../x": "0"}), st.just({"model_sha256": "0" * 64})),
        ),
        max_size=3,
    ),
    grown=st.booleans(),
)  # fmt: skip
def test_delta_records(tmp_path_factory, edits, grown) -> None:
    root = tmp_path_factory.mktemp("delta")
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    b = bytearray(a)
    b[100:140] = bytes(40)
    b[3000] ^= 0xFF
    if grown:  # a new layout: the zstd patch
        b[2000:2000] = rng.integers(0, 256, 80, dtype=np.uint8).tobytes()
    parent, child = _bundle(root / "p", a, 1), _bundle(root / "c", bytes(b), 2)
    delta = root / "d"
    make_delta(parent, child, delta)
    record = json.loads((delta / "delta.json").read_text())
    for key, value in edits:
        record[key] = value
    (delta / "delta.json").write_text(json.dumps(record))
    try:
        apply_delta(parent, delta, root / "out")
    except EdgerecError as e:
        clean(e)
        assert not (root / "out").exists()
        return
    assert (root / "out" / "model.tflite").read_bytes() == bytes(b)  # applied only if it gives the child exactly
    shutil.rmtree(root)
