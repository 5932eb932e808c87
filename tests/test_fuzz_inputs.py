"""Property-based fuzzing of the files and inputs the exporters' side reads: profiles (YAML), manifests, runtime
ids. Property: a valid result, or a clean EdgerecError with a short message (printed by the CLI as one line);
never another exception type."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from edgerec.cli.main import main
from edgerec.errors import ConfigError, EdgerecError, one_line
from edgerec.manifest import read_manifest
from edgerec.profiles.schema import load_profile, shipped_dir

from .conftest import fuzz

# derandomized: CI runs the same 150 examples every time (benchmarks/robustness.py runs a larger random search)
FUZZ = fuzz(150)
BASE = yaml.safe_load((shipped_dir() / "tflite-android-int8.yaml").read_text())

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**12), 10**12) | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def clean(e: EdgerecError) -> None:
    """An input error: EdgerecError itself or a ConfigError (a section's config refused a value), not a gate's
    refusal nor anything else, with a short message that says something."""
    assert type(e) in (EdgerecError, ConfigError), repr(e)
    assert 10 < len(str(e).strip()) < 600, repr(e)


def refused_profile(path, capsys) -> None:
    """load_profile(path) fails cleanly, naming the file, and `edgerec export --profile` prints exactly that as one
    line and exits 2 (before it loads data or writes anything)."""
    with pytest.raises(EdgerecError) as e:
        load_profile(path)
    clean(e.value)
    assert str(e.value).startswith(f"{path}: ")
    capsys.readouterr()
    out = path.parent / "art"
    assert main(["-q", "export", "--profile", str(path), "--out", str(out)]) == 2
    assert capsys.readouterr().err.splitlines() == [f"edgerec: error: {one_line(e.value)}"] and not out.exists()


def loads(path) -> bool:
    try:
        load_profile(path)
    except EdgerecError:
        return False
    return True


@FUZZ
@given(text=st.text(max_size=300))
def test_any_profile_text_gives_a_profile_or_one_line_error(tmp_path, capsys, text) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    if not loads(path):
        refused_profile(path, capsys)


@FUZZ
@given(key=st.sampled_from(sorted(BASE)), value=json_values)
def test_profile_with_any_field_value_gives_a_profile_or_one_line_error(tmp_path, capsys, key, value) -> None:
    data = {**BASE, key: value, "name": "p"}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    if not loads(path):
        refused_profile(path, capsys)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory, ckpt, ds):
    import edgerec

    out = tmp_path_factory.mktemp("fz") / "art"
    return edgerec.export(ckpt, edgerec.ExportConfig(target="onnx"), ds, out=out).folder


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
        clean(e)


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
        clean(e)
    else:
        assert out.shape == (len(users),) and np.isfinite(out).all()


@pytest.mark.parametrize("entry", ["../outside", "/etc/passwd", "a/../../b", "a//b", "./x", "a\\..\\b", ""])
def test_manifest_file_entries_cannot_point_outside_the_artifact(tmp_path, artifact, entry) -> None:
    folder = tmp_path / "a"
    shutil.copytree(artifact, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"][entry] = {"sha256": "0" * 64, "bytes": 1}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(EdgerecError, match="not a relative path inside the folder"):
        read_manifest(folder)


@pytest.mark.parametrize("text", ["?", "1: 2\n", "null: 3\n", "true: x\n"])
def test_profile_keys_that_are_not_text_are_one_line(text, tmp_path, capsys) -> None:
    """Found by the 20x fuzzing: `?` parses as {None: None}, whose key reached Profile(**data) (TypeError)."""
    from edgerec.errors import EdgerecError
    from edgerec.profiles.schema import load_profile

    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(EdgerecError, match="field names must be text"):
        load_profile(str(path))
