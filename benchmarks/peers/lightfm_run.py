"""Trains LightFM (lightfm-next) on one problem written by benchmarks/cold_start.py and scores the pairs it asks
for. Runs in LightFM's own venv (benchmarks/cold_start.py creates it: `pip install lightfm-next==1.19.0`), never in
edgerec's; numpy + scipy + lightfm only.

    <venv>/bin/python benchmarks/peers/lightfm_run.py PROBLEM.npz SCORES.npz

PROBLEM.npz: train_users, train_items (the interactions, dense indices), n_users, n_items; user_* and item_*
(indptr, indices, data, shape: each side's feature matrix, CSR, rows normalised to sum 1 by the writer);
query_users, query_items (the pairs to score); components, epochs, learning_rate, user_alpha, item_alpha, loss,
seed. SCORES.npz: scores [len(query)], fit_seconds. A problem solved before (the same arrays: a digest of every
array's name, dtype, shape and bytes) is answered from benchmarks/runs/cold_start/lightfm-cache/ with the scores
and fit seconds of that run, so that a protocol's LightFM fits can run ahead in another process (a problem being
fitted elsewhere, marked by its .running file, is waited for).
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from lightfm import LightFM

WAIT_S = 3600  # at most this long for another process fitting the same problem
CACHE = Path(__file__).resolve().parents[1] / "runs" / "cold_start" / "lightfm-cache"


def digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def main() -> int:
    problem, out = sys.argv[1], sys.argv[2]
    with np.load(problem) as f:
        p = {k: f[k] for k in f.files}
    cached = CACHE / f"{digest(p)}.npz"
    running = cached.with_suffix(".running")
    waited = time.monotonic()
    while running.exists() and not cached.is_file() and time.monotonic() - waited < WAIT_S:
        time.sleep(10)  # another process is fitting this very problem: its answer is this one's
    if cached.is_file():
        shutil.copyfile(cached, out)
        print(f"lightfm: the same problem was solved before ({cached.name[:12]}): its scores")
        return 0
    n_users, n_items = int(p["n_users"]), int(p["n_items"])
    ones = np.ones(len(p["train_users"]), dtype=np.float32)
    train = sp.coo_matrix((ones, (p["train_users"], p["train_items"])), shape=(n_users, n_items))

    def csr(side: str) -> sp.csr_matrix:
        shape = tuple(int(x) for x in p[f"{side}_shape"])
        return sp.csr_matrix((p[f"{side}_data"], p[f"{side}_indices"], p[f"{side}_indptr"]), shape=shape)

    users, items = csr("user"), csr("item")
    model = LightFM(
        no_components=int(p["components"]),
        learning_rate=float(p["learning_rate"]),
        loss=str(p["loss"]),
        user_alpha=float(p["user_alpha"]),
        item_alpha=float(p["item_alpha"]),
        random_state=np.random.RandomState(int(p["seed"])),
    )
    CACHE.mkdir(parents=True, exist_ok=True)
    running.touch()
    t0 = time.perf_counter()
    model.fit(train, user_features=users, item_features=items, epochs=int(p["epochs"]), num_threads=1)
    fit_seconds = time.perf_counter() - t0
    qu = p["query_users"].astype(np.int32)
    qi = p["query_items"].astype(np.int32)
    scores = model.predict(qu, qi, user_features=users, item_features=items, num_threads=1)
    np.savez(out, scores=scores.astype(np.float64), fit_seconds=fit_seconds)
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp.npz")
    shutil.copyfile(out, tmp)
    tmp.replace(cached)
    running.unlink(missing_ok=True)
    print(f"lightfm: {len(p['train_users'])} interactions, {fit_seconds:.1f} s fit, {len(qu)} pairs scored")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
