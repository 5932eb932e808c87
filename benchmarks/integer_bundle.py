"""Integer compute in the phone bundle on ML-1M (NCF split), NeuMF-8: today's int8 bundle (int8 weights and item
constants dequantized at load, float32 compute) against int8 compute (`BundleOptions.compute = "int8"`: the
catalog-wide MLP of `recommend` in static int8 on XNNPACK's QS8 kernels, GMF, head, logit sum and top-K float32),
the fp32 bundle, dynamic-range int8 (activations quantized on the fly, XNNPACK's QD8 kernels; built here from the
same fp32 flatbuffer) and PyTorch eager fp32, in one process on one pinned core.

    python benchmarks/integer_bundle.py --model CKPT [--data ../shared/data/ml-1m-ncf] [--rounds 5] [--web]

Bundles are exported by edgerec's own `export()` (verified in LiteRT against the fp32 source: dHR@10, top-10
agreement); the dynamic-range row is measured with the same functions. Latency: one user, `recommend` over the
whole catalog with top-10 in the graph, through Python's LiteRT (the signature runner, one thread) and through the C
client on the LiteRT C API (examples/c, `--bench`, one thread, built here), and with --web through LiteRT.js in
headless Chromium (the page of `edgerec bench BUNDLE --client web`); `score` over 100 candidates the same way in
bundles exported with that signature. The cases and clients take turns for
--rounds rounds; each percentile is the median over rounds. Which kernels do the work: each bundle is also timed once
with LiteRT's built-in kernels only (no XNNPACK). Writes benchmarks/results/integer_bundle.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

import edgerec
from edgerec.apps.native import Tensor, bench_lines, encode
from edgerec.benchmarking.config import BenchConfig
from edgerec.benchmarking.eager import TorchEager
from edgerec.benchmarking.latency import bench_web, one_core, timed
from edgerec.data import load_dataset
from edgerec.exporters.bundle import convert, strip
from edgerec.exporters.config import ExportConfig
from edgerec.exporters.folded import user_vectors
from edgerec.exporters.small_constants import small_constants
from edgerec.exporters.tflite_model import quiet
from edgerec.metrics import evaluate, top_k_agreement
from edgerec.model.checkpoint import load
from edgerec.sysinfo import machine, provenance

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "ml-1m-ncf"
EAGER = "pytorch eager fp32 (full NeuMF)"
CANDIDATES = 100


def dynamic_range(flat: bytes) -> bytes:
    """Dynamic-range int8: int8 weights, every FULLY_CONNECTED quantizing its input on the fly (QD8), the GMF rows
    one scale, the item-constant ADD operand int8 dequantized at load."""
    from litert_quantizer import qtyping, quantizer

    from edgerec.exporters.bundle import _int8_weights, bytes_names_on_duplicates

    op = qtyping.TFLOperationName
    qt = quantizer.Quantizer(flat)
    qt.add_dynamic_config(".*", op.FULLY_CONNECTED, 8, qtyping.QuantGranularity.CHANNELWISE)
    qt.update_quantization_recipe(".*Linear_gmf.*", op.FULLY_CONNECTED, _int8_weights("TENSORWISE"))
    with quiet(), bytes_names_on_duplicates():
        out = bytes(qt.quantize(enable_progress_report=False).quantized_model)
    return strip(small_constants(out, "int8")[0])


class Recommend:
    """A .tflite with a `recommend` signature: a metrics scorer (scores from its all-scores output) and one call."""

    def __init__(self, path: Path, vectors: tuple[np.ndarray, np.ndarray], builtin_only: bool = False) -> None:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        kind = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES if builtin_only else OpResolverType.AUTO
        interp = Interpreter(model_path=str(path), num_threads=1, experimental_op_resolver_type=kind)
        self.interp = interp
        self.runner = interp.get_signature_runner("recommend")
        self.ug, self.um = vectors

    def call(self, u: int) -> dict:
        return self.runner(user_gmf=self.ug[u : u + 1], user_mlp=self.um[u : u + 1])

    def __call__(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        out = np.empty(len(users), dtype=np.float32)
        for u in np.unique(users):
            sel = users == u
            out[sel] = self.call(int(u))["scores"][items[sel]]
        return out


def build_client(tmp: Path) -> Path:
    from edgerec.apps.native import build_client as build

    return build(ROOT / "examples" / "c", tmp / "c")


def c_bench(client: Path, model: Path, requests: Path, calls: int, signature: str) -> dict[str, float]:
    from edgerec.apps.native import run_client

    return bench_lines(run_client(client, model, requests, "--bench", str(calls), "--threads", "1"))[signature]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="NeuMF checkpoint folder")
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=1.0, help="measured time per case per round (Python)")
    ap.add_argument("--calls", type=int, default=5000, help="timed calls per case per round (C client)")
    ap.add_argument("--web", action="store_true", help="also LiteRT.js in headless Chromium (edgerec's web client)")
    ap.add_argument("--out", default=str(HERE / "results" / "integer_bundle.md"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    ds = load_dataset(args.data)
    ck = load(args.model)
    source_bytes = (Path(args.model) / "model.safetensors").stat().st_size
    work = Path(tempfile.mkdtemp(prefix="edgerec-int8-"))
    ug, um = (t.numpy() for t in user_vectors(ck.model))
    rows: dict[str, dict[str, Any]] = {}
    models: dict[str, Path] = {}
    signature: dict[str, str] = {}
    for name, precision, options in (
        ("fp32", "fp32", {}),
        ("int8 weight-only (today)", "int8", {}),
        ("int8 compute", "int8", {"compute": "int8"}),
        (f"int8 weight-only (today): score, {CANDIDATES} candidates", "int8", {"candidates": CANDIDATES}),
        (f"int8 compute: score, {CANDIDATES} candidates", "int8", {"compute": "int8", "candidates": CANDIDATES}),
    ):
        cfg = ExportConfig(target="tflite-bundle", precision=precision, options=options)
        art = edgerec.export(ck, cfg, ds, out=work / f"{precision}-{len(rows)}")
        v = art.verification
        rows[name] = {
            "bytes": art.bytes,
            "hr": art.metrics["hr@10"],
            "dhr": v["deltas"]["hr@10"],
            "agreement": v["agreement"],
        }
        models[name] = art.folder / "model.tflite"
        signature[name] = "score" if options.get("candidates") else "recommend"
    src = TorchEager(ck.model, 1)
    src_res = evaluate(src.score, ds, full=False)  # the fp32 source as the exports' verification measures it
    name = "int8 dynamic-range (QD8)"
    models[name] = work / "dynamic.tflite"
    models[name].write_bytes(dynamic_range(convert(ck.model, 10, 0)))
    signature[name] = "recommend"
    drq = Recommend(models[name], (ug, um))
    res = evaluate(drq, ds, full=False)
    rows[name] = {
        "bytes": models[name].stat().st_size,
        "hr": res["hr@10"],
        "dhr": res["hr@10"] - src_res["hr@10"],
        "agreement": top_k_agreement(drq, src.score, ds),
    }
    rows[EAGER] = {"bytes": source_bytes, "hr": src_res["hr@10"], "dhr": 0.0, "agreement": 1.0}

    client = build_client(work)
    user = {"user_gmf": Tensor(ug[:1].copy()), "user_mlp": Tensor(um[:1].copy())}
    items = np.arange(CANDIDATES, dtype=np.int32) * 37 % ds.n_items
    requests = {"recommend": work / "recommend.bin", "score": work / "score.bin"}
    requests["recommend"].write_bytes(encode([("recommend", user, ["top_items", "top_scores"])]))
    requests["score"].write_bytes(encode([("score", {**user, "items": Tensor(items)}, ["top_items", "top_scores"])]))
    cases = {}
    for n, p in models.items():
        r = Recommend(p, (ug, um))
        if signature[n] == "score":
            sr = r.interp.get_signature_runner("score")
            cases[n] = lambda sr=sr: sr(user_gmf=ug[:1], user_mlp=um[:1], items=items)
        else:
            cases[n] = lambda r=r: r.call(0)
    cases[EAGER] = lambda: src.top_k(0, 10)
    bench = BenchConfig(threads=1, min_time_s=args.seconds, warmup=200)
    py: dict[str, list[dict]] = {n: [] for n in cases}
    c: dict[str, list[dict]] = {n: [] for n in models}
    builtin: dict[str, dict] = {}
    web_cases = [n for n in models if args.web and signature[n] == "recommend" and n != "int8 dynamic-range (QD8)"]
    web: dict[str, list[dict]] = {n: [] for n in web_cases}
    with one_core(True) as cpu:
        for n, p in models.items():  # once: LiteRT's built-in kernels only, to see what XNNPACK does
            if signature[n] == "recommend":
                b = Recommend(p, (ug, um), builtin_only=True)
                builtin[n] = timed(lambda b=b: b.call(0), bench)
        for _ in range(args.rounds):
            for n, fn in cases.items():
                py[n].append(timed(fn, bench))
                if n in models:  # the C client inherits this process's one CPU
                    c[n].append(c_bench(client, models[n], requests[signature[n]], args.calls, signature[n]))
                if n in web:  # the page of `edgerec bench BUNDLE --client web`
                    page = bench_web(models[n].parent, BenchConfig(min_time_s=args.seconds, min_calls=200))
                    web[n].append(page["latency_ms"]["catalog_top10"])
    eager_p50 = [s["p50"] for s in py[EAGER]]
    for n, r in rows.items():
        base = "int8 weight-only (today)" + (n[n.index(":") :] if ":" in n else "")
        r["signature"] = signature.get(n, "-")
        r["python"] = {p: statistics.median(s[p] for s in py[n]) for p in ("p50", "p90", "p99")}
        r["python_p50_per_round"] = [s["p50"] for s in py[n]]
        r["speedup_vs_eager"] = statistics.median(e / s["p50"] for e, s in zip(eager_p50, py[n], strict=True))
        if n in models:
            r["c"] = {p: statistics.median(s[p] for s in c[n]) for p in ("p50", "p99")}
            r["c_p50_per_round"] = [s["p50"] for s in c[n]]
            r["python_vs_today"] = statistics.median(s["p50"] / t["p50"] for s, t in zip(py[n], py[base], strict=True))
            r["c_vs_today"] = statistics.median(s["p50"] / t["p50"] for s, t in zip(c[n], c[base], strict=True))
            if web.get(n):
                r["web"] = {p: statistics.median(s[p] for s in web[n]) for p in ("p50", "p99")}
                r["web_vs_today"] = statistics.median(
                    s["p50"] / t["p50"] for s, t in zip(web[n], web[base], strict=True)
                )
            r["python_builtin_only_p50"] = builtin[n]["p50"] if n in builtin else None
    made = {"provenance": provenance(), "machine": machine(), "cpu": cpu, "rounds": args.rounds}
    Path(args.out).with_suffix(".json").write_text(json.dumps({"rows": rows, **made}, indent=1) + "\n")
    text = render(rows, source_bytes, ds.n_items, args.rounds, cpu)
    Path(args.out).write_text(text)
    print(text)


def render(rows: dict, source_bytes: int, n_items: int, rounds: int, cpu: int | None) -> str:
    lines = [
        "# Integer compute in the phone bundle, ML-1M (NCF split) NeuMF-8",
        "",
        f"Generated by {provenance()} on {machine()}, one thread pinned to CPU {cpu} (the machine was shared with",
        f"other jobs: load 3-4 on 2 cores); {rounds} rounds, cases and clients interleaved; each percentile is the",
        "median over rounds, each ratio the median over rounds of the per-round p50 ratio. recommend: one user vs all",
        f"{n_items:,} items with top-10 in the graph. Python: ai-edge-litert's signature runner; C: examples/c",
        "bundle_client on the LiteRT C API (`--bench`). % = model bytes / the fp32 NeuMF-8 safetensors",
        f"({source_bytes:,} bytes). dHR@10 and agreement (mean top-10 Jaccard over the catalog) against the fp32",
        "source in LiteRT (edgerec's export verification; the same functions for the dynamic-range row).",
        "'built-in only': Python p50 with LiteRT's built-in kernels (XNNPACK off), measured once. web (with --web):",
        "LiteRT.js (WebAssembly) in headless Chromium, the page of `edgerec bench BUNDLE --client web`, in the rounds.",
        "",
        "| case | bytes | % | HR@10 | dHR@10 | top-10 agreement | Python p50 ms | Python p99 ms | C p50 ms "
        "| C p99 ms | web p50 ms | web p99 ms | Python vs today | C vs today | web vs today | vs PyTorch (Python) "
        "| built-in only p50 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n, r in rows.items():
        py, c = r["python"], r.get("c")
        cc = f"{c['p50']:.3f} | {c['p99']:.3f}" if c else "- | -"
        w = r.get("web")
        ww = f"{w['p50']:.3f} | {w['p99']:.3f}" if w else "- | -"
        ratios = f"{r['python_vs_today']:.2f} | {r['c_vs_today']:.2f}" if c else "- | -"
        ratios += f" | {r['web_vs_today']:.2f}" if w else " | -"
        builtin = f"{r['python_builtin_only_p50']:.3f}" if r.get("python_builtin_only_p50") else "-"
        speed = f"{r['speedup_vs_eager']:.1f}x" if r["signature"] != "score" else "-"
        lines.append(
            f"| {n} | {r['bytes']:,} | {100 * r['bytes'] / source_bytes:.2f} | {r['hr']:.4f} | {r['dhr']:+.4f} "
            f"| {r['agreement']:.3f} | {py['p50']:.3f} | {py['p99']:.3f} | {cc} | {ww} | {ratios} "
            f"| {speed} | {builtin} |"
        )
    lines += [
        "",
        f"The score rows time the `score` signature over {CANDIDATES} candidates (bundles exported with that option;",
        "their bytes include both signatures); their ratio is against today's score row. No speed-up vs PyTorch for",
        "them: PyTorch's row scores the whole catalog.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
