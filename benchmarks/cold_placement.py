"""How new items are placed, on the cold-item protocol's saved models: by their feature neighbours (k as the item fit
chose it, what `add_items` does) against their feature bags alone, and every k the fit chooses among.

    python benchmarks/cold_placement.py --seeds 1,2,3,4,5,6,7   # models of cold_start.py --only items --seed S

`benchmarks/cold_start.py --seed S --results R` keeps the model it trained (with the cold fits, before the cold items
are added) in benchmarks/runs/cold_start/R.cold_items.ckpt. For each k of edgerec.model.cold_fit.NEIGHBOURS (0: the
bags alone) this script sets the model's item placement to k, adds the seed's cold items by `add_items` and measures
them as cold_start.py does (each user who interacted with a cold item ranks all cold items: Recall@10 / NDCG@10).
The row of the fit's own k must equal the run's own measurement (checked). The k with the best cold Recall@10 is
shown beside the fit's choice, which saw only its held-out known items. Writes
benchmarks/results/cold_item_placement.json (one record per seed) and cold_item_placement.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch

import edgerec
from edgerec.data import load_dataset
from edgerec.io import read_json, write_json
from edgerec.model.cold_fit import NEIGHBOURS
from edgerec.sysinfo import machine, provenance

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from cold_fit import cold_ids, measured  # noqa: E402
from cold_start import DATA, RUNS  # noqa: E402
from features import has_ml1m  # noqa: E402

RESULTS = HERE / "results"


def one_seed(ds: edgerec.Dataset, seed: int, stem: str, work: Path) -> dict:
    cold = cold_ids(ds, "item", seed, 0.1)
    ck = edgerec.load_checkpoint(RUNS / f"{stem}.cold_items.ckpt")
    fit = ck.report["stages"]["cold_items"]
    chosen = ck.model.features.neighbours.get("item", 0)
    by_k = {}
    for k in NEIGHBOURS:
        ck.model.features = replace(ck.model.features, neighbours={**ck.model.features.neighbours, "item": k})
        ck.save(work / f"k{k}")
        grown = edgerec.add_items(work / f"k{k}", DATA / "ml-1m.items.tsv", work / f"k{k}+added").folder
        by_k[str(k)] = measured(ds, "item", cold, edgerec.load_checkpoint(grown))
        print(f"seed {seed} k {k}: {by_k[str(k)]}", flush=True)
    items = read_json(RESULTS / f"{stem}.json")["items"]
    run = items["edgerec"]["cold"]
    if not np.isclose(run["recall@10"], by_k[str(chosen)]["recall@10"], rtol=0, atol=1e-9):
        raise SystemExit(f"seed {seed}: k {chosen} gives {by_k[str(chosen)]}, the run measured {run}")
    return {
        "provenance": provenance(sys.argv),
        "trained_by": items["provenance"],
        "machine": machine(),
        "seed": seed,
        "chosen": chosen,
        "held_out": {k: round(v, 4) for k, v in fit["neighbours"].items()},
        "cold": by_k,
    }


def markdown(records: dict[str, dict]) -> str:
    ks = [str(k) for k in NEIGHBOURS]
    lines = [
        "# New items placed by feature neighbours vs by their bags alone (ML-1M cold-item protocol)",
        "",
        "Written by `benchmarks/cold_placement.py` on the models `benchmarks/cold_start.py --only items --seed S` "
        "trained (commands and commits below). Each cell: the seed's 371 cold items added by `add_items` with the "
        "item placement set to k (0: each new item's feature bags alone; k > 0: the similarity-weighted mean of its "
        "k nearest known items, edgerec.model.features.new_rows), Recall@10 / NDCG@10 of each user who interacted "
        "with a cold item ranking all cold items. 'chosen': the k the item fit picked on its held-out known items "
        "(their Recall@10 per k in the last column), what `add_items` uses.",
        "",
        "| seed | chosen | " + " | ".join(f"k = {k}" for k in ks) + " | held-out Recall@10 by k |",
        "|---|---|" + "---|" * len(ks) + "---|",
    ]
    for seed, r in sorted(records.items(), key=lambda kv: int(kv[0])):
        cells = []
        for k in ks:
            c = r["cold"][k]
            text = f"{c['recall@10']:.4f} / {c['ndcg@10']:.4f}"
            cells.append(f"**{text}**" if int(k) == r["chosen"] else text)
        held = ", ".join(f"{k}: {v:.3f}" for k, v in r["held_out"].items())
        lines.append(f"| {seed} | {r['chosen']} | " + " | ".join(cells) + f" | {held} |")
    n = len(records)
    means = {k: np.mean([r["cold"][k]["recall@10"] for r in records.values()]) for k in ks}
    chosen = np.mean([r["cold"][str(r["chosen"])]["recall@10"] for r in records.values()])
    lines += [
        f"| mean of {n} | {chosen:.4f} | " + " | ".join(f"{means[k]:.4f}" for k in ks) + " | |",
        "",
        "Mean row: Recall@10 (the 'chosen' column: of the chosen k per seed). Runs: "
        + "; ".join(
            f"seed {s}: {r['trained_by']}, then {r['provenance']}"
            for s, r in sorted(records.items(), key=lambda kv: int(kv[0]))
        )
        + f". {next(iter(records.values()))['machine']}.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--seeds", default="1,2,3,4,5,6,7")
    ap.add_argument("--results", default="cold_start_seed{seed}", help="the cold_start.py --results stem of each seed")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if not has_ml1m(args.data):
        return 2
    ds = load_dataset(args.data)
    path = RESULTS / "cold_item_placement.json"
    records = read_json(path) if path.is_file() else {}
    with tempfile.TemporaryDirectory(prefix="edgerec-placement-") as work:
        for seed in (int(s) for s in args.seeds.split(",")):
            records[str(seed)] = one_seed(ds, seed, args.results.format(seed=seed), Path(work))
            write_json(path, records)
    (RESULTS / "cold_item_placement.md").write_text(markdown(records))
    print(markdown(records))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
