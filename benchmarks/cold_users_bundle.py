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
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from collections import Counter

import numpy as np
import torch

import edgerec
from edgerec.data import Dataset, load_dataset
from edgerec.data.features import join, read_features
from edgerec.exporters.config import ExportConfig
from edgerec.metrics import hr_ndcg
from edgerec.model.config import FeaturesConfig, TrainConfig
from edgerec.runtime import load_bundle
from edgerec.runtime.config import FoldInConfig
from edgerec.runtime.foldin import ItemSide, fold_in_fixed
from edgerec.sysinfo import machine, provenance

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from cold_start import without_users  # noqa: E402  (the cold-user protocol's holdout)

DATA = HERE.parents[1] / "shared" / "data" / "ml-1m-ncf"
HISTORIES = (1, 3, 5)
PULLS = (0.0, 0.03, 0.1, 0.3, 1.0)


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
    ap.add_argument("--reference-users", type=int, default=150, help="new users also folded in by the numpy reference")
    ap.add_argument("--results", default=str(HERE / "results" / "cold_users_bundle.md"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    data, work = Path(args.data), Path(args.work)
    users_tsv, items_tsv = data / "ml-1m.users.tsv", data / "ml-1m.items.tsv"
    ds = load_dataset(data)
    rng = np.random.default_rng(args.seed)
    cold = np.sort(rng.choice(ds.n_users, size=round(args.share * ds.n_users), replace=False))
    warm_ds = without_users(ds, cold)
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


Vectors = tuple[np.ndarray, np.ndarray]


def ranks(score, vectors: dict[int, Vectors], ds: Dataset, rows: np.ndarray) -> np.ndarray:
    """[rows] the rank of each row's test item among its 99 negatives (metrics.sampled_ranks' rule), its user's
    vectors scored by score(user_gmf, user_mlp, items)."""
    out = []
    for r in rows:
        pos, neg = int(ds.test_items[r]), ds.test_negatives[r]
        s = np.asarray(score(*vectors[int(ds.test_users[r])], np.concatenate([[pos], neg])), dtype=np.float64)
        out.append(int(((s[1:] >= s[0]) & (neg != pos)).sum()))
    return np.asarray(out)


def metrics(r: np.ndarray) -> dict[str, float]:
    hr, ndcg = hr_ndcg(r, 10)
    return {"hr@10": hr, "ndcg@10": ndcg}


def p50_ms(seconds: list[float]) -> float:
    return float(np.median(seconds) * 1e3)


def evaluate(
    args: argparse.Namespace, ds: Dataset, warm_ds: Dataset, cold: np.ndarray, ck: edgerec.Checkpoint, work: Path,
    users_tsv: Path,
) -> int:  # fmt: skip
    out: dict = {"machine": machine(), "provenance": provenance(sys.argv), "cold_users": len(cold)}
    out["train"] = {"metrics": ck.metrics, "seconds": ck.report.get("train_seconds")}
    folder = work / "bundle-int8"
    if not (folder / "manifest.json").is_file():
        cfg = ExportConfig(target="tflite-bundle", precision="int8", options={"candidates": 100, "explain": True})
        t0 = time.perf_counter()
        edgerec.export(ck, cfg, warm_ds, out=folder)
        out["export_seconds"] = time.perf_counter() - t0
    b = load_bundle(folder, threads=1)
    manifest = b.manifest
    out["bundle"] = {
        "bytes": int(manifest["files"][manifest["model_file"]]["bytes"]),
        "verification": manifest["metrics"],
        "user_features": manifest["user_features"],
        "user_tables": [r for r in manifest["quantization"]["item_constants"] if r["shape"][0] == b.user_encoder.size],
    }
    print("bundle", json.dumps(out["bundle"]), flush=True)
    table = read_features(users_tsv, "user")
    table_rows = join(table, ds.train.user_ids[cold])
    rows = np.flatnonzero(np.isin(ds.test_users, cold))  # the cold users' test rows (one each)

    # (a) no history: the bundle's user_features on the raw attributes
    reference = ck.feature_path("user")
    assert reference is not None
    features: dict[int, Vectors] = {}
    unknown, seconds, diffs = Counter(), [], []
    for u, r in zip(cold, table_rows, strict=True):
        attributes = {name: values[r] for name, values in table.columns.items()} if r >= 0 else {}
        indices, weights, counts = b.encode_user(attributes)
        unknown.update(counts)
        t0 = time.perf_counter()
        features[int(u)] = b.user_features(indices, weights)
        seconds.append(time.perf_counter() - t0)
        enc = b.user_encoder.encode_attributes(attributes)[0]
        ref = np.concatenate([v[0] for v in reference.vectors(enc)])
        diffs.append(np.abs(np.concatenate(features[int(u)]) - ref).max() / max(np.abs(ref).max(), 1e-12))
    counts = np.bincount(warm_ds.train.items, minlength=ds.n_items).astype(np.float64)
    out["no_history"] = {
        "user_features": metrics(ranks(b.score_items, features, ds, rows)),
        "itempop": metrics(ranks(lambda g, m, items: counts[items], features, ds, rows)),
        "chance_hr@10": 0.1,
        "values": dict(unknown),
        "user_features_p50_ms": p50_ms(seconds),
        "int8_vs_fp32_max_rel_error": float(np.max(diffs)),
    }
    print("no history", json.dumps(out["no_history"]), flush=True)

    # (b) a few interactions: fold_in (seeded start) vs fold_in_from (the feature vectors), and the numpy reference
    fi = dict(manifest["fold_in"])
    negatives = np.asarray(fi.pop("negative_items"))
    cfg = FoldInConfig(**fi)
    out["fold_in_cfg"] = fi
    side = ItemSide.from_checkpoint(ck.path)
    rng = np.random.default_rng(args.seed)
    histories: dict[int, dict[int, np.ndarray]] = {}
    for n in HISTORIES:
        histories[n] = {}
        plain, start, ref_plain, ref_start = {}, {}, {}, {}
        t_plain, t_start = [], []
        for u in cold:
            mine = ds.train.items[ds.train.users == u]
            history = histories[n][int(u)] = rng.choice(mine, min(n, len(mine)), replace=False)
            t0 = time.perf_counter()
            plain[int(u)] = b.fold_in(history)
            t1 = time.perf_counter()
            start[int(u)] = b.fold_in(history, start=features[int(u)])
            t_start.append(time.perf_counter() - t1)
            t_plain.append(t1 - t0)
            if len(ref_plain) < args.reference_users:
                ref_plain[int(u)] = fold_in_fixed(side, history, negatives, cfg)
                ref_start[int(u)] = fold_in_fixed(side, history, negatives, cfg, start=features[int(u)])

        def gap(a: dict[int, Vectors], r: dict[int, Vectors]) -> float:
            return float(max(np.abs(np.concatenate(a[u]) - np.concatenate(r[u])).max() for u in r))

        ref_rows = rows[np.isin(ds.test_users[rows], list(ref_plain))]

        def agreement(a: dict[int, Vectors], r: dict[int, Vectors]) -> float:
            """Mean share of the bundle's catalog top-10 (its recommend) in the reference's (numpy, float32 model)."""
            everything = np.arange(ds.n_items)
            shared = []
            for u in r:
                mine = set(b.recommend(*a[u])[0].tolist())
                ref = numpy_score(*r[u], everything)
                shared.append(len(mine & set(np.argsort(-ref, kind="stable")[:10].tolist())) / 10)
            return float(np.mean(shared))

        def numpy_score(g: np.ndarray, m: np.ndarray, items: np.ndarray) -> np.ndarray:
            return side.logits(g.astype(np.float64), m.astype(np.float64), items)[0]

        out[f"history_{n}"] = {
            "fold_in": metrics(ranks(b.score_items, plain, ds, rows)),
            "fold_in_from": metrics(ranks(b.score_items, start, ds, rows)),
            "reference_users": len(ref_plain),
            "reference_fold_in": metrics(ranks(numpy_score, ref_plain, ds, ref_rows)),
            "reference_fold_in_from": metrics(ranks(numpy_score, ref_start, ds, ref_rows)),
            "bundle_on_reference_users": {
                "fold_in": metrics(ranks(b.score_items, plain, ds, ref_rows)),
                "fold_in_from": metrics(ranks(b.score_items, start, ds, ref_rows)),
            },
            "max_abs_gap_fold_in": gap(plain, ref_plain),
            "max_abs_gap_fold_in_from": gap(start, ref_start),
            "top10_agreement_fold_in": agreement(plain, ref_plain),
            "top10_agreement_fold_in_from": agreement(start, ref_start),
            "fold_in_p50_ms": p50_ms(t_plain),
            "fold_in_from_p50_ms": p50_ms(t_start),
        }
        print(f"history {n}", json.dumps(out[f"history_{n}"]), flush=True)

    # (c) numpy only, every new user: the reference fold-in from the feature vectors at several pulls toward them
    for n in HISTORIES:
        row: dict = {}
        for name, pull in (("seeded", None), *((f"pull {x:g}", x) for x in PULLS)):
            vectors = {}
            for u in cold:
                start = None if pull is None else features[int(u)]
                fit = replace(cfg, pull=pull or 0.0)
                vectors[int(u)] = fold_in_fixed(side, histories[n][int(u)], negatives, fit, start=start)
            row[name] = metrics(ranks(numpy_score, vectors, ds, rows))
        out[f"pull_{n}"] = row
        print(f"pull {n}", json.dumps(row), flush=True)
    results = Path(args.results)
    results.with_suffix(".json").write_text(json.dumps(out, indent=1) + "\n")
    results.write_text(report(out, args))
    print(f"wrote {results}")
    return 0


def report(out: dict, args: argparse.Namespace) -> str:
    def row(name: str, m: dict, extra: str = "") -> str:
        return f"| {name} | {m['hr@10']:.4f} | {m['ndcg@10']:.4f} | {extra} |"

    a, bundle = out["no_history"], out["bundle"]
    minutes, trained = (out["train"]["seconds"] or float("nan")) / 60, out["train"]["metrics"]
    tables = ", ".join(f"{r['shape']} {r['bytes_float32']:,} -> {r['bytes']:,} bytes" for r in bundle["user_tables"])
    lines = [
        "# Cold users in the phone bundle (ML-1M, NeuMF-8 with user and item features, int8 bundle)",
        "",
        f"{out['provenance']}  ",
        f"Machine: {out['machine']}. {out['cold_users']} users ({args.share:.0%}, seed {args.seed}) are "
        "new: their training rows are removed and the model (and its user encoder) never sees their ids. NeuMF-8 "
        "with ml-1m.users.tsv (gender, age, occupation, zip) and ml-1m.items.tsv features, `edgerec train`'s "
        f"defaults ({minutes:.0f} min): HR@10 {trained['hr@10']:.4f} / NDCG@10 {trained['ndcg@10']:.4f} "
        "on the other users' test rows. Exported as an int8 bundle with `--explain --candidates 100` "
        f"({bundle['bytes']:,} bytes; its user feature bags {tables}: int8, one scale per column). Each new user's "
        "test item is ranked against its 99 negatives by the bundle's `score`.",
        "",
        "## No history: the bundle's `user_features` on the raw attributes",
        "",
        "| user vectors | HR@10 | NDCG@10 | notes |",
        "|---|---|---|---|",
        row(
            "`user_features` (attributes encoded with the bundle's user_encoder.json)",
            a["user_features"],
            f"p50 {a['user_features_p50_ms']:.3f} ms per call",
        ),
        row("ItemPop (training counts)", a["itempop"]),
        f"| chance | {a['chance_hr@10']:.4f} | | |",
        "",
        f"Attribute values over the {out['cold_users']} users: {a['values']} (an unknown value reads its column's "
        "reserved row). The int8 bundle's vectors against the float32 feature path (numpy, FeaturePath.vectors): "
        f"largest error {a['int8_vs_fp32_max_rel_error']:.4f} of the vector's largest entry.",
        "",
        "## A few interactions: fold-in from the seeded start vs from the `user_features` vectors",
        "",
        "n of each new user's training items (seeded); the bundle's `fold_in` (today: a seeded small start) against "
        "`fold_in_from` (the same 40 Adam steps over the same fixed negatives, started from `user_features`' "
        f"output and pulled toward it with strength {out['fold_in_cfg']['pull']:g} / n). The numpy reference "
        "`fold_in_fixed` (with and without `start`) runs on the float32 checkpoint's "
        f"item side for the first {args.reference_users} new users, scored in numpy; its HR@10 is set beside the "
        "bundle's on the same users; the largest gap between the bundle's vectors and the reference's and the "
        "share of the bundle's catalog top-10 in the reference's are the int8 bundle's parity (its item constants "
        "are int8, which Adam's normalized steps carry into the vectors; the fp32 bundle equals the reference "
        "within 1e-4 in tests/test_cold_users.py).",
        "",
        "| items | fold_in HR@10 / NDCG@10 | fold_in_from HR@10 / NDCG@10 | HR@10 on the reference users: bundle "
        "(seeded / from features), reference (seeded / from features) | bundle vs reference: max abs vector gap, "
        "catalog top-10 agreement (seeded / from features) | p50 ms (fold_in / fold_in_from) |",
        "|---|---|---|---|---|---|",
    ]
    for n in HISTORIES:
        h = out[f"history_{n}"]
        lines.append(
            f"| {n} | {h['fold_in']['hr@10']:.4f} / {h['fold_in']['ndcg@10']:.4f} | "
            f"{h['fold_in_from']['hr@10']:.4f} / {h['fold_in_from']['ndcg@10']:.4f} | "
            f"{h['bundle_on_reference_users']['fold_in']['hr@10']:.4f} / "
            f"{h['bundle_on_reference_users']['fold_in_from']['hr@10']:.4f}, "
            f"{h['reference_fold_in']['hr@10']:.4f} / {h['reference_fold_in_from']['hr@10']:.4f} | "
            f"{h['max_abs_gap_fold_in']:.3f} / {h['max_abs_gap_fold_in_from']:.3f}, "
            f"{h['top10_agreement_fold_in']:.3f} / {h['top10_agreement_fold_in_from']:.3f} | "
            f"{h['fold_in_p50_ms']:.1f} / {h['fold_in_from_p50_ms']:.1f} |"
        )
    names = list(out[f"pull_{HISTORIES[0]}"])
    lines += [
        "",
        "## The pull toward the feature vectors (numpy reference)",
        "",
        f"`fold_in_from` adds an L2 pull of strength `pull` / (distinct history items) toward the vectors it starts "
        "from (the bundle's default "
        f"{out['fold_in_cfg']['pull']:g}, used above): without it, 40 normalized Adam steps move the vectors much "
        "further than the start is from zero and where they start hardly matters. The numpy reference fold-in "
        "(same steps, fixed negatives and histories as above, float32 model) for every new user, from the seeded "
        "start and from the feature vectors at several pulls. HR@10 / NDCG@10:",
        "",
        "| items | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for n in HISTORIES:
        row = out[f"pull_{n}"]
        lines.append(f"| {n} | " + " | ".join(f"{row[k]['hr@10']:.4f} / {row[k]['ndcg@10']:.4f}" for k in names) + " |")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
