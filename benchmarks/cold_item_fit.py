"""The cold-item fit on the cold-item protocol's saved models: the same holdouts, with and without the fit.

    python benchmarks/cold_item_fit.py --seeds 1,2,3       # each seed's checkpoint from cold_start.py --seed S
    python benchmarks/cold_start_seeds.py                  # the table, both columns

`benchmarks/cold_start.py --only items --seed S` keeps the model it trained (before adding the cold items) in
benchmarks/runs/cold_start/cold_start_seedS.cold_items.ckpt. Runs made before `edgerec train` ended with the
cold-item fit (edgerec.model.cold_items) hold the model without it; this script runs on that model exactly what
`train` now runs after its epochs (`fit_cold_items` with `ColdItemFit(epochs=COLD_ITEM_EPOCHS, seed=0)` on the same
training data), then adds the cold items by `add_items` and ranks them as cold_start.py does. It also checks that
every warm test pair scores as before. A run made since trained with the fit already (`fitted_in_training`):
the fit, run again from the same seeded start on the same frozen model, ends with the same bags.
Writes benchmarks/results/cold_item_fit_seedS.json per seed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch

import edgerec
from edgerec.data import load_dataset
from edgerec.io import write_json
from edgerec.metrics import set_recall_ndcg
from edgerec.model.cold_items import ColdItemFit, fit_cold_items
from edgerec.model.config import COLD_ITEM_EPOCHS
from edgerec.model.training import torch_scorer
from edgerec.sysinfo import machine, provenance

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from cold_start import DATA, RUNS, cold_item_truth, model_scorer  # noqa: E402
from features import has_ml1m, warm_split  # noqa: E402


def one_seed(ds: edgerec.Dataset, seed: int, share: float, work: Path) -> dict:
    rng = np.random.default_rng(seed)  # cold_start.py's draw
    cold = np.sort(rng.choice(ds.n_items, size=round(share * ds.n_items), replace=False))
    warm_ds = warm_split(ds, cold)
    ck = edgerec.load_checkpoint(RUNS / f"cold_start_seed{seed}.cold_items.ckpt")
    # a run made since train ends with the fit: fitted again here from the same start, it gives the same bags
    in_training = "cold_items" in ck.report.get("stages", {})
    warm = torch_scorer(ck.model)
    before = warm(warm_ds.test_users, warm_ds.test_items)
    record = fit_cold_items(ck.model, warm_ds, ColdItemFit(epochs=COLD_ITEM_EPOCHS, seed=0))
    gap = float(np.abs(warm(warm_ds.test_users, warm_ds.test_items) - before).max())
    ck.save(work / f"seed{seed}")
    t0 = time.perf_counter()
    rep = edgerec.add_items(work / f"seed{seed}", DATA / "ml-1m.items.tsv", work / f"seed{seed}+added")
    seconds = time.perf_counter() - t0
    grown = edgerec.load_checkpoint(rep.folder)
    judged, relevant = cold_item_truth(ds, cold)
    qu, qi = np.repeat(judged, len(cold)), np.tile(cold, len(judged))
    scores = np.asarray(model_scorer(grown, ds)(qu, qi)).reshape(relevant.shape)
    got = set_recall_ndcg(scores, relevant, 10)
    print(f"seed {seed}: {got} (fit {record['seconds']:.0f} s, epoch {record['kept_epoch']} kept)", flush=True)
    return {
        "provenance": provenance(sys.argv),
        "seed": seed,
        "machine": machine(),
        "cold": got,
        "fit": record,
        "fitted_in_training": in_training,
        "add_items_seconds": round(seconds, 2),
        "warm_test_max_abs_score_change": gap,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--share", type=float, default=0.1)
    args = ap.parse_args()
    torch.set_num_threads(1)
    if not has_ml1m(args.data):
        return 2
    ds = load_dataset(args.data)
    with tempfile.TemporaryDirectory(prefix="edgerec-coldfit-") as work:
        for seed in (int(s) for s in args.seeds.split(",")):
            write_json(HERE / "results" / f"cold_item_fit_seed{seed}.json", one_seed(ds, seed, args.share, Path(work)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
