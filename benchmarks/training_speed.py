"""Training throughput and quality of NeuMF-8 on ML-1M per configuration (batch size, learning rate, threads).

    python benchmarks/training_speed.py --runs "256:2e-3" "4096:8e-3" ... [--threads 1] [--epochs 20] [--beside]

Each run is `edgerec.train` on the NCF split with the defaults except batch size and learning rate (given as
BATCH:LR[:EPOCHS]); it records wall time (data loading excluded), training samples/s, the selected epoch, the best
validation NDCG@10 (what model selection sees) and test HR@10 / NDCG@10 (the paper's protocol). --beside runs a
CPU-bound busy process (one core) during every run, as another job on the machine would. Results are appended to
benchmarks/results/training_speed.json (one record per run, with the machine and commit) and the table of every
record so far is written to benchmarks/results/training_speed.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data" / "ml-1m-ncf"


def busy(stop) -> None:  # one core of arithmetic until told to stop
    x = 0
    while not stop.is_set():
        for k in range(100_000):
            x = (x + k * k) % 1_000_003


def run(spec: str, threads: int, epochs: int, beside: bool, nproc: int, seed: int = 0, optimizer: str = "adam") -> dict:
    import torch

    import edgerec
    from edgerec.sysinfo import machine, provenance

    parts = spec.split(":")
    auto = parts[0] == "auto"  # the defaults: the automatic batch and rate
    batch, lr = (None, None) if auto else (int(parts[0]), float(parts[1]))
    epochs = int(parts[2]) if len(parts) > 2 else epochs
    torch.set_num_threads(threads)
    ds = edgerec.dataset(str(DATA))
    stop = mp.Event()
    other = mp.Process(target=busy, args=(stop,), daemon=True) if beside else None
    if other:
        other.start()
    t0 = time.perf_counter()
    ck = edgerec.train(
        ds, edgerec.TrainConfig(batch_size=batch, lr=lr, epochs=epochs, nproc=nproc, seed=seed, optimizer=optimizer)
    )
    wall = time.perf_counter() - t0
    if other:
        stop.set()
        other.join()
    stage = ck.report["stages"]["neumf"]
    stage.setdefault("history", [])
    used = ck.report["train_config"]
    return {
        "batch": used["batch_size"],
        "lr": used["lr"],
        "auto": auto,
        "nproc": nproc,
        "seed": seed,
        "optimizer": optimizer,
        "epochs": epochs,
        "threads": threads,
        "beside_busy_job": beside,
        "wall_s": round(wall, 1),
        "train_s": stage["seconds"],
        "samples_per_s": stage["samples_per_s"],
        "best_epoch": stage["best_epoch"],
        "epochs_run": len(stage["history"]),
        "val_ndcg@10": max(h["val_ndcg"] for h in stage["history"]),
        "hr@10": ck.metrics["hr@10"],
        "ndcg@10": ck.metrics["ndcg@10"],
        "machine": machine(),
        "provenance": provenance(sys.argv),
    }


NOTES = "<!-- notes: kept by write_table -->"


def write_table(records: list[dict], path: Path) -> None:
    """Every record, then each configuration's mean and spread over its seeds; notes below NOTES are kept."""
    notes = path.read_text().partition(NOTES)[2] if path.is_file() else ""
    lines = [
        "# Training speed: NeuMF-8 on ML-1M (NCF split), per configuration",
        "",
        "`python benchmarks/training_speed.py` (each row names its machine and commit in training_speed.json).",
        "Wall time = `edgerec.train` (training, per-epoch validation, test evaluation; data loading excluded).",
        "",
        "| batch | lr | optimizer | seed | processes x threads | beside a busy job | wall s | samples/s | "
        "epochs run (best) | best val NDCG@10 | test HR@10 | test NDCG@10 | machine |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        lines.append(
            f"| {r['batch']}{' (auto)' if r.get('auto') else ''} | {r['lr']:g} | {r.get('optimizer', 'adam')} | "
            f"{r.get('seed', 0)} | "
            f"{r.get('nproc', 1)} x {r['threads']} | {'yes' if r['beside_busy_job'] else 'no'} | "
            f"{r['wall_s']:.0f} | {r['samples_per_s']:,.0f} | {r['epochs_run']} ({r['best_epoch']}) | "
            f"{r['val_ndcg@10']:.4f} | {r['hr@10']:.4f} | {r['ndcg@10']:.4f} | {r['machine'].split(',')[0]} |"
        )
    lines += [
        "",
        "## Across seeds (configurations run with more than one seed; mean ± sample standard deviation)",
        "",
        "| batch | lr | optimizer | processes x threads | beside a busy job | seeds | wall s | test HR@10 "
        "| test NDCG@10 | machine |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        key = (r["batch"], r["lr"], r.get("optimizer", "adam"), r.get("nproc", 1), r["threads"], r["beside_busy_job"])
        groups.setdefault((*key, r["machine"].split(",")[0]), []).append(r)
    for (batch, lr, opt, nproc, threads, beside, host), rs in groups.items():
        seeds = sorted({r.get("seed", 0) for r in rs})
        if len(seeds) < 2:
            continue
        lines.append(
            f"| {batch} | {lr:g} | {opt} | {nproc} x {threads} | {'yes' if beside else 'no'} | "
            f"{','.join(map(str, seeds))} | {_mean_sd([r['wall_s'] for r in rs], 0)} | "
            f"{_mean_sd([r['hr@10'] for r in rs], 4)} | {_mean_sd([r['ndcg@10'] for r in rs], 4)} | {host} |"
        )
    path.write_text("\n".join(lines) + "\n\n" + NOTES + (notes or "\n"))


def _mean_sd(values: list[float], digits: int) -> str:
    import statistics

    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", nargs="+", required=True, help="BATCH:LR[:EPOCHS] per run")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--beside", action="store_true")
    ap.add_argument("--nproc", type=int, default=1, help="training processes (torch.distributed, one thread each)")
    ap.add_argument("--seeds", default="0", help="comma-separated training seeds, each run once per seed")
    ap.add_argument("--optimizer", default="adam", choices=["adam", "lazy-adam"])
    ap.add_argument("--results", default=str(HERE / "results" / "training_speed.json"))
    args = ap.parse_args()
    path = Path(args.results)
    records = json.loads(path.read_text()) if path.is_file() else []
    for spec, seed in ((sp, int(s)) for sp in args.runs for s in args.seeds.split(",")):
        rec = run(spec, args.threads, args.epochs, args.beside, args.nproc, seed, args.optimizer)
        print(json.dumps(rec), flush=True)
        records.append(rec)
        path.write_text(json.dumps(records, indent=1) + "\n")
        write_table(records, path.with_suffix(".md"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
