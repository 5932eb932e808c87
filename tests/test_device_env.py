"""`edgerec bench` on a device-like environment: edgerec without extras plus ai-edge-litert, no torch.

The environment is created once under $EDGEREC_CACHE (default ~/.cache/edgerec) with pip from the package index
(`pip install <this checkout> ai-edge-litert`), and reused while this checkout's pyproject.toml is unchanged."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgerec.exporters import ExportConfig, ExportTolerance, export

from .conftest import REPO

CACHE = Path(os.environ.get("EDGEREC_CACHE", Path.home() / ".cache" / "edgerec"))


@pytest.fixture(scope="module")
def device_env() -> Path:
    stamp = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()[:12]
    env = CACHE / f"device-venv-{stamp}"
    edgerec = env / "bin" / "edgerec"
    if not edgerec.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(env)], check=True)
        pip = subprocess.run(
            [str(env / "bin" / "python"), "-m", "pip", "install", "-q", str(REPO), "ai-edge-litert"],
            capture_output=True,
            text=True,
        )
        if pip.returncode != 0:
            pytest.skip(f"could not install edgerec + ai-edge-litert from the package index: {pip.stderr[-300:]}")
    return env


def test_bench_runs_where_only_numpy_and_the_runtime_are_installed(tmp_path, device_env, ckpt, ds) -> None:
    art = tmp_path / "art"
    export(
        ckpt,
        ds,
        art,
        ExportConfig(target="tflite", precision="int8", buckets=(1, 0), tolerance=ExportTolerance(hr=0.05)),
    )
    python = device_env / "bin" / "python"
    no_torch = subprocess.run([str(python), "-c", "import torch"], capture_output=True)
    assert no_torch.returncode != 0  # the environment really has no torch
    out = tmp_path / "bench.json"
    args = [str(device_env / "bin" / "edgerec"), "-q", "bench", str(art), "--json", str(out), "--min-time", "0.1"]
    proc = subprocess.run([*args, "--data", "synthetic:users=300,items=180,seed=3"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rec = json.loads(out.read_text())
    assert rec["runtime"] == "ai-edge-litert" and rec["latency_ms"]["catalog_top10"]["p50"] > 0
    assert abs(rec["metrics"]["hr@10"] - json.loads((art / "manifest.json").read_text())["metrics"]["hr@10"]) < 1e-9
