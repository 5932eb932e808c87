"""The rating objective and the seed's other training options on ML-1M (NCF split), one thread.

    python benchmarks/ratings.py [--data ../shared/data/ml-1m-ncf] [--peer-env benchmarks/runs/peer-env]
                                 [--parts rating,rating-dropout,mf,dropout,adagrad,adagrad-lr0.1,default]

Ratings: the rated rows (the train file's 994,169 and the test file's 6,040) split by
edgerec.data.ratings.split_ratings with the training seed 0: 10 % test, 5 % of the rest validation, the rest
training. On that one split, side by side:
- NeuMF-8 with `objective="rating"` (squared error; `edgerec train --objective rating`'s defaults);
- the global mean (the mean training rating);
- biased matrix factorisation: scikit-surprise's SVD (global mean + user bias + item bias + dot product, SGD) with
  its defaults (100 factors, 20 epochs, lr 0.005, reg 0.02), fitted on the training + validation rows (it does not
  early-stop), run in a separate virtual environment (`--peer-env`, made with
  `python -m venv benchmarks/runs/peer-env && benchmarks/runs/peer-env/bin/pip install 'numpy<2' scikit-surprise`;
  the split goes there as an .npz file and this script runs itself there with `--surprise`).
Implicit objective (the NCF paper's protocol: HR@10 / NDCG@10 of the test item against its 99 negatives):
`edgerec train`'s defaults once with `dropout=0.2` and once with `optimizer="adagrad"`, and the defaults themselves
(`default` in --parts);
`rating-dropout` in --parts: the rating objective with `dropout=0.2`; `adagrad-lr0.1`: Adagrad at lr 0.1.
Each part is kept in benchmarks/runs/ratings/<part>.json as it finishes (a rerun skips it);
writes benchmarks/results/ratings.md (and .json).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data" / "ml-1m-ncf"
RUNS = HERE / "runs" / "ratings"
PARTS = ("rating", "rating-dropout", "mf", "dropout", "adagrad", "adagrad-lr0.1", "default")
IMPLICIT = {
    "dropout": {"dropout": 0.2},
    "adagrad": {"optimizer": "adagrad"},
    "adagrad-lr0.1": {"optimizer": "adagrad", "lr": 0.1},
    "default": {},
}


def surprise_svd(split: Path, out: Path) -> None:
    """Run in the peer environment (numpy + scikit-surprise only): SVD on the split's train + validation rows,
    RMSE / MAE on its test rows."""
    import surprise
    from surprise import SVD, Dataset, Reader

    a = np.load(split)
    fit_rows = [np.concatenate([a[f"train_{k}"], a[f"val_{k}"]]) for k in ("users", "items", "ratings")]
    users, items, ratings = (r.tolist() for r in fit_rows)
    raw = list(zip(users, items, ratings, [None] * len(users), strict=True))
    trainset = Dataset.load_from_folds([], Reader(rating_scale=(1, 5))).construct_trainset(raw)
    algo = SVD(random_state=0)
    t0 = time.perf_counter()
    algo.fit(trainset)
    seconds = time.perf_counter() - t0
    pairs = zip(a["test_users"].tolist(), a["test_items"].tolist(), strict=True)
    pred = np.array([algo.predict(u, i).est for u, i in pairs])
    err = pred - a["test_ratings"]
    result = {
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mae": float(np.mean(np.abs(err))),
        "seconds": seconds,
        "fit_ratings": len(fit_rows[0]),
        "library": f"scikit-surprise {surprise.__version__}, numpy {np.__version__}",
        "params": {"n_factors": algo.n_factors, "n_epochs": algo.n_epochs, "lr_bu": algo.lr_bu, "reg_bu": algo.reg_bu},
    }
    out.write_text(json.dumps(result, indent=1) + "\n")


def run_part(part: str, args: argparse.Namespace) -> dict:
    import torch

    import edgerec
    from edgerec.data import load_dataset
    from edgerec.data.ratings import split_ratings
    from edgerec.model.config import TrainConfig

    torch.set_num_threads(1)
    ds = load_dataset(args.data)
    if part == "mf":
        split = split_ratings(ds, 0)
        npz = RUNS / "split.npz"
        arrays = {f"{name}_{k}": getattr(getattr(split, name), k) for name in ("train", "val", "test")
                  for k in ("users", "items", "ratings")}  # fmt: skip
        np.savez(npz, **arrays)
        out = RUNS / "mf.surprise.json"
        cmd = [str(args.peer_env / "bin" / "python"), str(Path(__file__).resolve()), "--surprise", str(npz), str(out)]
        subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        return json.loads(out.read_text())
    if part.startswith("rating"):
        cfg = TrainConfig(objective="rating", dropout=0.2 if part == "rating-dropout" else 0.0)
    else:
        cfg = TrainConfig(**IMPLICIT[part])
    t0 = time.perf_counter()
    ck = edgerec.train(ds, cfg)
    seconds = time.perf_counter() - t0
    r = ck.report
    stage = next(iter(r["stages"].values()))
    result = {
        "metrics": r["metrics"],
        "seconds": seconds,
        "train_seconds": r["train_seconds"],
        "best_epoch": stage["best_epoch"],
        "epochs": len(stage["history"]),
        "batch_size": r["train_config"]["batch_size"],
        "lr": r["train_config"]["lr"],
    }
    if part.startswith("rating"):
        result["global_mean"] = r["global_mean"]
    return result


def ran_at(out: dict) -> list[str]:
    """Where a part was kept from an earlier run of this script, the command and commit that ran it."""
    earlier = {part: p["provenance"] for part, p in out["parts"].items() if p.get("provenance") != out["provenance"]}
    return [f"- `{part}` kept from: {where}" for part, where in earlier.items()]


def report(out: dict) -> str:
    r, mf, rd = out["parts"].get("rating"), out["parts"].get("mf"), out["parts"].get("rating-dropout")
    lines = [
        "# Ratings as an objective, MLP dropout and Adagrad (ML-1M, NCF split)",
        "",
        f"{out['provenance']}  ",
        f"Machine: {out['machine']}{'' if 'thread' in out['machine'] else ', 1 thread'} (beside other work on the "
        "two cores: seconds are indicative, not comparable between rows).",
        *(["", "Parts kept from earlier runs of this script:", "", *ran_at(out)] if ran_at(out) else []),
        "",
        "## Ratings: RMSE / MAE on the held-out 10 %",
        "",
    ]
    if r:
        m = r["metrics"]
        lines += [
            f"Every rated interaction of the data as loaded (the train file's and the test file's rows, "
            f"{m['train_ratings'] + m['validation_ratings'] + m['test_ratings']:,} in all), split by "
            f"`edgerec.data.ratings.split_ratings` with seed 0: {m['test_ratings']:,} test rows, "
            f"{m['validation_ratings']:,} validation rows (early stopping), {m['train_ratings']:,} training rows. "
            "Every row below is measured on the same test rows.",
            "",
            "| model | RMSE | MAE | seconds | notes |",
            "|---|---|---|---|---|",
            f"| NeuMF-8, `--objective rating` | {m['rmse']:.4f} | {m['mae']:.4f} | {r['train_seconds']:.0f} | "
            f"best epoch {r['best_epoch']} of {r['epochs']}, batch {r['batch_size']}, lr {r['lr']:.2g} |",
        ]
        if rd:
            d = rd["metrics"]
            lines.append(
                f"| NeuMF-8, `--objective rating --dropout 0.2` | {d['rmse']:.4f} | {d['mae']:.4f} | "
                f"{rd['train_seconds']:.0f} | best epoch {rd['best_epoch']} of {rd['epochs']} |"
            )
        if mf:
            lines.append(
                f"| biased MF (scikit-surprise SVD, defaults) | {mf['rmse']:.4f} | {mf['mae']:.4f} | "
                f"{mf['seconds']:.0f} | {mf['params']['n_factors']} factors, {mf['params']['n_epochs']} epochs, "
                f"fitted on the {mf['fit_ratings']:,} training + validation rows; {mf['library']} |"
            )
        g = r["global_mean"]
        lines += [f"| global mean | {g['rmse']:.4f} | {g['mae']:.4f} | | the mean training rating |", ""]
        if mf:
            lines += [
                f"NeuMF-8 minus biased MF: RMSE {m['rmse'] - mf['rmse']:+.4f}, MAE {m['mae'] - mf['mae']:+.4f}. "
                "Published ML-1M references for biased MF / SVD on random 90/10 or 5-fold splits: RMSE about "
                "0.86-0.87, MAE about 0.68 (scikit-surprise's own table: SVD 0.873 / 0.686, 5-fold).",
                "",
                "scikit-surprise was installed with `python -m venv benchmarks/runs/peer-env && "
                "benchmarks/runs/peer-env/bin/pip install 'numpy<2' scikit-surprise` (a manylinux wheel for "
                "Python 3.11) and run there by this script (`--surprise`) on the split written as an .npz file.",
                "",
            ]
    lines += [
        "## Implicit objective: dropout and Adagrad beside the defaults",
        "",
        "The NCF paper's protocol (all 6,040 test users, the test item against its 99 negatives); `edgerec train` "
        "defaults otherwise (NeuMF-8, automatic batch and rate, weight averaging from epoch 8, early stopping on "
        "validation carved from train, seed 0).",
        "",
        "| run | HR@10 | NDCG@10 | seconds | best epoch | notes |",
        "|---|---|---|---|---|---|",
    ]
    names = {
        "default": "defaults (Adam, no dropout)",
        "dropout": "`--dropout 0.2`",
        "adagrad": "`--optimizer adagrad` (the automatic rate)",
        "adagrad-lr0.1": "`--optimizer adagrad --lr 0.1`",
    }
    for part in names:
        p = out["parts"].get(part)
        if p:
            m = p["metrics"]
            lines.append(
                f"| {names[part]} | {m['hr@10']:.4f} | {m['ndcg@10']:.4f} | {p['train_seconds']:.0f} | "
                f"{p['best_epoch']} of {p['epochs']} | batch {p['batch_size']}, lr {p['lr']:.2g} |"
            )
    base = out["parts"].get("default")
    if base:
        lines.append("")
        for part in names:
            p = out["parts"].get(part)
            if part == "default" or not p:
                continue
            d, m = p["metrics"], base["metrics"]
            capped = " (still improving at the `--epochs` cap)" if p["best_epoch"] == p["epochs"] else ""
            lines.append(
                f"- {names[part]} minus the defaults: HR@10 {d['hr@10'] - m['hr@10']:+.4f}, NDCG@10 "
                f"{d['ndcg@10'] - m['ndcg@10']:+.4f}; best epoch {p['best_epoch']} of {p['epochs']}{capped}."
            )
    if "default" not in out["parts"]:
        lines.append(
            "| defaults (Adam, no dropout), not rerun here | 0.6884 | 0.4118 | 122 | 20 | "
            "benchmarks/results/features.md, ids-only row (same code path, seed and machine) |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    if sys.argv[1:2] == ["--surprise"]:
        surprise_svd(Path(sys.argv[2]), Path(sys.argv[3]))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--peer-env", type=Path, default=HERE / "runs" / "peer-env")
    ap.add_argument("--parts", default="rating,mf,dropout,adagrad")
    args = ap.parse_args()
    from edgerec.sysinfo import machine, provenance

    RUNS.mkdir(parents=True, exist_ok=True)
    out: dict = {"provenance": provenance(sys.argv), "parts": {}}
    for part in args.parts.split(","):
        if part not in PARTS:
            raise SystemExit(f"unknown part {part!r}; parts: {', '.join(PARTS)}")
        cached = RUNS / f"{part}.json"
        if not cached.exists():
            result = {**run_part(part, args), "provenance": out["provenance"]}
            cached.write_text(json.dumps(result, indent=1) + "\n")
        out["parts"][part] = json.loads(cached.read_text())
        print(part, json.dumps(out["parts"][part]), flush=True)
    out["machine"] = machine()
    results = HERE / "results" / "ratings.md"
    results.with_suffix(".json").write_text(json.dumps(out, indent=1) + "\n")
    results.write_text(report(out))


if __name__ == "__main__":
    main()
