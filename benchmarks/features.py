"""User and item features in NeuMF-8's input layer on ML-1M (the NCF protocol): warm quality, and items never seen.

    python benchmarks/features.py [--data ../shared/data/ml-1m-ncf] [--cold-share 0.1] [--seed 0]

Three trainings with `edgerec train`'s defaults (NeuMF-8, one thread):
1. ids only; 2. ids + user features (ml-1m.users.tsv) + item features (ml-1m.items.tsv), kinds inferred;
3. as 2, but a seeded `--cold-share` of the items is held out of training entirely (their interactions removed, not
   even sampled as negatives); afterwards they are added to the model by their features alone
   (edgerec.model.features.add_ids, encoded with the training encoder) and the test users whose test item is cold
   are ranked against their 99 negatives (cold negatives scored the same way), beside ItemPop (training counts: a
   cold item has none) and chance.
Model 2 is also scored with every item's id embedding zeroed (its item feature path alone) on all test users.
Writes benchmarks/results/features.md (and .json).
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

import edgerec
from edgerec.data import Dataset, Interactions, load_dataset
from edgerec.data.features import FeatureTable, join, read_features
from edgerec.metrics import hr_ndcg, item_pop_scorer, sampled_ranks
from edgerec.model.config import FeaturesConfig, TrainConfig
from edgerec.model.features import FeatureNCF, add_ids
from edgerec.model.training import torch_scorer
from edgerec.sysinfo import machine, provenance

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data" / "ml-1m-ncf"


def metrics(scorer, ds: Dataset, rows: np.ndarray | None = None) -> dict[str, float]:
    if rows is not None:
        ds = Dataset(ds.name, ds.train, ds.test_users[rows], ds.test_items[rows], ds.test_negatives[rows])
    hr, ndcg = hr_ndcg(sampled_ranks(scorer, ds), 10)
    return {"hr@10": hr, "ndcg@10": ndcg, "users": len(ds.test_users)}


def warm_split(ds: Dataset, cold: np.ndarray) -> Dataset:
    """ds without the cold items: their interactions removed and the item ids renumbered over the warm ones. Its
    own test set (what train() reports) keeps the warm test rows, cold negatives replaced by a warm one of the row."""
    warm_items = np.setdiff1d(np.arange(ds.n_items), cold)
    new_index = np.full(ds.n_items, -1)
    new_index[warm_items] = np.arange(len(warm_items))
    t = ds.train
    keep = new_index[t.items] >= 0
    train = Interactions(t.users[keep], new_index[t.items[keep]], t.user_ids, t.item_ids[warm_items],
                         None, None if t.ratings is None else t.ratings[keep])  # fmt: skip
    rows = new_index[ds.test_items] >= 0
    negs = new_index[ds.test_negatives[rows]]
    first_warm = np.take_along_axis(negs, np.argmax(negs >= 0, axis=1)[:, None], axis=1)
    negs = np.where(negs >= 0, negs, first_warm)
    return Dataset(f"{ds.name}-warm", train, ds.test_users[rows], new_index[ds.test_items[rows]], negs)


def has_ml1m(data: Path) -> bool:
    """Whether `data` holds the ML-1M NCF split (said on stderr when it does not)."""
    if (data / "ml-1m.test.negative").is_file():
        return True
    print(f"{data}: the ML-1M NCF split is not there", file=sys.stderr)
    return False


def timed_train(out: dict, name: str, d: Dataset, cfg: TrainConfig) -> edgerec.Checkpoint:
    """edgerec.train on d, its metrics, seconds, best epoch (and feature report) recorded in out[name]."""
    t0 = time.perf_counter()
    ck = edgerec.train(d, cfg)
    seconds = time.perf_counter() - t0
    out[name] = {"metrics": ck.metrics, "seconds": round(seconds, 1), "best_epoch": _best_epoch(ck.report)}
    if "features" in ck.report:
        out[name]["features"] = ck.report["features"]
    for side in ("item", "user"):  # the cold fits that train ends with (edgerec.model.cold_fit)
        if (fit := ck.report["stages"].get(f"cold_{side}s")) is not None:
            out[name][f"cold_{side}_fit"] = {k: v for k, v in fit.items() if k != "settings"}
    print(name, json.dumps(out[name]["metrics"]), f"{seconds:.0f}s", flush=True)
    return ck


def cold_items(ds: Dataset, share: float, seed: int) -> np.ndarray:
    """The seeded `share` of the items held out of training (sorted dense indices)."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(ds.n_items, size=round(share * ds.n_items), replace=False))


def with_cold_items(
    model: FeatureNCF, ds: Dataset, cold: np.ndarray, table: FeatureTable
) -> tuple[FeatureNCF, np.ndarray]:
    """`model`, trained on warm_split(ds, cold), with the cold items added by their features alone (add_ids, encoded
    with the training encoder), and [ds.n_items] each original dense item index's position in it (the warm items
    first, then the cold ones in order)."""
    encoder = model.features.encoders["item"]
    grown = add_ids(model, "item", encoder.encode_ids(table, ds.train.item_ids[cold]))
    position = np.empty(ds.n_items, dtype=np.int64)
    warm_items = np.setdiff1d(np.arange(ds.n_items), cold)
    position[warm_items] = np.arange(len(warm_items))
    position[cold] = len(warm_items) + np.arange(len(cold))
    return grown, position


def popularity(ds: Dataset, table: FeatureTable, cold: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[n_items] training counts without the cold items (ItemPop: a cold item has none), and the same with each
    cold item given the mean count of the warm items of its genres (a baseline that reads the features too)."""
    counts = np.bincount(ds.train.items[~np.isin(ds.train.items, cold)], minlength=ds.n_items).astype(np.float64)
    rows = join(table, ds.train.item_ids)
    genres = [set(str(table.columns["genres"][r] or "").split("|")) for r in rows]
    per_genre: dict[str, list[float]] = {}
    for k in np.setdiff1d(np.arange(ds.n_items), cold):
        for g in genres[k]:
            per_genre.setdefault(g, []).append(counts[k])
    means = {g: float(np.mean(v)) for g, v in per_genre.items()}
    genre_pop = counts.copy()
    for k in cold:
        genre_pop[k] = float(np.mean([means.get(g, counts.mean()) for g in genres[k]]))
    return counts, genre_pop


SEE_ALSO = "[cold_start.md](cold_start.md) (`benchmarks/cold_start.py`)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--cold-share", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--id-dropout", type=float, default=FeaturesConfig(item="x").id_dropout)
    ap.add_argument("--item-id-dropout", type=float, default=None, help="the items' own (default: --id-dropout)")
    ap.add_argument("--feature-loss", type=float, default=FeaturesConfig(item="x").feature_loss)
    ap.add_argument("--epochs", type=int, default=TrainConfig().epochs, help="at most (a quick check: 1)")
    ap.add_argument("--results", default=str(HERE / "results" / "features.md"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    data = Path(args.data)
    if not has_ml1m(data):
        return 2
    users_tsv, items_tsv = data / "ml-1m.users.tsv", data / "ml-1m.items.tsv"
    features = FeaturesConfig(
        user=str(users_tsv),
        item=str(items_tsv),
        id_dropout=args.id_dropout,
        feature_loss=args.feature_loss,
        item_id_dropout=args.item_id_dropout,
    )
    base = TrainConfig(epochs=args.epochs)
    ds = load_dataset(data)
    out: dict = {"machine": machine(), "provenance": provenance(sys.argv)}

    def train(name: str, d: Dataset, cfg: TrainConfig) -> edgerec.Checkpoint:
        return timed_train(out, name, d, cfg)

    train("ids", ds, base)
    feat = train("features", ds, replace(base, features=features))
    out["itempop"] = metrics(item_pop_scorer(ds), ds)

    # model 2 with every item id row zeroed: its item feature path alone
    model = feat.model
    assert isinstance(model, FeatureNCF)
    zeroed = type(model)(model.arch, model.features)
    zeroed.load_state_dict(model.state_dict())
    with torch.no_grad():
        for name, table in zeroed.tables().items():
            if name.endswith("_item"):
                table.weight.zero_()
    out["features_item_path_only"] = metrics(torch_scorer(zeroed.eval()), ds)

    # cold items: held out of training, added by their features alone
    cold = cold_items(ds, args.cold_share, args.seed)
    warm_ds = warm_split(ds, cold)
    cold_ck = train("cold_split_features", warm_ds, replace(base, features=features))
    cold_model = cold_ck.model
    assert isinstance(cold_model, FeatureNCF)
    table = read_features(items_tsv, "item", features.item_table)
    grown, position = with_cold_items(cold_model, ds, cold, table)
    score = torch_scorer(grown)

    def scorer(u: np.ndarray, i: np.ndarray) -> np.ndarray:
        return score(u, position[i])

    counts, genre_pop = popularity(ds, table, cold)

    cold_rows = np.flatnonzero(np.isin(ds.test_items, cold))
    warm_rows = np.flatnonzero(~np.isin(ds.test_items, cold))
    out["cold"] = {
        "cold_items": len(cold),
        "features": metrics(scorer, ds, cold_rows),
        "itempop": metrics(lambda u, i: counts[i], ds, cold_rows),
        "genre_pop": metrics(lambda u, i: genre_pop[i], ds, cold_rows),
        "chance_hr@10": 0.1,
        "warm_rows_features": metrics(scorer, ds, warm_rows),
    }
    print("cold", json.dumps(out["cold"]), flush=True)
    results = Path(args.results)
    results.with_suffix(".json").write_text(json.dumps(out, indent=1) + "\n")
    results.write_text(report(out, args))
    print(f"wrote {results}")
    return 0


def _best_epoch(report: dict) -> int:
    return int(next(iter(report["stages"].values()))["best_epoch"])


def report(out: dict, args: argparse.Namespace) -> str:
    ids, feat = out["ids"]["metrics"], out["features"]["metrics"]
    cold = out["cold"]

    def row(name: str, m: dict, extra: str = "") -> str:
        return f"| {name} | {m['hr@10']:.4f} | {m['ndcg@10']:.4f} | {extra} |"

    lines = [
        "# User and item features in NeuMF-8's input layer (ML-1M, NCF protocol)",
        "",
        f"{out['provenance']}  ",
        f"Machine: {out['machine']}. `edgerec train` defaults (NeuMF-8, automatic batch and rate, weight "
        f"averaging, early stopping on validation carved from train); features: ml-1m.users.tsv (gender, age, "
        f"occupation, zip) and ml-1m.items.tsv (title, year, genres; movie_id ignored), kinds inferred, id dropout "
        f"{args.id_dropout}.",
        "",
        "## Warm: all 6,040 test users, test item vs its 99 negatives",
        "",
        "| model | HR@10 | NDCG@10 | notes |",
        "|---|---|---|---|",
        row("NeuMF-8, ids only", ids, f"{out['ids']['seconds']:.0f} s, best epoch {out['ids']['best_epoch']}"),
        row(
            "NeuMF-8, ids + user and item features",
            feat,
            f"{out['features']['seconds']:.0f} s, best epoch {out['features']['best_epoch']}",
        ),
        row("the same, every item id row zeroed (item feature path alone)", out["features_item_path_only"]),
        row("ItemPop", out["itempop"]),
        "",
        f"Features minus ids only: HR@10 {feat['hr@10'] - ids['hr@10']:+.4f}, NDCG@10 "
        f"{feat['ndcg@10'] - ids['ndcg@10']:+.4f} (goal: no lower than -0.005). Full-ranking (unseen items): ids "
        f"{ids['full_hr@10']:.4f} / {ids['full_ndcg@10']:.4f}, features {feat['full_hr@10']:.4f} / "
        f"{feat['full_ndcg@10']:.4f}.",
        "",
        f"## Cold items: {cold['cold_items']} items ({args.cold_share:.0%}, seed {args.seed}) held out of training",
        "",
        "Their interactions are removed from training (they are not even sampled as negatives); the feature model is "
        "trained on the rest, then the held-out items are added by their features alone (id rows zero, encoded with "
        "the training encoder). Test users whose test item is cold, ranked against their 99 original negatives.",
        "",
        "| scorer | HR@10 | NDCG@10 | test users |",
        "|---|---|---|---|",
        f"| feature path (NeuMF-8 + features) | {cold['features']['hr@10']:.4f} | {cold['features']['ndcg@10']:.4f} "
        f"| {cold['features']['users']} |",
        f"| ItemPop (training counts: a cold item has none) | {cold['itempop']['hr@10']:.4f} | "
        f"{cold['itempop']['ndcg@10']:.4f} | {cold['itempop']['users']} |",
        f"| genre popularity (a cold item: the mean training count of the warm items of its genres) | "
        f"{cold['genre_pop']['hr@10']:.4f} | {cold['genre_pop']['ndcg@10']:.4f} | {cold['genre_pop']['users']} |",
        f"| chance | {cold['chance_hr@10']:.4f} | | |",
        "",
        f"The same model on the test users whose test item is warm: HR@10 {cold['warm_rows_features']['hr@10']:.4f} / "
        f"NDCG@10 {cold['warm_rows_features']['ndcg@10']:.4f} ({cold['warm_rows_features']['users']} users).",
        "",
        "Issue 34's protocols (cold items ranked among all cold items, cold users added by their features, warm), "
        f"each beside LightFM: {SEE_ALSO}.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
