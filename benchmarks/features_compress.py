"""A feature NeuMF-8 compressed on ML-1M (NCF protocol): warm quality and items never seen, before and after.

    python benchmarks/features_compress.py [--data ../shared/data/ml-1m-ncf] [--model benchmarks/runs/neumf8-features]
        [--prune 0.5] [--prune-steps 1] [--epochs 10] [--batch-size 256] [--lr 1e-3] [--embeddings int8]
        [--cold-epochs 20] [--part all]

The feature model (--model) is the one `edgerec train --data DATA --user-features DATA/ml-1m.users.tsv
--item-features DATA/ml-1m.items.tsv --threads 1` writes (trained first if the folder is missing). Both models below
are compressed as `edgerec compress --prune R --prune-steps S --distill --rank-k 10 --quantize --embeddings E` does
(edgerec.compress: prune -> distillation recovery -> int8 MLP and E tables, calibrated), or with --prune 0 as
`edgerec compress --quantize --embeddings E` (quantization alone):
1. warm: the feature model, measured against itself by compress on all 6,040 test users (HR@10 / NDCG@10 of the
   exact integer simulation after);
2. cold: the split of benchmarks/features.py (a seeded 10 % of the items held out of training entirely), its feature
   model trained, then compressed on the warm data; before and after compression the held-out items are added by
   their features alone (benchmarks/features.py's with_cold_items, i.e. edgerec add-items) and the test users whose
   test item is cold are ranked against their 99 negatives (after: the integer simulation of the grown model, as an
   export of `edgerec add-items`' output runs).
Checkpoints are cached under benchmarks/runs/. Writes benchmarks/results/features_compress.md (and .json).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch
from features import cold_items, has_ml1m, metrics, warm_split, with_cold_items

import edgerec
from edgerec.compression.quantize import QuantizedNCF, spec_of
from edgerec.data import Dataset, load_dataset
from edgerec.data.features import read_features
from edgerec.model.config import FeaturesConfig, TrainConfig, fine_tune_config
from edgerec.model.features import FeatureNCF
from edgerec.model.training import torch_scorer
from edgerec.sysinfo import machine, provenance

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data" / "ml-1m-ncf"
RUNS = HERE / "runs"


def cached(folder: Path, make) -> tuple[edgerec.Checkpoint, float]:
    """The checkpoint in `folder`, made (and saved there, with the seconds it took beside it) when missing; (it, the
    seconds it took)."""
    seconds_file = folder.with_name(folder.name + ".seconds.json")
    if not folder.is_dir():
        t0 = time.perf_counter()
        ck = make()
        seconds_file.write_text(json.dumps({"seconds": round(time.perf_counter() - t0, 1)}))
        ck.save(folder)
    return edgerec.load(folder), json.loads(seconds_file.read_text())["seconds"] if seconds_file.exists() else -1


def cold_quality(ck: edgerec.Checkpoint, ds: Dataset, cold: np.ndarray, table) -> dict:
    """ck (trained or compressed on the warm split) with the cold items added by their features, as it runs (the
    integer simulation when it is calibrated): the cold and the warm test rows."""
    assert isinstance(ck.model, FeatureNCF)
    grown, position = with_cold_items(ck.model, ds, cold, table)
    spec = spec_of(ck)
    score = torch_scorer(QuantizedNCF(grown, spec) if spec is not None else grown)

    def scorer(u: np.ndarray, i: np.ndarray) -> np.ndarray:
        return score(u, position[i])

    cold_rows = np.flatnonzero(np.isin(ds.test_items, cold))
    warm_rows = np.flatnonzero(~np.isin(ds.test_items, cold))
    return {"cold": metrics(scorer, ds, cold_rows), "warm_rows": metrics(scorer, ds, warm_rows)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--model", default=str(RUNS / "neumf8-features"))
    ap.add_argument("--prune", type=float, default=0.5, help="0: quantization alone (no pruning, no distillation)")
    ap.add_argument("--prune-steps", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=10, help="distillation epochs at most (early stopping)")
    ap.add_argument("--batch-size", type=int, default=256, help="distillation batch (compress: 256)")
    ap.add_argument("--lr", type=float, default=1e-3, help="distillation Adam rate (compress: 1e-3)")
    ap.add_argument("--embeddings", default="int8", choices=("int8", "int4"))
    ap.add_argument("--cold-share", type=float, default=0.1)
    ap.add_argument("--cold-epochs", type=int, default=TrainConfig().epochs, help="the cold-split model's, at most")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--results", default=str(HERE / "results" / "features_compress.md"))
    ap.add_argument(
        "--part", default="all", choices=("all", "cold", "warm"), help="make only one part's checkpoints (to run the "
        "two in parallel); `all` makes what is missing, measures and writes the results"
    )  # fmt: skip
    args = ap.parse_args()
    torch.set_num_threads(1)
    data = Path(args.data)
    if not has_ml1m(data):
        return 2
    items_tsv = data / "ml-1m.items.tsv"
    features = FeaturesConfig(user=str(data / "ml-1m.users.tsv"), item=str(items_tsv))
    train_cfg = TrainConfig(features=features)
    quantize = edgerec.QuantConfig(embeddings=args.embeddings, mlp="int8")
    if args.prune:
        cfg = edgerec.CompressConfig(
            prune=edgerec.PruneConfig.uniform(args.prune, steps=args.prune_steps),
            distill=edgerec.DistillConfig(rank_k=10),
            quantize=quantize,
            train=replace(fine_tune_config(args.epochs), batch_size=args.batch_size, lr=args.lr),
        )
        recipe = (
            f"p{round(args.prune * 100)}x{args.prune_steps}-rank-e{args.epochs}-b{args.batch_size}-{args.embeddings}"
        )
    else:  # quantization alone
        cfg, recipe = edgerec.CompressConfig(quantize=quantize), f"{args.embeddings}"
    cold_train_cfg = TrainConfig(features=features, epochs=args.cold_epochs)
    ds = load_dataset(data)
    out: dict = {"machine": machine(), "provenance": provenance(sys.argv), "recipe": recipe}

    if args.part == "warm":
        warm(ds, train_cfg, cfg, recipe, args)
        return 0
    # 2. the cold split
    cold = cold_items(ds, args.cold_share, args.seed)
    warm_ds = warm_split(ds, cold)
    cold_ck, s = cached(
        RUNS / f"neumf8-features-cold-e{args.cold_epochs}", lambda: edgerec.train(warm_ds, cold_train_cfg)
    )
    print("cold-split model", json.dumps(cold_ck.metrics.get("hr@10")), s, flush=True)
    small_cold, s_cold = cached(
        RUNS / f"neumf8-features-cold-e{args.cold_epochs}-{recipe}", lambda: edgerec.compress(cold_ck, warm_ds, cfg)
    )
    if args.part == "cold":
        return 0
    table = read_features(items_tsv, "item", features.item_table)
    out["cold"] = {
        "cold_items": len(cold),
        "before": cold_quality(cold_ck, ds, cold, table),
        "after": cold_quality(small_cold, ds, cold, table),
        "compress_seconds": s_cold,
        "steps": small_cold.report["steps"],
    }
    print("cold", json.dumps({k: out["cold"][k] for k in ("before", "after")}), flush=True)

    out["warm"] = warm(ds, train_cfg, cfg, recipe, args)

    results = Path(args.results)
    results.with_suffix(".json").write_text(json.dumps(out, indent=1) + "\n")
    results.write_text(report(out, args))
    print(f"wrote {results}")
    return 0


def warm(ds: Dataset, train_cfg: TrainConfig, cfg: edgerec.CompressConfig, recipe: str, args) -> dict:
    """1. the feature model trained on all the data, compressed: its step reports against it."""
    teacher, _ = cached(Path(args.model), lambda: edgerec.train(ds, train_cfg))
    small, seconds = cached(RUNS / f"neumf8-features-{recipe}", lambda: edgerec.compress(teacher, ds, cfg))
    assert isinstance(small.model, FeatureNCF)
    print("warm", json.dumps(small.report["steps"][-1]["metrics"]), flush=True)
    return {"steps": small.report["steps"], "compress_seconds": seconds}


def report(out: dict, args: argparse.Namespace) -> str:
    def steps_table(steps: list[dict]) -> list[str]:
        t = steps[0]
        rows = [
            "| step | bytes | % of fp32 | HR@10 | NDCG@10 | dHR@10 | dNDCG@10 | top-10 agreement |",
            "|---|---|---|---|---|---|---|---|",
            f"| teacher (fp32) | {t['teacher_bytes']:,} | 100.0 | {t['teacher']['hr@10']:.4f} | "
            f"{t['teacher']['ndcg@10']:.4f} | | | |",
        ]
        for r in steps:
            m, d = r["metrics"], r["deltas"]
            rows.append(
                f"| {r['step']} | {r['bytes']:,} | {100 * r['size_ratio']:.1f} | {m['hr@10']:.4f} | "
                f"{m['ndcg@10']:.4f} | {d['hr@10']:+.4f} | {d['ndcg@10']:+.4f} | {r['agreement']:.3f} |"
            )
        return rows

    cold = out["cold"]
    b, a = cold["before"], cold["after"]

    def row(name: str, m: dict) -> str:
        return f"| {name} | {m['cold']['hr@10']:.4f} | {m['cold']['ndcg@10']:.4f} | {m['cold']['users']} | " \
               f"{m['warm_rows']['hr@10']:.4f} | {m['warm_rows']['ndcg@10']:.4f} |"  # fmt: skip

    quant = f"int8 MLP, {args.embeddings} tables"
    if args.prune:
        recipe = (
            f"{args.prune:.0%} pruning in {args.prune_steps} step(s), distillation (score + ranking over the teacher's "
            f"top-10, at most {args.epochs} epochs, early stopping, batch {args.batch_size}, Adam {args.lr:g}), "
            f"{quant}, calibrated (`edgerec compress --prune {args.prune} --prune-steps {args.prune_steps} --distill "
            f"--rank-k 10 --epochs {args.epochs} --quantize --embeddings {args.embeddings}`"
            + (
                ""
                if (args.batch_size, args.lr) == (256, 1e-3)
                else ", with the distillation's batch and rate set in "
                "CompressConfig.train: the command has no flags for them"
            )
            + ")"
        )
    else:
        recipe = (
            f"quantization alone, {quant}, calibrated (`edgerec compress --quantize --embeddings {args.embeddings}`)"
        )
    cold_epochs = "" if args.cold_epochs == TrainConfig().epochs else f", at most {args.cold_epochs} epochs"
    lines = [
        "# A feature NeuMF-8 compressed (ML-1M, NCF protocol): warm quality and cold items",
        "",
        f"{out['provenance']}  ",
        f"Machine: {out['machine']}. Recipe: {recipe}. The compressed model is a feature model (pruning "
        "takes each embedding dimension from the id table and its feature tables together, distillation trains with "
        "id dropout); the quantized rows are the folded id + feature rows.",
        "",
        "## Warm: the feature model trained on all the data, all 6,040 test users",
        "",
        f"Compression took {out['warm']['compress_seconds']:.0f} s. After quantization: the exact integer simulation.",
        "",
        *steps_table(out["warm"]["steps"]),
        "",
        f"## Cold items: {cold['cold_items']} items ({args.cold_share:.0%}, seed {args.seed}) held out of training",
        "",
        f"The feature model trained without them (benchmarks/features.py's split{cold_epochs}), compressed with the "
        "same recipe "
        f"on that data ({cold['compress_seconds']:.0f} s); before and after, the held-out items are added by their "
        "features alone (`edgerec add-items`) and the test users whose test item is cold are ranked against their 99 "
        "original negatives; beside them the test users whose test item is warm.",
        "",
        "| model | cold HR@10 | cold NDCG@10 | cold test users | warm rows HR@10 | warm rows NDCG@10 |",
        "|---|---|---|---|---|---|",
        row("feature NeuMF-8 (fp32)", b),
        row(f"compressed ({quant}, integer simulation)", a),
        "",
        f"Cold items, compressed minus fp32: HR@10 {a['cold']['hr@10'] - b['cold']['hr@10']:+.4f}, NDCG@10 "
        f"{a['cold']['ndcg@10'] - b['cold']['ndcg@10']:+.4f}. The compression steps on the warm split:",
        "",
        *steps_table(cold["steps"]),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
