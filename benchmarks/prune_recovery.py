"""Recovery recipes for 50 % structured pruning of NeuMF-8 on ML-1M (NCF split): which distillation recovers most?

    python benchmarks/prune_recovery.py [--teacher benchmarks/runs/neumf8] [--data ../shared/data/ml-1m-ncf]
        [--recipes short-score,short-rank,long-rank,iterative-rank] [--threads 1]

--teacher defaults to the benchmark teacher, benchmarks/runs/neumf8 (recreate it with `python benchmarks/teacher.py`).

Every recipe starts from the same pruned teacher (all three components at 50 %, L2 importance, each MLP channel's
scaled by its activity on training pairs) and ends with a model of the same size; the teacher is measured once and
every row is compared with it by the same code as
`benchmarks/compression.py`. Each finished recipe appends its row to benchmarks/results/prune_recovery.json, so a
long run can be stopped and resumed (`--recipes` picks the remaining ones); the Markdown table is re-rendered from
the JSON after every recipe. Every row records the machine and the command and commit that produced it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

from edgerec.compression.config import DistillConfig, PruneConfig
from edgerec.compression.distill import distill
from edgerec.compression.gate import Baseline
from edgerec.compression.prune import prune
from edgerec.compression.steps import train_plain
from edgerec.data import load_dataset
from edgerec.data.split import Dataset
from edgerec.model.checkpoint import load
from edgerec.model.config import TrainConfig
from edgerec.model.ncf import NCF
from edgerec.sysinfo import machine, provenance

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DEFAULT_TEACHER = HERE / "runs" / "neumf8"  # written by benchmarks/teacher.py
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "ml-1m-ncf"
log = logging.getLogger("prune_recovery")

# the settings benchmarks/compression.py uses for every recovery (4x fewer steps than `edgerec train`)
SHORT = TrainConfig(epochs=8, batch_size=1024, lr=2e-3, patience=2, average_from=0)
# `edgerec train`'s own settings (batch 256, lr 1e-3), 20 epochs, patience 3
LONG = TrainConfig(epochs=20, batch_size=256, lr=1e-3, patience=3, average_from=0)
SCORE = DistillConfig()
RANK = DistillConfig(rank_k=10, rank_weight=0.1)
HALF = PruneConfig.uniform(0.5)


def _iterative(teacher: NCF, ds: Dataset, cfg: DistillConfig | None, train_cfg: TrainConfig) -> NCF:
    """Prune to 75 % and recover, then prune that to 50 % of the original widths and recover again (by
    distillation, or with cfg None by fine-tuning on the labels only)."""
    two = PruneConfig.uniform(0.5, steps=2)
    model = teacher
    for s in (1, 2):
        model = prune(model, two.step(s), ds)
        model = distill(model, teacher, ds, cfg, train_cfg).model if cfg else train_plain(model, ds, train_cfg)
    return model


Recipe = Callable[[NCF, Dataset, TrainConfig, TrainConfig], NCF]  # (teacher, data, short, long) -> student
RECIPES: dict[str, tuple[str, Recipe]] = {
    "short-plain": (
        "fine-tuning without distillation, short",
        lambda t, ds, sh, lo: train_plain(prune(t, HALF, ds), ds, sh),
    ),
    "short-score": (
        "score distillation, short",
        lambda t, ds, sh, lo: distill(prune(t, HALF, ds), t, ds, SCORE, sh).model,
    ),
    "short-rank": (
        "score + ranking distillation (top-10), short",
        lambda t, ds, sh, lo: distill(prune(t, HALF, ds), t, ds, RANK, sh).model,
    ),
    "long-plain": (
        "fine-tuning without distillation, long",
        lambda t, ds, sh, lo: train_plain(prune(t, HALF, ds), ds, lo),
    ),
    "long-score": (
        "score distillation, long",
        lambda t, ds, sh, lo: distill(prune(t, HALF, ds), t, ds, SCORE, lo).model,
    ),
    "long-rank": (
        "score + ranking distillation (top-10), long",
        lambda t, ds, sh, lo: distill(prune(t, HALF, ds), t, ds, RANK, lo).model,
    ),
    "iterative-rank": (
        "75 % then 50 %, score + ranking distillation after each, short",
        lambda t, ds, sh, lo: _iterative(t, ds, RANK, sh),
    ),
    "iterative-plain": (
        "75 % then 50 %, fine-tuning without distillation after each, short",
        lambda t, ds, sh, lo: _iterative(t, ds, None, sh),
    ),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument(
        "--teacher",
        default=str(DEFAULT_TEACHER),
        help="teacher checkpoint folder (default benchmarks/runs/neumf8, from `python benchmarks/teacher.py`)",
    )
    ap.add_argument("--recipes", default=",".join(RECIPES), help=f"comma-separated, from: {', '.join(RECIPES)}")
    ap.add_argument("--results", default=str(RESULTS))
    ap.add_argument("--threads", type=int, default=0, help="PyTorch CPU threads (default: all cores)")
    ap.add_argument("--seed", type=int, default=0, help="training seed (rows of other seeds are kept apart)")
    args = ap.parse_args()
    names = [n for n in args.recipes.split(",") if n]
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        ap.error(f"unknown recipe(s) {unknown}; choose from {list(RECIPES)}")
    if not Path(args.teacher, "model.safetensors").is_file():
        sys.exit(f"{args.teacher}: no teacher checkpoint; run `python benchmarks/teacher.py` first")
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    out_json = results / "prune_recovery.json"
    rows: dict = json.loads(out_json.read_text()) if out_json.exists() else {}
    ds = load_dataset(args.data)
    teacher = load(args.teacher).model
    base = Baseline(teacher, ds)
    for name in names:
        label, run = RECIPES[name]
        torch.manual_seed(args.seed)
        t0 = time.perf_counter()
        student = run(teacher, ds, replace(SHORT, seed=args.seed), replace(LONG, seed=args.seed))
        minutes = (time.perf_counter() - t0) / 60
        rep = base.measure(label + (f", seed {args.seed}" if args.seed else ""), student, student)
        key = name + (f"@seed{args.seed}" if args.seed else "")
        rows[key] = {
            **rep.to_json(),
            "minutes": minutes,
            "threads": torch.get_num_threads(),
            "machine": machine(),
            "provenance": provenance(),
        }
        out_json.write_text(json.dumps(rows, indent=1) + "\n")
        (results / "prune_recovery.md").write_text(render(rows, base.metrics))
        log.info("%s: dHR@10 %+.4f in %.1f min", name, rep.deltas["hr@10"], minutes)
    print((results / "prune_recovery.md").read_text())


def render(rows: dict, teacher: dict) -> str:
    lines = [
        "# Recovering NeuMF-8 from 50 % structured pruning on ML-1M (NCF split)",
        "",
        f"Generated by {provenance()}. Teacher: the NeuMF-8 (layers 64,32,16,8) checkpoint",
        f"given, HR@10 {teacher['hr@10']:.4f}, NDCG@10 {teacher['ndcg@10']:.4f}. Every student is",
        "the teacher pruned to 50 % of every width (MLP channels, GMF and MLP embedding dims; L2 importance, each MLP",
        "channel's scaled by its activity on training pairs).",
        f"short = batch 1,024, lr 2e-3, <= {SHORT.epochs} epochs, patience {SHORT.patience} (as in compression.py);",
        f"long = batch 256, lr 1e-3, <= {LONG.epochs} epochs, patience {LONG.patience} (the paper's settings; no",
        "weight averaging in either).",
        "Model selection on the validation split carved from train; test metrics at the selected epoch. Training seed",
        "0 unless the recipe names another.",
        "",
        "| recipe | bytes | % of fp32 | HR@10 | NDCG@10 | dHR@10 | dNDCG@10 | top-10 agreement | minutes | machine |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows.values():
        m, d = r["metrics"], r["deltas"]
        lines.append(
            f"| {r['step']} | {r['bytes']:,} | {100 * r['size_ratio']:.1f} | {m['hr@10']:.4f} | {m['ndcg@10']:.4f} "
            f"| {d['hr@10']:+.4f} | {d['ndcg@10']:+.4f} | {r['agreement']:.3f} | {r['minutes']:.1f} "
            f"({r['threads']} thread{'s' if r['threads'] > 1 else ''}) | {r['machine']} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
