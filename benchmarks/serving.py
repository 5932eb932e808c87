"""The server model in onnxruntime against PyTorch eager and the pair-scoring ONNX artifact, one thread, same run.

    python benchmarks/serving.py [--model benchmarks/runs/neumf8] [--rounds 5] [--users 64]

Exports the teacher as `onnx-server` fp32 and fp16 (users in, top-10 over the catalog out, item side folded) and as
the pair-scoring `onnx` fp32 artifact, each verified at export against the fp32 model. Then, pinned to one core and
interleaved over --rounds rounds: one user's catalog top-10 per call, and a batch of --users users per call
(recommendations for many users at once, as a server batches requests). The table gives the median over rounds of
each percentile; the speed-up is the median of the per-round p50 ratios against PyTorch eager (the full NeuMF over
the catalog + torch.topk). Writes benchmarks/results/serving.md. (The Triton server of the issue is not built yet.)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch

import edgerec
from edgerec.benchmarking.eager import TorchEager
from edgerec.benchmarking.latency import BenchConfig, one_core, timed
from edgerec.runtime import load_scorer
from edgerec.sysinfo import machine, provenance

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data" / "ml-1m-ncf"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(HERE / "runs" / "neumf8"))
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--users", type=int, default=64)
    ap.add_argument("--work", default=str(HERE / "runs" / "serving"))
    ap.add_argument("--results", default=str(HERE / "results" / "serving.md"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    ck = edgerec.load(args.model)
    ds = edgerec.dataset(args.data)
    work = Path(args.work)
    exports = {}
    for name, target, precision in (("server-fp32", "onnx-server", "fp32"), ("server-fp16", "onnx-server", "fp16"),
                                    ("onnx-fp32", "onnx", "fp32")):  # fmt: skip
        art = edgerec.export(ck, edgerec.ExportConfig(target=target, precision=precision), data=ds, out=work / name)
        exports[name] = art
    eager = TorchEager(ck.model, 1)
    scorers = {name: load_scorer(art.folder, threads=1) for name, art in exports.items()}
    rng = np.random.default_rng(0)
    batch = rng.choice(ds.n_users, size=args.users, replace=False)
    all_items = np.arange(ds.n_items)

    def eager_batch() -> None:
        with torch.inference_mode():
            u = torch.from_numpy(np.repeat(batch, ds.n_items))
            s = ck.model(u, torch.from_numpy(np.tile(all_items, len(batch)))).view(len(batch), -1)
            torch.topk(s, 10, dim=1)

    def onnx_batch(scorer) -> None:  # the pair-scoring artifact: every (user, item) pair, then top-10 per user
        s = scorer.score(np.repeat(batch, ds.n_items), np.tile(all_items, len(batch))).reshape(len(batch), -1)
        np.argpartition(-s, 10, axis=1)

    cases = {
        "one user, catalog top-10": {
            "pytorch eager fp32": lambda: eager.top_k(7, 10),
            "onnx (pairs) fp32": lambda: scorers["onnx-fp32"].top_k(7, 10),
            "onnx-server fp32": lambda: scorers["server-fp32"].recommend([7]),
            "onnx-server fp16": lambda: scorers["server-fp16"].recommend([7]),
        },
        f"{args.users} users per call, top-10 each": {
            "pytorch eager fp32": eager_batch,
            "onnx (pairs) fp32": lambda: onnx_batch(scorers["onnx-fp32"]),
            "onnx-server fp32": lambda: scorers["server-fp32"].recommend(batch),
            "onnx-server fp16": lambda: scorers["server-fp16"].recommend(batch),
        },
    }
    cfg = BenchConfig(min_time_s=0.5, min_calls=20, warmup=5)
    rounds: dict[tuple[str, str], list[dict]] = {}
    with one_core(True):
        for _ in range(args.rounds):
            for case, fns in cases.items():
                for name, fn in fns.items():
                    rounds.setdefault((case, name), []).append(timed(fn, cfg))
    lines = [
        "# The server model (onnx-server) against PyTorch eager, one thread (ML-1M NeuMF-8)",
        "",
        f"{provenance(sys.argv)}  ",
        f"Machine: {machine()}; one thread, pinned to one core; {args.rounds} interleaved rounds.",
        "",
        "| artifact | bytes | HR@10 in its runtime | dHR@10 vs fp32 | max abs score error |",
        "|---|---|---|---|---|",
    ]
    for name, art in exports.items():
        v = art.verification
        lines.append(
            f"| {name} | {art.bytes:,} | {art.metrics['hr@10']:.4f} | {v['deltas']['hr@10']:+.4f} | "
            f"{v.get('max_abs_score_error', float('nan')):.2e} |"
        )
    for case, fns in cases.items():
        lines += ["", f"**{case}**", "", "| scorer | p50 ms | p90 ms | p99 ms | speed-up vs eager (p50) |",
                  "|---|---|---|---|---|"]  # fmt: skip
        base = [r["p50"] for r in rounds[(case, "pytorch eager fp32")]]
        for name in fns:
            rs = rounds[(case, name)]
            med = {p: statistics.median(r[p] for r in rs) for p in ("p50", "p90", "p99")}
            speed = statistics.median(b / r["p50"] for b, r in zip(base, rs, strict=True))
            lines.append(f"| {name} | {med['p50']:.3f} | {med['p90']:.3f} | {med['p99']:.3f} | {speed:.1f}x |")
    Path(args.results).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
