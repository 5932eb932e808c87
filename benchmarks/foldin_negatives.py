"""The on-device fold-in's settings on ML-1M NeuMF-8: how many fixed negatives and Adam steps it needs.

    python benchmarks/foldin_negatives.py [--model CKPT] [--data ../shared/data/ml-1m-ncf] [--users 300]

The bundle's `fold_in` signature computes edgerec.runtime.foldin.fold_in_fixed (tests/test_bundle.py: within 1e-5 in
fp32), so its quality for a setting is measured here in numpy, without exporting a bundle per setting: a seeded
sample of test users, each folded in from at most 128 of their training items, their vectors scored on the sampled
protocol (HR@10 / NDCG@10). Graph size grows with the steps (each is unrolled), latency with steps x negatives.
Writes benchmarks/results/foldin_negatives.{md,json}.
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
SETTINGS = ((256, 40, 0.05), (1024, 40, 0.05), (2048, 40, 0.05), (256, 80, 0.05), (1024, 80, 0.05), (256, 80, 0.02))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "ml-1m-ncf"))
    ap.add_argument("--model", default=None, help="a trained checkpoint (default: train NeuMF-8 here)")
    ap.add_argument("--users", type=int, default=300)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    import torch

    import edgerec
    from edgerec.exporters.bundle import fold_in_negatives
    from edgerec.metrics import hr_ndcg
    from edgerec.runtime.config import FoldInConfig
    from edgerec.runtime.foldin import ItemSide, fold_in_fixed
    from edgerec.sysinfo import machine, provenance

    torch.set_num_threads(1)
    ds = edgerec.load_dataset(args.data)
    ck = edgerec.load(args.model) if args.model else edgerec.train(ds, edgerec.TrainConfig())
    weights = {k: v.detach().numpy().astype(np.float64) for k, v in ck.model.state_dict().items()}
    side, ds = ItemSide.of(weights), ck.align(ds)
    rng = np.random.default_rng(0)
    users = []
    for j in rng.choice(len(ds.test_users), min(args.users, len(ds.test_users)), replace=False):
        h = ds.train.items[ds.train.users == int(ds.test_users[j])]
        users.append((j, h if len(h) <= 128 else rng.choice(h, 128, replace=False)))
    rows = []
    for negatives, steps, lr in SETTINGS:
        neg = fold_in_negatives(side.n_items, negatives, 0)
        cfg = FoldInConfig(steps=steps, lr=lr)
        t0, ranks = time.perf_counter(), []
        for j, h in users:
            p, q = fold_in_fixed(side, h, neg, cfg)
            items = np.concatenate([[ds.test_items[j]], ds.test_negatives[j]])
            s = side.logits(p.astype(np.float64), q.astype(np.float64), items)[0]
            ranks.append(int((s[1:] >= s[0]).sum()))
        hr, ndcg = hr_ndcg(np.array(ranks))
        rows.append({"negatives": len(neg), "steps": steps, "lr": lr, "hr@10": hr, "ndcg@10": ndcg,
                     "numpy_s_per_user": (time.perf_counter() - t0) / len(users)})  # fmt: skip
    record = {"users": len(users), "rows": rows, "machine": machine(), "provenance": provenance(sys.argv)}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "foldin_negatives.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = [
        "# The on-device fold-in's settings on ML-1M NeuMF-8",
        "",
        f"{record['provenance']}; {record['machine']}. `fold_in_fixed` (what the bundle's `fold_in` computes) for "
        f"{len(users)} seeded test users, each from at most 128 of their training items, sampled protocol.",
        "",
        "| fixed negatives | Adam steps | lr | HR@10 | NDCG@10 | numpy s per user |",
        "|---|---|---|---|---|---|",
        *[
            f"| {r['negatives']} | {r['steps']} | {r['lr']} | {r['hr@10']:.4f} | {r['ndcg@10']:.4f} | "
            f"{r['numpy_s_per_user']:.4f} |"
            for r in rows
        ],
    ]
    (HERE / "results" / "foldin_negatives.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
