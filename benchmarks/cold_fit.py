"""The cold fits on the cold-start protocols' saved models: the same holdouts, with and without the fit.

    python benchmarks/cold_fit.py --side item --seeds 1,2,3   # models of cold_start.py --only items --seed S
    python benchmarks/cold_fit.py --side user --seeds 0,1,2   # models of cold_start.py --only users --seed S
    python benchmarks/cold_start_seeds.py                     # the tables

`benchmarks/cold_start.py --seed S --results R` keeps the model each protocol trained (before the cold ids are added)
in benchmarks/runs/cold_start/R.cold_items.ckpt and R.cold_users.ckpt. This script runs on that model exactly what
`train` runs after its epochs for that side (`fit_cold` with `ColdFit(side, epochs=COLD_*_EPOCHS, seed=0)` on the
same training data), then adds the cold ids by `add_items` / `add_users` and measures them as cold_start.py does
(items: each user who interacted with a cold item ranks all cold items, Recall@10 / NDCG@10; users: each cold user's
test item among its 99 negatives, HR@10 / NDCG@10). It also checks that every warm test pair scores as before. A run
that trained with the fit already (`fitted_in_training`) gives the same bags: the fit, run again from the same seeded
start on the same frozen model, ends where it did.
Writes benchmarks/results/cold_item_fit_seedS.json / cold_user_fit_seedS.json per seed.
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
from edgerec.data import Dataset, load_dataset
from edgerec.io import write_json
from edgerec.metrics import set_recall_ndcg
from edgerec.model.cold_fit import ColdFit, fit_cold
from edgerec.model.config import COLD_ITEM_EPOCHS, COLD_USER_EPOCHS
from edgerec.model.training import torch_scorer
from edgerec.sysinfo import machine, provenance

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from cold_start import DATA, RUNS, cold_item_truth, model_scorer, without_users  # noqa: E402
from features import has_ml1m, metrics, warm_split  # noqa: E402

EPOCHS = {"item": COLD_ITEM_EPOCHS, "user": COLD_USER_EPOCHS}


def cold_ids(ds: Dataset, side: str, seed: int, share: float) -> np.ndarray:
    """cold_start.py's draw of the cold items / users of a seed."""
    if side == "item":
        return np.sort(np.random.default_rng(seed).choice(ds.n_items, size=round(share * ds.n_items), replace=False))
    return np.sort(np.random.default_rng([seed, 1]).choice(ds.n_users, size=round(share * ds.n_users), replace=False))


def measured(ds: Dataset, side: str, cold: np.ndarray, grown: edgerec.Checkpoint) -> dict:
    """The cold ids of the grown checkpoint measured by cold_start.py's protocol for the side."""
    if side == "user":
        return metrics(model_scorer(grown, ds), ds, np.flatnonzero(np.isin(ds.test_users, cold)))
    judged, relevant = cold_item_truth(ds, cold)
    qu, qi = np.repeat(judged, len(cold)), np.tile(cold, len(judged))
    return set_recall_ndcg(np.asarray(model_scorer(grown, ds)(qu, qi)).reshape(relevant.shape), relevant, 10)


def one_seed(ds: Dataset, side: str, seed: int, share: float, results: str, work: Path) -> dict:
    cold = cold_ids(ds, side, seed, share)
    warm_ds = warm_split(ds, cold) if side == "item" else without_users(ds, cold)
    ck = edgerec.load_checkpoint(RUNS / f"{results.format(seed=seed)}.cold_{side}s.ckpt")
    in_training = f"cold_{side}s" in ck.report.get("stages", {})
    add = edgerec.add_items if side == "item" else edgerec.add_users
    table = DATA / f"ml-1m.{side}s.tsv"
    warm = torch_scorer(ck.model)
    before = warm(warm_ds.test_users, warm_ds.test_items)
    out = {}
    if not in_training:  # the model as trained, then the fit
        ck.save(work / f"seed{seed}")
        out["trained"] = measured(
            ds, side, cold, edgerec.load_checkpoint(add(work / f"seed{seed}", table, work / "a").folder)
        )
    record = fit_cold(ck.model, warm_ds, ColdFit(side, epochs=EPOCHS[side], seed=0))  # type: ignore[arg-type]
    gap = float(np.abs(warm(warm_ds.test_users, warm_ds.test_items) - before).max())
    ck.save(work / f"seed{seed}-fit")
    t0 = time.perf_counter()
    rep = add(work / f"seed{seed}-fit", table, work / f"seed{seed}-fit+added")
    seconds = time.perf_counter() - t0
    got = measured(ds, side, cold, edgerec.load_checkpoint(rep.folder))
    print(f"{side} seed {seed}: trained {out.get('trained')}, fit {got} (fit {record['seconds']:.0f} s, "
          f"epoch {record['kept_epoch']} kept)", flush=True)  # fmt: skip
    return {
        "provenance": provenance(sys.argv),
        "side": side,
        "seed": seed,
        "machine": machine(),
        **out,
        "cold": got,
        "fit": record,
        "fitted_in_training": in_training,
        "add_seconds": round(seconds, 2),
        "warm_test_max_abs_score_change": gap,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--side", choices=("item", "user"), default="item")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--share", type=float, default=0.1)
    ap.add_argument("--results", default="cold_start_seed{seed}", help="the cold_start.py --results stem of each seed")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if not has_ml1m(args.data):
        return 2
    ds = load_dataset(args.data)
    with tempfile.TemporaryDirectory(prefix="edgerec-coldfit-") as work:
        for seed in (int(s) for s in args.seeds.split(",")):
            one = one_seed(ds, args.side, seed, args.share, args.results, Path(work))
            write_json(HERE / "results" / f"cold_{args.side}_fit_seed{seed}.json", one)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
