"""The product's own `edgerec compress` on ML-1M: 50 % pruning in two steps with score + ranking distillation after
each, then int4 tables / int8 layers, every step measured against the teacher. Writes
benchmarks/results/compress_cli.md from the command's compress.json.

    python benchmarks/compress_cli.py --teacher benchmarks/runs/neumf8 [--data ../shared/data/ml-1m-ncf]
    python benchmarks/compress_cli.py --render-only benchmarks/runs/neumf8-p50x2-rank-int4   # table from a done run
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import time
from pathlib import Path

from edgerec.sysinfo import machine

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "ml-1m-ncf"
FLAGS = ["--prune", "0.5", "--prune-steps", "2", "--distill", "--rank-k", "10"]
FLAGS += ["--quantize", "--embeddings", "int4", "--mlp", "int8"]


def render(out: Path, minutes: float | None) -> str:
    record = json.loads((out / "compress.json").read_text())
    steps = record["steps"]
    t = steps[0]["teacher"]
    took = f" in {minutes:.0f} min" if minutes else ""
    lines = [
        "# `edgerec compress` on ML-1M (NCF split): NeuMF-8, 50 % pruning in two steps, distillation, int4 / int8",
        "",
        f"Command (run{took} on {machine()}):",
        "",
        f"    edgerec compress --model {record['teacher']} --data ../shared/data/ml-1m-ncf {' '.join(FLAGS)} "
        f"--out {out}",
        "",
        "Distillation: `edgerec compress` defaults (batch 256, lr 1e-3, <= 10 epochs, patience 2, model selection on",
        "the validation split carved from train), score distillation + ranking distillation over the teacher's",
        f"top-10. Teacher HR@10 {t['hr@10']:.4f}, NDCG@10 {t['ndcg@10']:.4f}, {steps[0]['teacher_bytes']:,} bytes.",
        "Every row is against the teacher; the quantize row is the exact integer simulation.",
        "",
        "| step | bytes | % of fp32 | MACs/item | HR@10 | NDCG@10 | dHR@10 | dNDCG@10 | dfull HR@10 "
        "| top-10 agreement |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in steps:
        m, d = s["metrics"], s["deltas"]
        lines.append(
            f"| {s['step']} | {s['bytes']:,} | {100 * s['size_ratio']:.1f} | {s['macs_per_item']:,} "
            f"| {m['hr@10']:.4f} | {m['ndcg@10']:.4f} | {d['hr@10']:+.4f} | {d['ndcg@10']:+.4f} "
            f"| {d['full_hr@10']:+.4f} | {s['agreement']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--teacher", help="teacher checkpoint folder")
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--out", default=str(HERE / "runs" / "neumf8-p50x2-rank-int4"))
    ap.add_argument("--render-only", metavar="DIR", help="only render the table of a finished run's folder")
    ap.add_argument("--results", default=str(HERE / "results" / "compress_cli.md"))
    args = ap.parse_args()
    minutes = None
    out = Path(args.render_only or args.out)
    if not args.render_only:
        if not args.teacher:
            ap.error("--teacher is required unless --render-only")
        cmd = [shutil.which("edgerec") or "edgerec", "compress", "--model", args.teacher, "--data", args.data]
        t0 = time.perf_counter()
        subprocess.run([*cmd, *FLAGS, "--out", str(out)], check=True)
        minutes = (time.perf_counter() - t0) / 60
    text = render(out, minutes)
    Path(args.results).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
