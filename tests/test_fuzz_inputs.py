"""Property-based fuzzing of the files and inputs the exporters' side reads: profiles (YAML), manifests, runtime
ids. Property: a valid result, or one clean one-line EdgerecError; never another exception type."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from edgerec.artifact import read_manifest
from edgerec.errors import EdgerecError
from edgerec.profiles import PROFILE_DIR, load_profile

from .conftest import fuzz

# derandomized: CI runs the same 150 examples every time (benchmarks/robustness.py runs a larger random search)
FUZZ = fuzz(150)
BASE = yaml.safe_load((PROFILE_DIR / "tflite-android-int8.yaml").read_text())

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**12), 10**12) | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def one_line(e: EdgerecError) -> bool:
    return "\n" not in str(e) and len(str(e)) < 600


@FUZZ
@given(text=st.text(max_size=300))
def test_any_profile_text_gives_a_profile_or_one_line_error(tmp_path, text) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    try:
        load_profile(path)
    except EdgerecError as e:
        assert one_line(e)


@FUZZ
@given(key=st.sampled_from(sorted(BASE)), value=json_values)
def test_profile_with_any_field_value_gives_a_profile_or_one_line_error(tmp_path, key, value) -> None:
    data = {**BASE, key: value, "name": "p"}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    try:
        load_profile(path)
    except EdgerecError as e:
        assert one_line(e)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory, ckpt, ds):
    from edgerec.exporters import ExportConfig, export

    out = tmp_path_factory.mktemp("fz") / "art"
    export(ckpt, ds, out, ExportConfig(target="onnx"))
    return out


@FUZZ
@given(key=st.sampled_from(["format", "format_version", "files", "model_file", "n_users", "target", "runtime"]),
       value=json_values)  # fmt: skip
def test_manifest_with_any_field_value_is_refused_cleanly_or_loads(tmp_path, artifact, key, value) -> None:
    from edgerec.runtime import load_scorer

    folder = tmp_path / "a"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(artifact, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest[key] = value
    (folder / "manifest.json").write_text(json.dumps(manifest))
    try:
        load_scorer(folder).score([0], [0])
    except EdgerecError as e:
        assert one_line(e)


@FUZZ
@given(
    users=st.lists(st.integers(-(2**40), 2**40), max_size=6),
    items=st.lists(st.integers(-(2**40), 2**40), max_size=6),
    dtype=st.sampled_from([np.int64, np.int32, np.uint8, np.float32, np.bool_]),
)
def test_runtime_ids_give_scores_or_one_line_error(artifact, users, items, dtype) -> None:
    from edgerec.runtime import load_scorer

    scorer = load_scorer(artifact)
    try:
        u, i = np.array(users).astype(dtype), np.array(items).astype(dtype)
    except (OverflowError, ValueError):
        return
    try:
        out = scorer.score(u, i)
    except EdgerecError as e:
        assert one_line(e)
    else:
        assert out.shape == (len(users),) and np.isfinite(out).all()


def test_manifest_file_entries_cannot_point_outside_the_artifact(tmp_path, artifact) -> None:
    folder = tmp_path / "a"
    shutil.copytree(artifact, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["../outside"] = {"sha256": "0" * 64, "bytes": 1}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(EdgerecError, match="not a plain file name"):
        read_manifest(folder)
