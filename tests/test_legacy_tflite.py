"""The legacy-runtime artifact under tflite-runtime 2.14, in its own numpy<2 environment (it cannot share one with
litert-torch). The environment is created once under edgerec.io.cache_root() ($EDGEREC_CACHE, default
~/.cache/edgerec) with pip from the package index; edgerec itself is taken from this checkout via PYTHONPATH (the
runtime needs numpy only)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import edgerec
from edgerec.exporters.config import ExportConfig
from edgerec.gates import ParityBound
from edgerec.io import cache_root
from edgerec.runtime import load_scorer

from .conftest import REPO

SCORE = """
import json, sys
import numpy as np
from edgerec.errors import EdgerecError
from edgerec.runtime import load_scorer
folder, pairs = sys.argv[1], json.loads(sys.argv[2])
try:
    s = load_scorer(folder, runtime="tflite-runtime")
    print(json.dumps(s.score(np.array(pairs[0]), np.array(pairs[1])).tolist()))
except EdgerecError as e:
    print(f"edgerec: error: {e}", file=sys.stderr)
    sys.exit(2)
assert "torch" not in sys.modules
"""


@pytest.fixture(scope="module")
def legacy_python() -> Path:
    env = cache_root() / "tflite-runtime-2.14-venv"
    python = env / "bin" / "python"
    probe = [str(python), "-c", "import tflite_runtime.interpreter, numpy; assert numpy.__version__ < '2'"]
    if not python.exists() or subprocess.run(probe, capture_output=True).returncode != 0:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(env)], check=True)
        pip = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "numpy<2", "tflite-runtime==2.14.0"],
            capture_output=True,
            text=True,
        )
        if pip.returncode != 0:
            pytest.skip(f"could not install tflite-runtime 2.14 from the package index: {pip.stderr[-300:]}")
    return python


def run_legacy(python: Path, folder: Path, users: np.ndarray, items: np.ndarray) -> subprocess.CompletedProcess:
    pairs = json.dumps([users.tolist(), items.tolist()])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([str(python), "-c", SCORE, str(folder), pairs], capture_output=True, text=True, env=env)


def test_legacy_profile_scores_correctly_under_tflite_runtime_214(tmp_path, legacy_python, ckpt, ds) -> None:
    rng = np.random.default_rng(1)
    users, items = rng.integers(0, ds.n_users, 300), rng.integers(0, ds.n_items, 300)
    model = edgerec.load(ckpt).model
    with torch.no_grad():
        source = model(torch.from_numpy(users), torch.from_numpy(items)).numpy()
    tol = ParityBound(hr=0.05)  # 300 users: one user is 0.0033 HR@10; the scores are compared below
    for precision in ("int8", "int8-dynamic"):
        out = tmp_path / precision
        cfg = ExportConfig(
            target="tflite", precision=precision, runtime="tflite-runtime", buckets=(1, 64), tolerance=tol
        )
        art = edgerec.export(ckpt, cfg, ds, out=out)
        assert art.manifest["quantization"]["granularity"].startswith("per-tensor")
        proc = run_legacy(legacy_python, out, users, items)
        assert proc.returncode == 0, proc.stderr[-1000:]
        legacy = np.array(json.loads(proc.stdout))
        litert = load_scorer(out, runtime="ai-edge-litert").score(users, items)
        # right answers: as close to the fp32 source as LiteRT's own run of the same flatbuffer (the two versions'
        # int8 kernels round differently in places); a broken per-channel model is off by 0.35-0.45
        err_legacy, err_litert = np.abs(legacy - source), np.abs(litert - source)
        assert np.abs(legacy - litert).max() < 0.1, (precision, np.abs(legacy - litert).max())
        assert err_legacy.mean() < 1.5 * err_litert.mean() + 1e-3, (precision, err_legacy.mean(), err_litert.mean())


def test_per_channel_artifact_is_refused_by_the_legacy_runtime(tmp_path, legacy_python, ckpt, ds) -> None:
    out = tmp_path / "per-channel"
    cfg = ExportConfig(target="tflite", precision="int8-dynamic", buckets=(1, 64), tolerance=ParityBound(hr=0.05))
    edgerec.export(ckpt, cfg, ds, out=out)  # default runtime ai-edge-litert: per-channel FULLY_CONNECTED weights
    proc = run_legacy(legacy_python, out, np.array([0, 1]), np.array([2, 3]))
    assert proc.returncode == 2 and proc.stdout == ""
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and err.startswith("edgerec: error: ")
    assert "silently wrong scores on tflite-runtime 2.14" in err
