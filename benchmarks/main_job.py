"""The README's main job on this commit and on an earlier one, side by side: the artifact must be the same.

    python benchmarks/main_job.py --before a9f57c9

Runs `edgerec export --profile tflite-android-int8` (the README's first command after the install) in a fresh
process with an empty step cache, once with this checkout and once with --before (a git worktree of that commit,
imported through PYTHONPATH), and compares what each wrote: model.tflite and the other bundle files byte for byte,
the verified metrics, and the printed table's row (latency cells differ run to run; the rest must not). Writes
benchmarks/results/main_job.{md,json}.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FILES = ("model.tflite", "user_vectors.npy", "id_maps.json", "README.md")
COMMAND = ["export", "--profile", "tflite-android-int8"]


def run(tree: Path, work: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "EDGEREC_CACHE": str(work / "cache")}
    out = work / "android-int8"
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "edgerec.entry", *COMMAND, "--out", str(out)],
        cwd=work, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{tree}: the main job failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
    manifest = json.loads((out / "manifest.json").read_text())
    row = next(line for line in proc.stdout.splitlines() if "tflite-android-int8" in line and "│" in line)
    return {
        "seconds": round(seconds, 1),
        "sha256": {f: hashlib.sha256((out / f).read_bytes()).hexdigest() for f in FILES},
        "bytes": (out / "model.tflite").stat().st_size,
        "metrics": {k: manifest["metrics"][k] for k in ("hr@10", "ndcg@10", "full_hr@10", "full_ndcg@10")},
        "deltas": manifest["verification"]["deltas"],
        "row": [c.strip() for c in row.strip("│ ").split("│")],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, help="the earlier commit to compare with")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from edgerec.sysinfo import machine, provenance

    with tempfile.TemporaryDirectory(prefix="edgerec-main-job-") as tmp:
        before = Path(tmp) / "before-tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(before), args.before], check=True)
        try:
            runs = {}
            for name, tree in (("before", before), ("this commit", ROOT)):
                work = Path(tmp) / name.replace(" ", "-")
                work.mkdir()
                runs[name] = run(tree, work)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before)], check=True)
    a, b = runs["before"], runs["this commit"]
    same = {f: a["sha256"][f] == b["sha256"][f] for f in FILES}
    latency = {"p50 ms", "p99 ms", "items/s"}
    header = [
        "profile",
        "target",
        "precision",
        "bytes",
        "HR@10",
        "NDCG@10",
        "dHR@10",
        "p50 ms",
        "p99 ms",
        "items/s",
        "status",
    ]
    cells = [i for i, h in enumerate(header) if h not in latency]
    row_same = [a["row"][i] for i in cells] == [b["row"][i] for i in cells]
    record = {"before": args.before, "runs": runs, "identical_files": same, "row_identical_but_latency": row_same,
              "machine": machine(), "provenance": provenance(sys.argv)}  # fmt: skip
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "main_job.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = [
        "# The README's main job before and after",
        "",
        f"{record['provenance']}; {record['machine']}. `edgerec {' '.join(COMMAND)} --out DIR` in a fresh process "
        f"with an empty step cache, this checkout against {args.before} (a worktree on PYTHONPATH).",
        "",
        "| | " + " | ".join(header) + " | wall s |",
        "|" + "---|" * (len(header) + 2),
    ]
    lines += [f"| {n} | " + " | ".join(r["row"]) + f" | {r['seconds']} |" for n, r in runs.items()]
    lines += ["", "| file | sha256 before | sha256 this commit | identical |", "|---|---|---|---|"]
    lines += [f"| {f} | {a['sha256'][f][:16]} | {b['sha256'][f][:16]} | {'yes' if same[f] else 'no'} |" for f in FILES]
    lines += ["", f"Table row identical except the latency cells: {'yes' if row_same else 'no'}."]
    (HERE / "results" / "main_job.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
