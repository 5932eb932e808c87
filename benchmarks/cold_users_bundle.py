"""Cold users in the phone bundle (ML-1M, NeuMF-8 with user and item features).

    python benchmarks/cold_users_bundle.py [--data ../shared/data/ml-1m-ncf] [--share 0.1] [--seed 0]

A seeded `--share` of the users is new: their training rows are removed and the model never sees their ids (the
training data's user id map holds the other users only, so the encoder is fitted on those users' feature rows too).
NeuMF-8 with ml-1m.users.tsv + ml-1m.items.tsv features is trained on the rest with `edgerec train`'s defaults (one
thread) and exported as an int8 phone bundle with the on-device functions (`explain`). For the new users:
(a) no history: their vectors from the bundle's `user_features` signature (raw attributes encoded with the bundle's
    own user_encoder.json), their test item ranked against its 99 negatives (the bundle's `score`), beside ItemPop
    (the training counts) and chance;
(b) 1, 3, 5 of their training items (seeded): the bundle's `fold_in` (today's seeded start) vs `fold_in_from` (from
    the `user_features` vectors), HR@10 / NDCG@10 the same way, and the parity of both with the numpy reference
    (edgerec.runtime.foldin.fold_in_fixed) on the same bundle's item side.
Writes benchmarks/results/cold_users_bundle.md (and .json).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch

import edgerec
from edgerec.data import Dataset, Interactions, load_dataset
from edgerec.model.config import FeaturesConfig, TrainConfig

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data" / "ml-1m-ncf"
HISTORIES = (1, 3, 5)


def warm_users(ds: Dataset, cold: np.ndarray) -> Dataset:
    """ds without the cold users: their training rows removed and the user ids renumbered over the warm ones (the
    model and its user encoder never see them); its test set keeps the warm users' rows."""
    warm = np.setdiff1d(np.arange(ds.n_users), cold)
    new_index = np.full(ds.n_users, -1)
    new_index[warm] = np.arange(len(warm))
    t = ds.train
    keep = new_index[t.users] >= 0
    train = Interactions(new_index[t.users[keep]], t.items[keep], t.user_ids[warm], t.item_ids,
                         None, None if t.ratings is None else t.ratings[keep])  # fmt: skip
    rows = new_index[ds.test_users] >= 0
    return Dataset(f"{ds.name}-warm-users", train, new_index[ds.test_users[rows]], ds.test_items[rows],
                   ds.test_negatives[rows])  # fmt: skip


def rank_of(scores: np.ndarray) -> int:
    """The test item's rank (0 = first) among itself (scores[0]) and its negatives, ties counted against it."""
    return int((scores[1:] >= scores[0]).sum())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--share", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=TrainConfig().epochs, help="at most (a quick check: 1)")
    ap.add_argument("--work", default=str(HERE / "runs" / "cold-users-bundle"))
    ap.add_argument("--train-only", action="store_true", help="train (or reuse) the model and stop")
    ap.add_argument("--results", default=str(HERE / "results" / "cold_users_bundle.md"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    data, work = Path(args.data), Path(args.work)
    users_tsv, items_tsv = data / "ml-1m.users.tsv", data / "ml-1m.items.tsv"
    ds = load_dataset(data)
    rng = np.random.default_rng(args.seed)
    cold = np.sort(rng.choice(ds.n_users, size=round(args.share * ds.n_users), replace=False))
    warm_ds = warm_users(ds, cold)
    features = FeaturesConfig(user=str(users_tsv), item=str(items_tsv))
    ck_dir = work / "model"
    if (ck_dir / "model.safetensors").is_file():
        ck = edgerec.load(ck_dir)
    else:
        t0 = time.perf_counter()
        ck = edgerec.train(warm_ds, TrainConfig(epochs=args.epochs, features=features))
        ck.report["train_seconds"] = time.perf_counter() - t0
        ck.save(ck_dir)
    print("trained", json.dumps(ck.metrics), flush=True)
    if args.train_only:
        return 0
    return evaluate(args, ds, warm_ds, cold, ck, work, users_tsv)


def evaluate(args, ds, warm_ds, cold, ck, work, users_tsv) -> int:  # filled in below
    raise NotImplementedError


if __name__ == "__main__":
    sys.exit(main())
