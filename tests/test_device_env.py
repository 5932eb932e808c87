"""`edgerec bench` on a device-like environment: edgerec installed from its wheel (not the checkout) plus
ai-edge-litert, no torch (the `wheel_env` fixture in conftest.py)."""

from __future__ import annotations

import json
import subprocess

import edgerec
from edgerec.exporters.config import ExportConfig
from edgerec.gates import ParityBound


def test_bench_runs_where_only_numpy_and_the_runtime_are_installed(tmp_path, wheel_env, ckpt, ds) -> None:
    art = tmp_path / "art"
    cfg = ExportConfig(target="tflite", precision="int8", buckets=(1, 0), tolerance=ParityBound(hr=0.05))
    exported = edgerec.export(ckpt, cfg, ds, out=art)
    python = wheel_env / "bin" / "python"
    no_torch = subprocess.run([str(python), "-c", "import torch"], capture_output=True)
    assert no_torch.returncode != 0  # the environment really has no torch
    out = tmp_path / "bench.json"
    args = [str(wheel_env / "bin" / "edgerec"), "-q", "bench", str(art), "--json", str(out), "--min-time", "0.1"]
    proc = subprocess.run([*args, "--data", "synthetic:users=300,items=180,seed=3"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rec = json.loads(out.read_text())
    assert rec["runtime"] == "ai-edge-litert" and rec["latency_ms"]["catalog_top10"]["p50"] > 0
    assert abs(rec["metrics"]["hr@10"] - exported.metrics["hr@10"]) < 1e-9
    assert exported.metrics["hr@10"] == json.loads((art / "manifest.json").read_text())["metrics"]["hr@10"]
