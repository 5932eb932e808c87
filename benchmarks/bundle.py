"""The phone bundle on ML-1M (NCF split): bytes, accuracy and latency of every precision, side by side with PyTorch
eager fp32 on the full NeuMF, in one process on one pinned core.

    python benchmarks/bundle.py [--model benchmarks/runs/neumf8] [--data ../shared/data/ml-1m-ncf] [--rounds 5]

--model defaults to the benchmark teacher, benchmarks/runs/neumf8 (recreate it with `python benchmarks/teacher.py`).
Bundles are exported by edgerec's own `export()` (verified in LiteRT against the fp32 source: dHR@10, top-10
agreement). Also measured, for comparison only, the int8 scheme edgerec used before (static int8: int8 activations
too, calibrated by litert-quantizer on 256 users' vectors), rebuilt here from the same fp32 flatbuffer.
Latency: one user, `recommend` over the whole catalog with top-10 in the graph, called as an app calls it (the
signature runner, inputs ready); the score signature over 100 candidates; PyTorch eager: the full NeuMF over the
catalog + torch.topk. The cases are interleaved over --rounds rounds; the table gives the median over rounds of each
percentile, and the speed-up is the median of the per-round p50 ratios. Writes benchmarks/results/bundle.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch

import edgerec
from edgerec.benchmarking.config import BenchConfig
from edgerec.benchmarking.eager import TorchEager
from edgerec.benchmarking.latency import one_core, timed
from edgerec.data import load_dataset
from edgerec.exporters.bundle import convert
from edgerec.exporters.config import ExportConfig
from edgerec.exporters.folded import user_vectors
from edgerec.exporters.tflite_model import quiet
from edgerec.gates import ParityBound
from edgerec.metrics import evaluate, top_k_agreement
from edgerec.model.checkpoint import load
from edgerec.runtime import load_bundle
from edgerec.sysinfo import machine, provenance

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "ml-1m-ncf"
DEFAULT_MODEL = HERE / "runs" / "neumf8"  # written by benchmarks/teacher.py
CANDIDATES = 100


def static_int8(flat: bytes, model) -> bytes:
    """edgerec's previous int8 bundle recipe: static int8 MLP (int8 activations), int8-weight GMF layer, float head."""
    from litert_quantizer import qtyping, quantizer

    op = qtyping.TFLOperationName
    qt = quantizer.Quantizer(flat)
    qt.add_static_config(".*", op.ALL_SUPPORTED, 8, 8, qtyping.QuantGranularity.CHANNELWISE)
    qt.add_dynamic_config(".*Linear_gmf.*", op.FULLY_CONNECTED, 8, qtyping.QuantGranularity.TENSORWISE)
    for name, regex in (
        (op.FULLY_CONNECTED, ".*head_.*"),
        (op.ADD, ".*recommend_output.*"),
        (op.RESHAPE, ".*"),
        (op.OUTPUT, ".*"),
        (op.INPUT, ".*"),
    ):
        qt.update_quantization_recipe(regex, name, None, algorithm_key="no_quantize")
    ug, um = user_vectors(model)
    data = [{"user_gmf": ug[u : u + 1].numpy(), "user_mlp": um[u : u + 1].numpy()} for u in range(256)]
    with quiet():
        qsvs = qt.calibrate({"recommend": data}, num_threads=1)
        return bytes(qt.quantize(qsvs, enable_progress_report=False).quantized_model)


class RawRecommend:
    """A bare .tflite with a `recommend` signature as a metrics scorer (scores from its all-scores output)."""

    def __init__(self, path: Path, model) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.runner = Interpreter(model_path=str(path), num_threads=1).get_signature_runner("recommend")
        ug, um = user_vectors(model)
        self.ug, self.um, self.n_items = ug.numpy(), um.numpy(), model.arch.n_items

    def call(self, u: int) -> dict:
        return self.runner(user_gmf=self.ug[u : u + 1], user_mlp=self.um[u : u + 1])

    def __call__(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        out = np.empty(len(users), dtype=np.float32)
        for u in np.unique(users):
            sel = users == u
            out[sel] = self.call(int(u))["scores"][items[sel]]
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--model",
        default=str(DEFAULT_MODEL),
        help="NeuMF checkpoint folder (default benchmarks/runs/neumf8, from `python benchmarks/teacher.py`)",
    )
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--compressed", help="also the int8 bundle of this compressed checkpoint of --model (e.g. pruned)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=1.0, help="measured time per case per round")
    ap.add_argument("--out", default=str(HERE / "results" / "bundle.md"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    ds = load_dataset(args.data)
    ck = load(args.model)
    source_bytes = (Path(args.model) / "model.safetensors").stat().st_size
    rows: dict[str, dict] = {}
    cases = {}
    work = Path(tempfile.mkdtemp(prefix="edgerec-bundle-"))
    ug, um = user_vectors(ck.model)
    u0 = (ug[:1].numpy(), um[:1].numpy())
    for name, precision, candidates in (
        ("fp32", "fp32", 0),
        ("fp16", "fp16", 0),
        ("int8 (weight-only, shipped)", "int8", 0),
        ("int8 (weight-only) + score signature", "int8", CANDIDATES),
    ):
        cfg = ExportConfig(
            target="tflite-bundle",
            precision=precision,
            options={"candidates": candidates},
            tolerance=ParityBound(hr=0.01),
        )
        folder = work / name.split()[0] / str(candidates)
        art = edgerec.export(ck, cfg, ds, out=folder)
        v = art.verification
        rows[name] = {
            "bytes": art.bytes,
            "hr": art.metrics["hr@10"],
            "dhr": v["deltas"]["hr@10"],
            "agreement": v["agreement"],
        }
        scorer = load_bundle(folder)
        runner = scorer.runner
        cases[name] = lambda r=runner: r(user_gmf=u0[0], user_mlp=u0[1])
        if candidates:
            items = np.arange(CANDIDATES, dtype=np.int32) * 37 % ds.n_items
            sr = scorer.score_runner
            cases[f"score, {CANDIDATES} candidates"] = lambda r=sr, i=items: r(user_gmf=u0[0], user_mlp=u0[1], items=i)
            rows[f"score, {CANDIDATES} candidates"] = {**rows[name], "signature": "score"}
    if args.compressed:
        name = f"int8 (weight-only) of {Path(args.compressed).name}"
        compressed = load(args.compressed)
        cfg = ExportConfig(target="tflite-bundle", precision="int8")
        art = edgerec.export(compressed, cfg, ds, out=work / "compressed")
        small = load_bundle(work / "compressed")
        cug, cum = user_vectors(compressed.model)
        rows[name] = {
            "bytes": art.bytes,
            "hr": art.metrics["hr@10"],
            "dhr": art.metrics["hr@10"] - ck.metrics["hr@10"],  # against the uncompressed source, not its own
            "agreement": top_k_agreement(small, TorchEager(ck.model, 1).score, ds),
        }
        c0 = (cug[:1].numpy(), cum[:1].numpy())
        cases[name] = lambda r=small.runner: r(user_gmf=c0[0], user_mlp=c0[1])
    path = work / "static.tflite"
    path.write_bytes(static_int8(convert(ck.model, 10, 0), ck.model))
    raw = RawRecommend(path, ck.model)
    res = evaluate(raw, ds, full=False)
    src = TorchEager(ck.model, 1)
    src_res = evaluate(src.score, ds, full=False)  # the fp32 source as the exports' verification measures it
    rows["int8 (static, before)"] = {
        "bytes": path.stat().st_size,
        "hr": res["hr@10"],
        "dhr": res["hr@10"] - src_res["hr@10"],
        "agreement": top_k_agreement(raw, src.score, ds),
    }
    cases["int8 (static, before)"] = lambda: raw.call(0)
    rows["pytorch eager fp32 (full NeuMF)"] = {
        "bytes": source_bytes,
        "hr": src_res["hr@10"],
        "dhr": 0.0,
        "agreement": 1.0,
    }
    cases["pytorch eager fp32 (full NeuMF)"] = lambda: src.top_k(0, 10)
    bench = BenchConfig(threads=1, min_time_s=args.seconds)
    samples: dict[str, list[dict]] = {k: [] for k in cases}
    with one_core(True) as cpu:
        for _ in range(args.rounds):
            for name, fn in cases.items():
                samples[name].append(timed(fn, bench))
    torch_p50 = [s["p50"] for s in samples["pytorch eager fp32 (full NeuMF)"]]
    for name, runs in samples.items():
        rows[name]["latency"] = {p: statistics.median(r[p] for r in runs) for p in ("p50", "p90", "p99")}
        rows[name]["p50_per_round"] = [r["p50"] for r in runs]
        rows[name]["speedup"] = statistics.median(t / r["p50"] for t, r in zip(torch_p50, runs, strict=True))
    made = {"provenance": provenance(), "machine": machine()}
    records = {name: {**r, **made} for name, r in rows.items()}
    (Path(args.out).with_suffix(".json")).write_text(json.dumps(records, indent=1) + "\n")
    text = render(rows, source_bytes, ds.n_items, args.rounds, cpu)
    Path(args.out).write_text(text)
    print(text)


def render(rows: dict, source_bytes: int, n_items: int, rounds: int, cpu: int | None) -> str:
    lines = [
        "# Phone bundle on ML-1M (NCF split), NeuMF-8",
        "",
        f"Generated by {provenance()} on {machine()}, one thread pinned to CPU {cpu}; {rounds} rounds,",
        "cases interleaved; each percentile is the median over rounds; speed-up = median over rounds of PyTorch's p50",
        f"over the case's p50. recommend: one user vs all {n_items:,} items with top-10 in the graph, called through",
        "the LiteRT signature runner (as an app calls it). % of fp32 = model bytes / the fp32 NeuMF-8 safetensors",
        f"({source_bytes:,} bytes). dHR@10 and agreement (mean top-10 Jaccard over the catalog) against the fp32",
        "source, measured in LiteRT (edgerec's export verification; the same functions for the static row).",
        "",
        "| case | bytes | % of fp32 | HR@10 | dHR@10 | top-10 agreement | p50 ms | p90 ms | p99 ms "
        "| speed-up vs PyTorch |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        lat = r["latency"]
        speed = "-" if r.get("signature") == "score" else f"{r['speedup']:.1f}x"  # another task than PyTorch's
        lines.append(
            f"| {name} | {r['bytes']:,} | {100 * r['bytes'] / source_bytes:.2f} | {r['hr']:.4f} | {r['dhr']:+.4f} "
            f"| {r['agreement']:.3f} | {lat['p50']:.3f} | {lat['p90']:.3f} | {lat['p99']:.3f} | {speed} |"
        )
    lines += [
        "",
        "The score row is the same bundle as the row above it, timed on its `score` signature (100 candidates);",
        "no speed-up is given for it: PyTorch's row scores the whole catalog.",
    ]
    if any(" of " in name for name in rows):
        lines.append(
            "The row 'of <checkpoint>' is the int8 bundle of a compressed checkpoint of the same model (its own user"
            " vectors); its dHR@10, agreement and % are against the uncompressed fp32 source."
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
