"""Compression on ML-1M (NCF split): int8 PTQ, pruning + distillation, the same students with and without
distillation, everything together, and the pruning-ratio x precision search with its Pareto plot.

    python benchmarks/compression.py [--teacher benchmarks/runs/neumf8] [--data ../shared/data/ml-1m-ncf]

--teacher defaults to the benchmark teacher, benchmarks/runs/neumf8; recreate it with `python benchmarks/teacher.py`
(the script stops with that advice when the folder is missing). The rows that do not name an observer calibrate
with minmax, the default when the table was measured (the library's default is percentile now).
Writes benchmarks/results/compression.md, compression.json and compression_pareto.png.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from edgerec.compression.config import DistillConfig, PrecisionPlan, PruneConfig, QuantConfig, SearchConfig
from edgerec.compression.distill import distill
from edgerec.compression.gate import Baseline
from edgerec.compression.prune import prune
from edgerec.compression.quantize import QuantizedNCF, calibrate
from edgerec.compression.search import Candidate, markdown_table, plot, search
from edgerec.compression.steps import train_plain
from edgerec.data import load_dataset
from edgerec.gates import DropTolerance
from edgerec.model.checkpoint import load
from edgerec.model.config import TrainConfig
from edgerec.model.ncf import NCF, NCFArch
from edgerec.sysinfo import machine, provenance

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "ml-1m-ncf"
DEFAULT_TEACHER = HERE / "runs" / "neumf8"  # written by benchmarks/teacher.py
# the observer of the rows that name none (and of the search): QuantConfig's default when the table was measured
OBSERVER = "minmax"
HALF = PruneConfig.uniform(0.5)
log = logging.getLogger("compression")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument(
        "--teacher",
        default=str(DEFAULT_TEACHER),
        help="teacher checkpoint folder (default benchmarks/runs/neumf8, from `python benchmarks/teacher.py`)",
    )
    ap.add_argument("--epochs", type=int, default=8, help="distillation / fine-tuning epochs (early stopping)")
    ap.add_argument("--ratios", default="0,0.25,0.5,0.75")
    ap.add_argument("--skip-search", action="store_true")
    ap.add_argument("--results", default=str(RESULTS), help="output folder (default benchmarks/results)")
    ap.add_argument("--threads", type=int, default=0, help="PyTorch CPU threads (default: all cores)")
    args = ap.parse_args()
    if not Path(args.teacher, "model.safetensors").is_file():
        sys.exit(f"{args.teacher}: no teacher checkpoint; run `python benchmarks/teacher.py` first")
    if args.threads:
        torch.set_num_threads(args.threads)
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    ds = load_dataset(args.data)
    teacher = load(args.teacher).model
    t0 = time.perf_counter()
    base = Baseline(teacher, ds)
    # recovery / distillation runs use larger batches than `edgerec train` (4x fewer steps) to keep the benchmark
    # within an hour on two cores; every student, distilled or not, gets the same settings
    train_cfg = TrainConfig(epochs=args.epochs, batch_size=1024, lr=2e-3, patience=2, average_from=0)
    rows: dict[str, dict] = {}

    def measure(name: str, model: torch.nn.Module, fp32: NCF, plan: PrecisionPlan = PrecisionPlan()) -> None:
        rep = base.measure(name, model, fp32, plan)
        rows[name] = {**rep.to_json(), "arch": fp32.arch.to_json(), "plan": asdict(plan)}

    measure("teacher fp32", teacher, teacher)
    for obs in ("minmax", "percentile", "entropy"):
        q = QuantConfig(embeddings="int8", mlp="int8", observer=obs)
        measure(f"int8 PTQ ({obs})", QuantizedNCF(teacher, calibrate(teacher, ds, q)), teacher, q.plan)
    q4 = QuantConfig(embeddings="int4", mlp="int8", observer=OBSERVER)
    measure("int4 embeddings + int8 MLP PTQ", QuantizedNCF(teacher, calibrate(teacher, ds, q4)), teacher, q4.plan)

    pruned = prune(teacher, HALF, ds)
    measure("prune 50% (no recovery)", pruned, pruned)
    distilled = distill(prune(teacher, HALF, ds), teacher, ds, DistillConfig(), train_cfg).model
    measure("prune 50% + distillation", distilled, distilled)
    plain = train_plain(prune(teacher, HALF, ds), ds, train_cfg)
    measure("prune 50% + fine-tuning without distillation", plain, plain)
    q = QuantConfig(embeddings="int8", mlp="int8", observer=OBSERVER)
    measure("prune 50% + distillation + int8", QuantizedNCF(distilled, calibrate(distilled, ds, q)), distilled, q.plan)
    q4 = QuantConfig(embeddings="int4", mlp="int8", observer=OBSERVER)
    measure(
        "prune 50% + distillation + int4 emb / int8 MLP",
        QuantizedNCF(distilled, calibrate(distilled, ds, q4)),
        distilled,
        q4.plan,
    )

    arch = NCFArch.paper("neumf", ds.n_users, ds.n_items, 4, (32, 16, 8))
    torch.manual_seed(0)
    student = distill(NCF(arch), teacher, ds, DistillConfig(), train_cfg).model
    measure("fresh NeuMF-4 (32,16,8) + distillation", student, student)
    torch.manual_seed(0)
    student_plain = train_plain(NCF(arch), ds, train_cfg)
    measure("fresh NeuMF-4 (32,16,8) without distillation", student_plain, student_plain)
    torch.manual_seed(0)
    student_rank = distill(NCF(arch), teacher, ds, DistillConfig(rank_k=10, rank_weight=0.1), train_cfg).model
    measure("fresh NeuMF-4 (32,16,8) + score and ranking distillation", student_rank, student_rank)

    search_rows: list[dict] = []
    chosen_row = None
    if not args.skip_search:
        cfg = SearchConfig(
            tolerance=DropTolerance(hr=0.01),
            ratios=tuple(float(r) for r in args.ratios.split(",")),
            train=train_cfg,
            quant=QuantConfig(observer=OBSERVER),
        )
        candidates, chosen = search(teacher, ds, cfg, bases={0.5: distilled})
        search_rows = [c.row() for c in candidates]
        chosen_row = Candidate.row(chosen)
        plot(search_rows, chosen_row, base.metrics["hr@10"], results / "compression_pareto.png")
    minutes = (time.perf_counter() - t0) / 60
    (results / "compression.json").write_text(
        json.dumps(
            {
                "provenance": provenance(),
                "machine": machine(),
                "steps": rows,
                "search": search_rows,
                "chosen": chosen_row,
            },
            indent=1,
        )
        + "\n"
    )
    (results / "compression.md").write_text(render(rows, search_rows, chosen_row, base.metrics, base.bytes, minutes))
    print((results / "compression.md").read_text())


def render(
    rows: dict, search_rows: list[dict], chosen: dict | None, teacher: dict, t_bytes: int, minutes: float
) -> str:
    lines = [
        "# Compression of NeuMF-8 on ML-1M (NCF split)",
        "",
        f"Generated by {provenance()} in {minutes:.0f} min on {machine()}.",
        f"Teacher: NeuMF-8 (layers 64,32,16,8) trained by `edgerec train` defaults; fp32 {t_bytes:,} bytes;",
        f"HR@10 {teacher['hr@10']:.4f}, NDCG@10 {teacher['ndcg@10']:.4f} (sampled), full ranking "
        f"{teacher['full_hr@10']:.4f} / {teacher['full_ndcg@10']:.4f}.",
        "Deltas are against the teacher; agreement is the mean Jaccard of the two top-10 lists over the whole",
        "catalog (train items excluded) for all 6,040 users. Quantized rows are the exact integer simulation.",
        "",
        "| step | bytes | % of fp32 | MACs/item | HR@10 | NDCG@10 | dHR@10 | dNDCG@10 | full HR@10 | dfull HR@10 "
        "| dfull NDCG@10 | top-10 agreement |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        m, d = r["metrics"], r["deltas"]
        lines.append(
            f"| {name} | {r['bytes']:,} | {100 * r['size_ratio']:.1f} | {r['macs_per_item']:,} | {m['hr@10']:.4f} "
            f"| {m['ndcg@10']:.4f} | {d['hr@10']:+.4f} | {d['ndcg@10']:+.4f} | {m['full_hr@10']:.4f} "
            f"| {d['full_hr@10']:+.4f} | {d['full_ndcg@10']:+.4f} | {r['agreement']:.3f} |"
        )
    if search_rows:
        lines += [
            "",
            "## Search: pruning ratio x precision (tolerance: HR@10 drop <= 0.01, objective: bytes)",
            "",
            "Pruned points are recovered by distillation once per ratio. Plot: `compression_pareto.png`.",
            "",
            markdown_table(search_rows, chosen),
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
