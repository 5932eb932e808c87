"""Time of one training step of NeuMF-8 per optimizer and table size (dense Adam vs lazy-adam = SparseAdam on the
tables), side by side in one process, one thread, batch 16,384 (the automatic batch's cap).

    python benchmarks/optimizer_step.py [--steps 30]

Writes benchmarks/results/optimizer_step.md. The step is the trainer's own (edgerec.model.row_grads: row gradients,
the L2 term, the optimizers); the data are random ids, so only the time means anything.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from edgerec.model.config import TrainConfig
from edgerec.model.ncf import NCF, NCFArch
from edgerec.model.row_grads import RowGrads, add_l2_grad, optimizers
from edgerec.sysinfo import machine, provenance

SIZES = {"ML-1M": (6_040, 3_706), "ML-20M shape": (138_493, 26_744), "catalog-1m": (1_000_000, 1_000_000)}


def step_ms(users: int, items: int, optimizer: str, steps: int, batch: int = 16_384) -> list[float]:
    torch.manual_seed(0)
    model = NCF(NCFArch.paper("neumf", users, items, 8, ()))
    opts = optimizers(model, TrainConfig(optimizer=optimizer, batch_size=batch, lr=1e-2))
    rg = RowGrads(model, sparse=optimizer == "lazy-adam")
    bce = torch.nn.BCEWithLogitsLoss()
    times = []
    for _ in range(steps + 3):
        u, i = torch.randint(0, users, (batch,)), torch.randint(0, items, (batch,))
        y = (torch.rand(batch) < 0.2).float()
        t0 = time.perf_counter()
        rows = rg.gather(u, i)
        loss = bce(model.combine(rows), y)
        for o in opts:
            o.zero_grad(set_to_none=True)
        loss.backward()
        add_l2_grad(rows, 1e-3)
        rg.scatter()
        for o in opts:
            o.step()
        times.append((time.perf_counter() - t0) * 1e3)
    return times[3:]  # the first steps allocate the optimizer state


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()
    torch.set_num_threads(1)
    lines = [
        "# One training step per optimizer and table size (NeuMF-8, batch 16,384, one thread)",
        "",
        f"{provenance()}; {machine()}.",
        "",
        "| tables (users x items) | optimizer | step p50 ms | p90 ms | samples/s at p50 |",
        "|---|---|---|---|---|",
    ]
    for name, (users, items) in SIZES.items():
        for opt in ("adam", "lazy-adam"):
            t = step_ms(users, items, opt, args.steps)
            p50, p90 = np.percentile(t, 50), np.percentile(t, 90)
            lines.append(
                f"| {name} ({users:,} x {items:,}) | {opt} | {p50:.1f} | {p90:.1f} | {16_384 / p50 * 1e3:,.0f} |"
            )
            print(lines[-1], flush=True)
    out = Path(__file__).resolve().parent / "results" / "optimizer_step.md"
    out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
