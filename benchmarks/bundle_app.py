"""The phone bundle's on-device functions on ML-1M NeuMF-8: bytes, latency and the quality of its own fold-in.

    python benchmarks/bundle_app.py [--data ../shared/data/ml-1m-ncf] [--users 300]

Trains NeuMF-8 with `edgerec train`'s defaults (or takes --model), exports the int8 phone bundle without and with
`--explain` (fold_in and explain in the graph), and for a seeded sample of test users folds each one in from (at most
the bundle's max_history of) their training items three ways: the bundle's `fold_in` signature in LiteRT, its numpy
reference `fold_in_fixed` (same objective, float64), and the numpy fold-in `edgerec recommend --history` uses
(300 Adam steps, negatives re-drawn). Each user's vectors are then scored on the sampled protocol (the test item
against its 99 negatives): HR@10 / NDCG@10 beside the user's trained vectors. Warm fold-in: the item side was
trained with these users (benchmarks/foldin_cold.py measures the cold case for the numpy fold-in). Latency: p50 / p99
of fold_in, recommend and explain through ai-edge-litert, one thread. Writes benchmarks/results/bundle_app.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def percentiles(fn, calls: int) -> dict[str, float]:
    for _ in range(10):
        fn()
    times = []
    for _ in range(calls):
        t0 = time.perf_counter_ns()
        fn()
        times.append((time.perf_counter_ns() - t0) / 1e6)
    return {"p50": float(np.percentile(times, 50)), "p99": float(np.percentile(times, 99))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "ml-1m-ncf"))
    ap.add_argument("--model", default=None, help="a trained checkpoint (default: train NeuMF-8 here)")
    ap.add_argument("--users", type=int, default=300, help="test users folded in (seeded sample)")
    ap.add_argument("--calls", type=int, default=200, help="timed calls per signature")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    import torch

    import edgerec
    from edgerec.benchmarking.latency import one_core
    from edgerec.metrics import hr_ndcg
    from edgerec.runtime import load_bundle
    from edgerec.runtime.config import FoldInConfig
    from edgerec.runtime.foldin import ItemSide, fold_in, fold_in_fixed
    from edgerec.sysinfo import machine, provenance

    torch.set_num_threads(1)
    ds = edgerec.load_dataset(args.data)
    t0 = time.perf_counter()
    ck = edgerec.load(args.model) if args.model else edgerec.train(ds, edgerec.TrainConfig())
    train_s = time.perf_counter() - t0
    sizes, arts = {}, {}
    for explain in (False, True):
        t0 = time.perf_counter()
        cfg = edgerec.ExportConfig(target="tflite-bundle", precision="int8", options={"explain": explain})
        arts[explain] = edgerec.export(ck, cfg, ds)
        sizes[explain] = {"bytes": arts[explain].bytes, "export_s": round(time.perf_counter() - t0, 1)}
    art = arts[True]
    b = load_bundle(art.folder)
    fi = dict(art.manifest["fold_in"])
    negatives = np.asarray(fi.pop("negative_items"))
    fixed_cfg = FoldInConfig(**fi)
    weights = {k: v.detach().numpy().astype(np.float64) for k, v in ck.model.state_dict().items()}
    side = ItemSide.of(weights)
    ds = ck.align(ds)
    rng = np.random.default_rng(0)
    rows = rng.choice(len(ds.test_users), min(args.users, len(ds.test_users)), replace=False)
    ranks: dict[str, list[int]] = {
        "trained": [],
        "bundle fold_in": [],
        "fold_in_fixed (numpy)": [],
        "numpy fold_in": [],
    }
    agree, vec_err, seconds = [], [], {"bundle fold_in": 0.0, "numpy fold_in": 0.0}
    for j in rows:
        u = int(ds.test_users[j])
        hist = ds.train.items[ds.train.users == u]
        if len(hist) > b.max_history:
            hist = rng.choice(hist, b.max_history, replace=False)
        items = np.concatenate([[ds.test_items[j]], ds.test_negatives[j]])
        t0 = time.perf_counter()
        bundle_v = b.fold_in(hist)
        seconds["bundle fold_in"] += time.perf_counter() - t0
        fixed_v = fold_in_fixed(side, hist, negatives, fixed_cfg)
        t0 = time.perf_counter()
        numpy_v = fold_in(side, hist)
        seconds["numpy fold_in"] += time.perf_counter() - t0
        vec_err.append(float(max(np.abs(bundle_v[0] - fixed_v[0]).max(), np.abs(bundle_v[1] - fixed_v[1]).max())))
        top_b = set(b.recommend(*bundle_v)[0].tolist())
        agree.append(len(top_b & set(b.recommend(*fixed_v)[0].tolist())) / len(top_b))
        vectors = {
            "trained": (weights["gmf_user.weight"][u], weights["mlp_user.weight"][u]),
            "bundle fold_in": bundle_v,
            "fold_in_fixed (numpy)": fixed_v,
            "numpy fold_in": numpy_v,
        }
        for name, (p, q) in vectors.items():
            s = side.logits(np.asarray(p, np.float64), np.asarray(q, np.float64), items)[0]
            ranks[name].append(int((s[1:] >= s[0]).sum()))
    quality = {name: dict(zip(("hr@10", "ndcg@10"), hr_ndcg(np.array(r)), strict=True)) for name, r in ranks.items()}
    ug, um = b.fold_in(ds.train.items[ds.train.users == int(ds.test_users[rows[0]])][: b.max_history])
    top = b.recommend(ug, um)[0]
    hist0 = ds.train.items[ds.train.users == int(ds.test_users[rows[0]])][: b.max_history]
    with one_core(True):
        latency = {
            "fold_in": percentiles(lambda: b.fold_in(hist0), args.calls),
            "recommend": percentiles(lambda: b.recommend(ug, um), args.calls),
            "explain": percentiles(lambda: b.explain(ug, um, hist0, top), args.calls),
        }
    record = {
        "data": ds.name,
        "train_s": round(train_s, 1),
        "model_hr@10": ck.metrics.get("hr@10"),
        "bytes": sizes,
        "users": len(rows),
        "max_history": b.max_history,
        "fold_in": {**fi, "negative_items": len(negatives)},
        "quality": quality,
        "bundle_vs_fixed": {"max_abs_vector_error": max(vec_err), "top10_overlap_mean": float(np.mean(agree))},
        "fold_in_seconds_per_user": {k: v / len(rows) for k, v in seconds.items()},
        "latency_ms": latency,
        "machine": machine(),
        "provenance": provenance(sys.argv),
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "bundle_app.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = [
        "# The phone bundle's fold_in / recommend / explain on ML-1M NeuMF-8 (int8)",
        "",
        f"{record['provenance']}; {record['machine']}. NeuMF-8 {'from ' + args.model if args.model else 'trained here'}"
        f" (test HR@10 {record['model_hr@10']:.4f}); {len(rows)} seeded test users, each folded in from at most "
        f"{b.max_history} of their training items (a random subset beyond that), scored on the sampled protocol.",
        "",
        "| int8 bundle | bytes | export s |",
        "|---|---|---|",
        f"| recommend only | {sizes[False]['bytes']:,} | {sizes[False]['export_s']} |",
        f"| + fold_in, explain (`--explain`) | {sizes[True]['bytes']:,} | {sizes[True]['export_s']} |",
        "",
        "| user vectors | HR@10 | NDCG@10 | s per user |",
        "|---|---|---|---|",
    ]
    per_user = record["fold_in_seconds_per_user"]
    for name, q in quality.items():
        s = per_user.get(name)
        lines.append(f"| {name} | {q['hr@10']:.4f} | {q['ndcg@10']:.4f} | {'-' if s is None else f'{s:.4f}'} |")
    lines += [
        "",
        f"Bundle `fold_in` (int8 constants, float32) against its float64 reference on the fp32 weights: max |vector "
        f"difference| {max(vec_err):.3g}, mean top-10 overlap {np.mean(agree):.3f}.",
        "",
        "| signature (ai-edge-litert, 1 thread) | p50 ms | p99 ms |",
        "|---|---|---|",
        *[f"| {k} | {v['p50']:.3f} | {v['p99']:.3f} |" for k, v in latency.items()],
    ]
    (HERE / "results" / "bundle_app.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
