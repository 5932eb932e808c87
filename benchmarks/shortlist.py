"""recommend over a shortlist (`BundleOptions.shortlist`) against recommend over the whole catalog, on ML-1M (NCF
split) NeuMF-8: bytes, quality and latency in three app runtimes, in one process on one pinned core.

    python benchmarks/shortlist.py --model CKPT [--data ../shared/data/ml-1m-ncf] [--rounds 3] [--web]

Bundles are exported by edgerec's own `export()` with table_recall 0 (every shortlist is written, and the table says
which pass the default gate of 0.95). Quality, per bundle:
- recall@10: its in-graph top-10 against the uncompressed (fp32 PyTorch) model's exhaustive top-10, over every user
  (train items not excluded by either: the phone's own view; the export gate measures the same on 200 users);
- app HR@10 / NDCG@10: full ranking as an app sees it: each test user's top-10 from one recommend call with the
  user's train items left out (from the catalog scores, or from the shortlist), hit if it holds the test item;
- HR@10 (sampled, the paper protocol): export verification, through `score` (exact for every bundle).
Latency: one user, recommend with top-10 in the graph, through Python's LiteRT (the signature runner), the C client on
the LiteRT C API (examples/c, `--bench`, one thread) and with --web LiteRT.js in headless Chromium (the page of
`edgerec bench BUNDLE --client web`); cases and clients take turns for --rounds rounds, each percentile the median
over rounds. Writes benchmarks/results/shortlist.{md,json}.
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
from integer_bundle import DEFAULT_DATA, HERE, build_client, c_bench

import edgerec
from edgerec.apps.native import Tensor, encode
from edgerec.benchmarking.config import BenchConfig
from edgerec.benchmarking.latency import bench_web, one_core, timed
from edgerec.data import load_dataset
from edgerec.exporters.config import ExportConfig
from edgerec.exporters.folded import user_vectors
from edgerec.gates import ParityBound
from edgerec.model.checkpoint import load
from edgerec.runtime import load_bundle
from edgerec.runtime.fold import fold
from edgerec.runtime.retrieval import exhaustive_top_k
from edgerec.sysinfo import machine, provenance

CASES = (  # name, precision, options
    ("fp32", "fp32", {}),
    ("int8 weight-only (today)", "int8", {}),
    ("int8 compute", "int8", {"compute": "int8"}),
    ("int8 weight-only, shortlist 100", "int8", {"shortlist": 100}),
    ("int8 weight-only, shortlist 200", "int8", {"shortlist": 200}),
    ("int8 weight-only, shortlist 400", "int8", {"shortlist": 400}),
    ("int8 compute, shortlist 200", "int8", {"compute": "int8", "shortlist": 200}),
    ("int8 compute, shortlist 400", "int8", {"compute": "int8", "shortlist": 400}),
)
BASE = "int8 weight-only (today)"
GATE = 0.95  # BundleOptions.table_recall's default


def app_top10(scorer: Any, ug: np.ndarray, um: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """An app's top-10 from one recommend call, the user's train items left out."""
    if scorer.shortlist:
        items, scores = scorer.shortlisted(ug, um)
        keep = ~np.isin(items, seen)
        items, scores = items[keep], scores[keep].astype(np.float64)
    else:
        scores = scorer.recommend(ug, um)[2].astype(np.float64)
        scores[seen] = -np.inf
        items = np.arange(len(scores))
    return items[np.argsort(-scores, kind="stable")[:10]]


def quality(folder: Path, ds: Any, truth: np.ndarray, ug: np.ndarray, um: np.ndarray) -> dict[str, float]:
    scorer = load_bundle(folder)
    recall = []
    for u in range(len(ug)):
        recall.append(len(np.intersect1d(scorer.recommend(ug[u], um[u])[0], truth[u])) / 10)
    seen = np.split(ds.train.items[np.argsort(ds.train.users, kind="stable")], np.cumsum(ds.train.user_counts())[:-1])
    hr, ndcg = [], []
    for u, item in zip(ds.test_users, ds.test_items, strict=True):
        top = app_top10(scorer, ug[u], um[u], seen[u])
        at = np.flatnonzero(top == item)
        hr.append(float(len(at) > 0))
        ndcg.append(1.0 / np.log2(at[0] + 2) if len(at) else 0.0)
    return {"recall": float(np.mean(recall)), "app_hr": float(np.mean(hr)), "app_ndcg": float(np.mean(ndcg))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="NeuMF checkpoint folder")
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=1.0, help="measured time per case per round (Python)")
    ap.add_argument("--calls", type=int, default=5000, help="timed calls per case per round (C client)")
    ap.add_argument("--web", action="store_true", help="also LiteRT.js in headless Chromium (edgerec's web client)")
    ap.add_argument("--out", default=str(HERE / "results" / "shortlist.md"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    ds = load_dataset(args.data)
    ck = load(args.model)
    work = Path(tempfile.mkdtemp(prefix="edgerec-shortlist-"))
    ug, um = (t.numpy().astype(np.float32) for t in user_vectors(ck.model))
    folded = fold({k: v.detach().numpy().astype(np.float64) for k, v in ck.model.state_dict().items()})
    truth = np.stack([exhaustive_top_k(folded, ug[u].astype(np.float64), um[u].astype(np.float64), 10)
                      for u in range(len(ug))])  # fmt: skip
    rows: dict[str, dict[str, Any]] = {}
    folders: dict[str, Path] = {}
    for name, precision, options in CASES:
        cfg = ExportConfig(
            target="tflite-bundle",
            precision=precision,
            options={**options, "table_recall": 0.0},
            tolerance=ParityBound(hr=0.05),
        )
        art = edgerec.export(ck, cfg, ds, out=work / f"b{len(rows)}")
        folders[name] = art.folder
        short = art.manifest.get("shortlist")
        rows[name] = {
            "bytes": art.bytes,
            "hr": art.metrics["hr@10"],
            "dhr": art.verification["deltas"]["hr@10"],
            "gate_recall": short["gate"]["recall_at_k"] if short else None,
            **quality(art.folder, ds, truth, ug, um),
        }
        print(name, rows[name], flush=True)
    client = build_client(work)
    user = {"user_gmf": Tensor(ug[:1].copy()), "user_mlp": Tensor(um[:1].copy())}
    request = work / "recommend.bin"
    request.write_bytes(encode([("recommend", user, ["top_items", "top_scores"])]))
    runners = {n: load_bundle(f).runner for n, f in folders.items()}
    bench = BenchConfig(threads=1, min_time_s=args.seconds, warmup=200)
    py: dict[str, list[dict]] = {n: [] for n in folders}
    c: dict[str, list[dict]] = {n: [] for n in folders}
    web: dict[str, list[dict]] = {n: [] for n in folders}
    with one_core(True) as cpu:
        for _ in range(args.rounds):
            for n, folder in folders.items():
                r = runners[n]
                py[n].append(timed(lambda r=r: r(user_gmf=ug[:1], user_mlp=um[:1]), bench))
                c[n].append(c_bench(client, folder / "model.tflite", request, args.calls, "recommend"))
                if args.web:
                    page = bench_web(folder, BenchConfig(min_time_s=args.seconds, min_calls=200))
                    web[n].append(page["latency_ms"]["catalog_top10"])
    for n, r in rows.items():
        for client_name, series in (("python", py[n]), ("c", c[n]), ("web", web[n])):
            if not series:
                continue
            r[client_name] = {p: statistics.median(s[p] for s in series) for p in ("p50", "p99")}
            base = {"python": py, "c": c, "web": web}[client_name][BASE]
            r[f"{client_name}_vs_today"] = statistics.median(
                s["p50"] / b["p50"] for s, b in zip(series, base, strict=True)
            )
            r[f"{client_name}_p50_per_round"] = [s["p50"] for s in series]
    made = {"provenance": provenance(), "machine": machine(), "cpu": cpu, "rounds": args.rounds}
    Path(args.out).with_suffix(".json").write_text(json.dumps({"rows": rows, **made}, indent=1) + "\n")
    text = render(rows, ds.n_items, args.rounds, cpu)
    Path(args.out).write_text(text)
    print(text)


def render(rows: dict, n_items: int, rounds: int, cpu: int | None) -> str:
    lines = [
        "# recommend over a shortlist, ML-1M (NCF split) NeuMF-8",
        "",
        f"Generated by {provenance()} on {machine()}, one thread pinned to CPU {cpu}; {rounds} rounds, cases and",
        "clients interleaved; each percentile is the median over rounds, each ratio the median over rounds of the",
        f"per-round p50 ratio against `{BASE}` (recommend over all {n_items:,} items). Python: ai-edge-litert's",
        "signature runner; C: examples/c bundle_client on the LiteRT C API (`--bench`); web: LiteRT.js (WebAssembly)",
        "in headless Chromium, the page of `edgerec bench BUNDLE --client web`. recall@10: the in-graph top-10 against",
        "the uncompressed model's exhaustive top-10, every user (gate: the export's own measure on 200 users,",
        f"passes at >= {GATE}). app HR / NDCG@10: full ranking from one recommend call per test user, train items",
        "left out (from the catalog scores, or from the shortlist). HR@10: the paper's sampled protocol through",
        "`score` (export verification; dHR@10 against the fp32 source).",
        "",
        "| case | bytes | recall@10 | gate recall (passes?) | app HR@10 | app NDCG@10 | HR@10 | dHR@10 "
        "| Python p50 / p99 ms | C p50 / p99 ms | web p50 / p99 ms | Python vs today | C vs today | web vs today |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def pair(r: dict, key: str) -> str:
        return f"{r[key]['p50']:.3f} / {r[key]['p99']:.3f}" if key in r else "-"

    def ratio(r: dict, key: str) -> str:
        return f"{r[key]:.2f}" if key in r else "-"

    for n, r in rows.items():
        g = r["gate_recall"]
        gate = f"{g:.3f} ({'yes' if g >= GATE else 'no'})" if g is not None else "-"
        lines.append(
            f"| {n} | {r['bytes']:,} | {r['recall']:.3f} | {gate} | {r['app_hr']:.4f} | {r['app_ndcg']:.4f} "
            f"| {r['hr']:.4f} | {r['dhr']:+.4f} | {pair(r, 'python')} | {pair(r, 'c')} | {pair(r, 'web')} "
            f"| {ratio(r, 'python_vs_today')} | {ratio(r, 'c_vs_today')} | {ratio(r, 'web_vs_today')} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
