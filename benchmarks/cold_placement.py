"""How new items are placed, on the cold-item protocol's saved models: by their feature neighbours (k as the item fit
chooses it, what `add_items` does) against their feature bags alone, and every k the fit chooses among, on two
protocols.

    python benchmarks/cold_placement.py --seeds 1,2,3,4,5,6,7   # models of cold_start.py --only items --seed S
    python benchmarks/cold_placement.py --seeds 0 --results cold_start

`benchmarks/cold_start.py --seed S --results R` keeps the model it trained (with the cold fits, before the cold items
are added) in benchmarks/runs/cold_start/R.cold_items.ckpt. This script runs the item fit's last step on it again
(`edgerec.model.cold_fit.place_new_items`: the same held-out items; what `train` now ends its item fit with, on a
model whose user rows the user fit has since moved by float rounding only), then, for that k and each k of
NEIGHBOURS (0: the bags alone), adds the seed's cold items by `add_items` and measures them:
- cold among cold (cold_start.py's protocol): each user who interacted with a cold item ranks all cold items,
  Recall@10 / NDCG@10;
- cold among the catalog: each test user whose test item is cold ranks it among its 99 negatives of the NCF split
  (mostly known items), HR@10 / NDCG@10.
Writes benchmarks/results/cold_item_placement.json (one record per seed) and cold_item_placement.md.
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
from edgerec.model.cold_fit import MIXED_TOLERANCE, NEIGHBOURS, ColdFit, place_new_items
from edgerec.sysinfo import machine, provenance

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from cold_fit import cold_ids, measured  # noqa: E402
from cold_start import DATA, RUNS, model_scorer  # noqa: E402
from features import has_ml1m, metrics, warm_split  # noqa: E402

RESULTS = HERE / "results"


def one_seed(ds: edgerec.Dataset, seed: int, stem: str, work: Path) -> dict:
    cold = cold_ids(ds, "item", seed, 0.1)
    ck = edgerec.load_checkpoint(RUNS / f"{stem}.cold_items.ckpt")
    choice = place_new_items(ck.model, warm_split(ds, cold), ColdFit("item", seed=0))
    catalog_rows = np.flatnonzero(np.isin(ds.test_items, cold))
    by_k = {}
    for k in NEIGHBOURS:
        ck.model.features = replace(ck.model.features, neighbours={**ck.model.features.neighbours, "item": k})
        ck.save(work / f"s{seed}k{k}")
        grown = edgerec.load_checkpoint(
            edgerec.add_items(work / f"s{seed}k{k}", DATA / "ml-1m.items.tsv", work / f"s{seed}k{k}+added").folder
        )
        by_k[str(k)] = {
            "cold": measured(ds, "item", cold, grown),
            "catalog": metrics(model_scorer(grown, ds), ds, catalog_rows),
        }
        print(f"seed {seed} k {k}: {by_k[str(k)]}", flush=True)
    items = read_json(RESULTS / f"{stem}.json")["items"]
    return {
        "provenance": provenance(sys.argv),
        "trained_by": items["provenance"],
        "machine": machine(),
        "seed": seed,
        "chosen": choice["kept_neighbours"],
        "held_out": {k: round(v, 4) for k, v in choice["neighbours"].items()},
        "held_out_catalog": {k: round(v, 4) for k, v in choice["mixed"].items()},
        "by_k": by_k,
    }


def markdown(records: dict[str, dict]) -> str:
    ks = [str(k) for k in NEIGHBOURS]
    ordered = sorted(records.items(), key=lambda kv: int(kv[0]))

    def table(protocol: str, keys: tuple[str, str]) -> list[str]:
        rows = [
            "| seed | chosen k | " + " | ".join(f"k = {k}" for k in ks) + " |",
            "|---|---|" + "---|" * len(ks),
        ]
        for seed, r in ordered:
            cells = []
            for k in ks:
                c = r["by_k"][k][protocol]
                text = f"{c[keys[0]]:.4f} / {c[keys[1]]:.4f}"
                cells.append(f"**{text}**" if int(k) == r["chosen"] else text)
            rows.append(f"| {seed} | {r['chosen']} | " + " | ".join(cells) + " |")
        chosen = [r["by_k"][str(r["chosen"])][protocol] for _, r in ordered]
        means = {k: [r["by_k"][k][protocol] for _, r in ordered] for k in ks}

        def avg(ms: list[dict]) -> str:
            return f"{np.mean([m[keys[0]] for m in ms]):.4f} / {np.mean([m[keys[1]] for m in ms]):.4f}"

        rows.append(f"| mean of {len(ordered)} | **{avg(chosen)}** | " + " | ".join(avg(means[k]) for k in ks) + " |")
        return rows

    held = []
    for seed, r in ordered:
        cells = " | ".join(f"{r['held_out'][k]:.3f} / {r['held_out_catalog'][k]:.3f}" for k in ks)
        held.append(f"| {seed} | {r['chosen']} | {cells} |")
    return "\n".join(
        [
            "# New items placed by feature neighbours vs by their bags alone (ML-1M cold-item protocol)",
            "",
            "Written by `benchmarks/cold_placement.py` on the models `benchmarks/cold_start.py --only items --seed S` "
            "trained (commands and commits below). For each seed the item fit's placement step "
            "(`edgerec.model.cold_fit.place_new_items`) chooses k on its held-out known items; the seed's 371 cold "
            "items are then added by `add_items` with the placement set to each k (0: each new item's feature bags "
            "alone; k > 0: the k nearest known items' representations, similarity-weighted, at their mean length: "
            "edgerec.model.features.new_rows). Bold: the chosen k, what `add_items` uses.",
            "",
            "## Cold among cold: each user who interacted with a cold item ranks all cold items (Recall@10 / NDCG@10)",
            "",
            *table("cold", ("recall@10", "ndcg@10")),
            "",
            "## Cold among the catalog: each test user whose test item is cold, that item among its 99 negatives "
            "(HR@10 / NDCG@10)",
            "",
            *table("catalog", ("hr@10", "ndcg@10")),
            "",
            "## The choice: held-out known items, Recall@10 among themselves / HR@10 among 99 sampled known items",
            "",
            "A k is allowed where the second is no more than "
            f"{MIXED_TOLERANCE} below k = 0's; the allowed k with the best first is kept.",
            "",
            "| seed | chosen k | " + " | ".join(f"k = {k}" for k in ks) + " |",
            "|---|---|" + "---|" * len(ks),
            *held,
            "",
            "Runs: "
            + "; ".join(f"seed {s}: {r['trained_by']}, then {r['provenance']}" for s, r in ordered)
            + f". {ordered[0][1]['machine']}.",
            "",
        ]
    )


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
