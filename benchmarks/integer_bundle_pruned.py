"""Does a narrower MLP bring the int8-compute bundle's `recommend` under 0.05 ms in the LiteRT C API? ML-1M NeuMF-8
against copies with a share of its MLP hidden channels pruned (`edgerec compress --prune-mlp R`, no recovery: only the
latency is the question here), each exported as an int8-compute phone bundle and timed in the C client in turns.

    python benchmarks/integer_bundle_pruned.py --model CKPT [--ratios 0.25,0.5] [--rounds 5]

Writes benchmarks/results/integer_bundle_pruned.md.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import edgerec
from edgerec.apps.native import Tensor, encode
from edgerec.benchmarking.latency import one_core
from edgerec.data import load_dataset
from edgerec.exporters.config import ExportConfig
from edgerec.exporters.folded import user_vectors
from edgerec.model.checkpoint import load
from edgerec.sysinfo import machine, provenance

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from integer_bundle import DEFAULT_DATA, build_client, c_bench  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="the NeuMF-8 checkpoint of integer_bundle.md")
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--ratios", default="0.25,0.5")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=5000)
    args = ap.parse_args()
    ds = load_dataset(args.data)
    work = Path(tempfile.mkdtemp(prefix="edgerec-pruned-"))
    models: dict[str, tuple[Path, Path, dict]] = {}
    for ratio in [0.0, *(float(r) for r in args.ratios.split(","))]:
        name = "NeuMF-8" if ratio == 0 else f"MLP channels pruned {ratio:.0%}"
        src = Path(args.model)
        if ratio:
            src = work / f"p{ratio}"
            gates = ["--tolerance-hr", "1", "--tolerance-ndcg", "1", "--min-agreement", "0"]  # latency only
            cmd = ["edgerec", "-q", "compress", "--model", args.model, "--data", args.data, "--prune-mlp", str(ratio)]
            subprocess.run([*cmd, *gates, "--out", str(src)], check=True)
        ck = load(src)
        cfg = ExportConfig(target="tflite-bundle", precision="int8", options={"compute": "int8"})
        art = edgerec.export(ck, cfg, ds, out=work / f"bundle-{ratio}")
        ug, um = (t.numpy() for t in user_vectors(ck.model))
        request = work / f"request-{ratio}.bin"
        user = {"user_gmf": Tensor(ug[:1].copy()), "user_mlp": Tensor(um[:1].copy())}
        request.write_bytes(encode([("recommend", user, ["top_items", "top_scores"])]))
        layers = list(ck.model.arch.mlp_layers)
        models[name] = (art.folder / "model.tflite", request, {"layers": layers, "hr": art.metrics["hr@10"]})
    client = build_client(work)
    times: dict[str, list[dict]] = {n: [] for n in models}
    with one_core(True):
        for _ in range(args.rounds):
            for n, (model, request, _) in models.items():
                times[n].append(c_bench(client, model, request, args.calls, "recommend"))
    base = [t["p50"] for t in times["NeuMF-8"]]
    lines = [
        "# int8-compute bundle with a narrower MLP: `recommend` in the LiteRT C API (ML-1M)",
        "",
        f"{provenance()}; {machine()}, one pinned core, the C client of examples/c (`--bench {args.calls}`), "
        f"{args.rounds} rounds with the bundles in turns; percentiles are medians over rounds, the ratio the median "
        "of the per-round p50 ratios. Pruned models are not recovered (no distillation): HR@10 shows what pruning "
        "alone costs, the latency what the narrower layers save.",
        "",
        "| model | MLP layers | HR@10 (bundle) | C p50 ms | C p99 ms | vs NeuMF-8 |",
        "|---|---|---|---|---|---|",
    ]
    for n, (_, _, info) in models.items():
        p50 = statistics.median(t["p50"] for t in times[n])
        p99 = statistics.median(t["p99"] for t in times[n])
        ratio = statistics.median(t["p50"] / b for t, b in zip(times[n], base, strict=True))
        lines.append(f"| {n} | {info['layers']} | {info['hr']:.4f} | {p50:.3f} | {p99:.3f} | {ratio:.2f} |")
    out = HERE / "results" / "integer_bundle_pruned.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
