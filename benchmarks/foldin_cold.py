"""Fold-in for users the model never saw (ML-1M, NeuMF-8): the honest version of benchmarks/foldin.py.

    python benchmarks/foldin_cold.py [--teacher benchmarks/runs/neumf8] [--users 600] [--seed 0]

foldin.py folds in users whose interactions also trained the item side, which flatters it. Here the same 600 test
users (seed 0) lose every training interaction, NeuMF-8 is trained from scratch on the rest with `edgerec train`'s
defaults (one thread), and the users are then folded in from their training interactions against that model's item
side (edgerec.runtime.foldin, numpy). Their HR@10 / NDCG@10 on the NCF protocol are set beside the teacher's fully
trained vectors for the same users and beside foldin.py's warm fold-in. Writes benchmarks/results/foldin_cold.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch

import edgerec
from edgerec.data import Dataset, load_dataset
from edgerec.metrics import hr_ndcg
from edgerec.runtime.config import FoldInConfig
from edgerec.runtime.foldin import ItemSide, fold_in
from edgerec.sysinfo import machine, provenance

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from foldin import rank  # noqa: E402  (the ranking rule of the warm benchmark)

DATA = HERE.parents[1] / "shared" / "data" / "ml-1m-ncf"


def metrics(side: ItemSide, vectors: dict[int, tuple[np.ndarray, np.ndarray]], ds: Dataset, rows: np.ndarray) -> dict:
    """HR@10 / NDCG@10 of the rows' test cases with these user vectors, ranked as foldin.py ranks them."""
    ranks = [rank(side, *vectors[int(ds.test_users[r])], int(ds.test_items[r]), ds.test_negatives[r]) for r in rows]
    hr, ndcg = hr_ndcg(np.asarray(ranks), 10)
    return {"hr@10": hr, "ndcg@10": ndcg}


def ratio(m: dict, full: dict) -> str:
    return f"{m['hr@10'] / full['hr@10']:.3f} / {m['ndcg@10'] / full['ndcg@10']:.3f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--teacher", default=str(HERE / "runs" / "neumf8"))
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--users", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(HERE / "runs" / "neumf8-cold"))
    ap.add_argument("--results", default=str(HERE / "results" / "foldin_cold.md"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    ds = load_dataset(args.data)
    rng = np.random.default_rng(args.seed)
    rows = rng.choice(len(ds.test_users), size=min(args.users, len(ds.test_users)), replace=False)  # as foldin.py
    cold = np.unique(ds.test_users[rows])
    keep = ~np.isin(ds.train.users, cold)
    rest = Dataset(ds.name + "-cold", ds.train.subset(keep), ds.test_users, ds.test_items, ds.test_negatives)
    start = time.perf_counter()
    if Path(args.out, "model.safetensors").is_file():
        ck = edgerec.load(args.out)  # a previous run of this script
        train_minutes = ck.report.get("train_seconds", float("nan")) / 60
    else:
        ck = edgerec.train(rest, edgerec.TrainConfig(batch_size=256, lr=2e-3))
        ck.save(args.out)
        train_minutes = (time.perf_counter() - start) / 60
    side_cold = ItemSide.from_checkpoint(args.out)
    side_warm = ItemSide.from_checkpoint(args.teacher)
    teacher = edgerec.load(args.teacher)
    cfg = FoldInConfig()
    folded, warm, seconds = {}, {}, []
    for u in cold:
        items = ds.train.items[ds.train.users == u]
        t = time.perf_counter()
        folded[int(u)] = fold_in(side_cold, items, cfg)
        seconds.append(time.perf_counter() - t)
        warm[int(u)] = fold_in(side_warm, items, cfg)
    trained = {
        int(u): (teacher.model.gmf_user.weight[u].detach().numpy(), teacher.model.mlp_user.weight[u].detach().numpy())
        for u in cold
    }
    full = metrics(side_warm, trained, ds, rows)
    warm_m = metrics(side_warm, warm, ds, rows)
    cold_m = metrics(side_cold, folded, ds, rows)
    lines = [
        "# Fold-in for users the model never saw (ML-1M, NeuMF-8)",
        "",
        f"{provenance(sys.argv)}  ",
        f"Machine: {machine()}, one thread. {len(cold)} test users (seed {args.seed}, the users foldin.py draws) "
        f"lost their {int((~keep).sum()):,} training interactions; NeuMF-8 trained on the other "
        f"{int(keep.sum()):,} with `edgerec train`'s defaults in {train_minutes:.1f} min; fold-in {asdict(cfg)}.",
        "",
        "| user vectors | HR@10 | NDCG@10 | ratio to fully trained (HR / NDCG) |",
        "|---|---|---|---|",
        f"| fully trained (the teacher, which saw these users) | {full['hr@10']:.4f} | {full['ndcg@10']:.4f} | 1 |",
        f"| folded in against the teacher's item side (foldin.py: warm) | {warm_m['hr@10']:.4f} | "
        f"{warm_m['ndcg@10']:.4f} | {ratio(warm_m, full)} |",
        f"| **folded in against a model trained without them (cold)** | {cold_m['hr@10']:.4f} | "
        f"{cold_m['ndcg@10']:.4f} | **{ratio(cold_m, full)}** |",
        "",
        f"Fold-in wall time per user (numpy, one thread): median {np.median(seconds) * 1e3:.0f} ms, p90 "
        f"{np.percentile(seconds, 90) * 1e3:.0f} ms.",
    ]
    Path(args.results).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
