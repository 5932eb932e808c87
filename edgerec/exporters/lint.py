"""`polygraphy check lint` on an ONNX file: the check TensorRT's own tooling makes before an engine build.

Runs in a subprocess (polygraphy's CLI is its supported interface) and records the report in the manifest.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from edgerec.errors import EdgerecError

SCRIPT = "import sys; from polygraphy.tools import main; sys.argv[0] = 'polygraphy'; sys.exit(main())"


def lint(onnx_path: Path, timeout: float = 300) -> dict:
    """{"tool", "passed", "failing": [...], "passing": n}; {"tool", "skipped": reason} without polygraphy."""
    try:
        import onnx_graphsurgeon  # noqa: F401  (polygraphy's lint needs it)
        import polygraphy  # noqa: F401
    except ImportError as e:
        return {"tool": "polygraphy check lint", "skipped": f"not installed ({e.name})"}
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "lint.json"
        cmd = [sys.executable, "-c", SCRIPT, "check", "lint", str(onnx_path), "-o", str(report)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise EdgerecError(f"polygraphy check lint did not finish within {timeout:.0f} s on {onnx_path}") from None
        if not report.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise EdgerecError(f"polygraphy check lint failed to run on {onnx_path}: {tail[0]}")
        data = json.loads(report.read_text())
    failing = [str(f) for f in data.get("summary", {}).get("failing", [])]
    entries = [e for e in data.get("lint_entries", []) if e.get("level") in ("exception", "error")]
    return {
        "tool": "polygraphy check lint",
        "passed": proc.returncode == 0 and not failing and not entries,
        "passing": len(data.get("summary", {}).get("passing", [])),
        "failing": failing,
        "errors": [str(e.get("message", e))[:300] for e in entries],
    }
