"""Incremental update vs full retrain on ML-1M (NCF split), plus a deliberately bad update that the gate must stop.

A random 10 % of users, and 5 % of items whose every interaction moves with them, arrive late. The parent NeuMF-8 is
trained on the rest; `edgerec update` (edgerec.updates) absorbs the late interactions; a full retrain trains on all
of ML-1M's training data with the parent's settings. Both are measured on the paper's test protocol (the NCF split's
test item + 99 negatives), separately for the late users and the others; the parent and the update also on the
parent's own protocol (the old users' test items; negatives that are late items redrawn among the old ones).

    python benchmarks/incremental.py --data ../shared/data/ml-1m-ncf --stage parent &   # the two trainings can
    python benchmarks/incremental.py --data ../shared/data/ml-1m-ncf --stage retrain &  # run side by side
    wait; python benchmarks/incremental.py --data ../shared/data/ml-1m-ncf --stage update

Writes benchmarks/runs/incremental/{parent,retrain,updated}/ and benchmarks/results/incremental.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

import edgerec
from edgerec.data import Dataset, Interactions, load_dataset
from edgerec.data.split import is_member, leave_one_out, positive_keys
from edgerec.data.synthetic import SyntheticConfig, drifting_stream
from edgerec.errors import EdgerecError
from edgerec.io import file_hashes
from edgerec.metrics import hr_ndcg, sampled_ranks
from edgerec.model import checkpoint
from edgerec.model.training import torch_scorer
from edgerec.sysinfo import machine, provenance
from edgerec.updates.config import UpdateConfig
from edgerec.updates.incremental import child_checkpoint, run_update

PAPER = edgerec.TrainConfig(batch_size=256, lr=2e-3)  # the batch and rate these tables were measured with


def split_late(full: Dataset, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(late users, late items) as dense indices of the full data."""
    rng = np.random.default_rng(seed)
    late_users = np.sort(rng.choice(full.n_users, round(0.10 * full.n_users), replace=False))
    late_items = np.sort(rng.choice(full.n_items, round(0.05 * full.n_items), replace=False))
    return late_users, late_items


def _rows(column: np.ndarray | None, mask: np.ndarray) -> np.ndarray | None:
    return None if column is None else column[mask]  # the NCF split's train file has no timestamps


def parent_dataset(full: Dataset, late_users: np.ndarray, late_items: np.ndarray, seed: int) -> Dataset:
    """The early data on its own id maps; test rows of old users whose test item is old, late negatives redrawn."""
    t = full.train
    early = ~(np.isin(t.users, late_users) | np.isin(t.items, late_items))
    train = Interactions.from_raw(t.user_ids[t.users[early]], t.item_ids[t.items[early]], _rows(t.timestamps, early))
    u_map = {v: k for k, v in enumerate(train.user_ids.tolist())}
    i_map = {v: k for k, v in enumerate(train.item_ids.tolist())}
    old_items = np.unique(t.items[early])  # items the parent knows (late items and items only late users had: not)
    keep = np.isin(full.test_users, t.users[early]) & np.isin(full.test_items, old_items)
    rng = np.random.default_rng(seed + 1)
    known = positive_keys(full.train)
    negs = full.test_negatives[keep].copy()
    for u, row in zip(full.test_users[keep], negs, strict=True):
        for c in np.flatnonzero(~np.isin(row, old_items)):
            for _ in range(100_000):  # a guard only: on ML-1M a free old item is found within a few draws
                cand = int(rng.choice(old_items))
                if cand not in row and not is_member(known, np.array([u * full.n_items + cand]))[0]:
                    row[c] = cand
                    break
            else:
                raise EdgerecError(f"user {u}: no old item left to redraw a negative from (the catalog is too small)")
    to_u = np.vectorize(lambda x: u_map[int(t.user_ids[x])])
    to_i = np.vectorize(lambda x: i_map[int(t.item_ids[x])])
    return Dataset("ml-1m early", train, to_u(full.test_users[keep]), to_i(full.test_items[keep]), to_i(negs))


def late_interactions(full: Dataset, late_users: np.ndarray, late_items: np.ndarray) -> Interactions:
    t = full.train
    late = np.isin(t.users, late_users) | np.isin(t.items, late_items)
    return Interactions.from_raw(t.user_ids[t.users[late]], t.item_ids[t.items[late]], _rows(t.timestamps, late))


def ranks_by_ids(ck: checkpoint.Checkpoint, users: np.ndarray, pos: np.ndarray, negs: np.ndarray) -> np.ndarray:
    """Sampled-protocol ranks for test rows given in original ids, mapped through the checkpoint's own id maps.
    A row naming a user or item the model has never seen counts as a miss (rank 99): it cannot be ranked."""
    u_map = {v: k for k, v in enumerate(ck.user_ids.tolist())}
    i_map = {v: k for k, v in enumerate(ck.item_ids.tolist())}
    lut = np.vectorize(lambda x: i_map.get(int(x), -1), otypes=[np.int64])
    u = np.asarray([u_map.get(int(x), -1) for x in users], dtype=np.int64)
    p, n = lut(pos), lut(negs)
    ok = (u >= 0) & (p >= 0) & (n >= 0).all(axis=1)
    empty = Interactions(np.zeros(0, np.int64), np.zeros(0, np.int64), ck.user_ids, ck.item_ids)
    ranks = np.full(len(users), 99, dtype=np.int64)
    ranks[ok] = sampled_ranks(torch_scorer(ck.model), Dataset("test", empty, u[ok], p[ok], n[ok]))
    return ranks


def full_protocol_ranks(ck: checkpoint.Checkpoint, full: Dataset, rows: np.ndarray) -> np.ndarray:
    """Ranks on the NCF split's test protocol (original ids = the split's dense ids), on the given test rows."""
    ids = full.train.item_ids
    users, pos, negs = full.test_users[rows], full.test_items[rows], full.test_negatives[rows]
    return ranks_by_ids(ck, full.train.user_ids[users], ids[pos], ids[negs])


def prequential_test(
    history: list[tuple[np.ndarray, np.ndarray, np.ndarray]], now: tuple[np.ndarray, ...], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One random interaction of this round per known user (with a known item) + 99 round-0 items the user has never
    touched (up to and including this round): what the models trained on the earlier rounds must predict.
    Also returns which rows only name users and items of round 0 (the ones the stale parent can score)."""
    users_before = np.unique(np.concatenate([h[0] for h in history]))
    items_before = np.unique(np.concatenate([h[1] for h in history]))
    u, i = now[0], now[1]
    ok = np.isin(u, users_before) & np.isin(i, items_before)
    rows = np.flatnonzero(ok)[rng.permutation(int(ok.sum()))]
    _, first = np.unique(u[rows], return_index=True)
    test_rows = rows[first]
    touched = {(a, b) for h in [*history, now] for a, b in zip(h[0].tolist(), h[1].tolist(), strict=True)}
    items0 = np.unique(history[0][1])
    negs = np.empty((len(test_rows), 99), dtype=np.int64)
    for k, row in enumerate(test_rows):
        pool = [x for x in rng.permutation(items0)[:400].tolist() if (int(u[row]), x) not in touched]
        negs[k] = pool[:99]
    old = np.isin(u[test_rows], history[0][0]) & np.isin(i[test_rows], items0)
    return u[test_rows], i[test_rows], negs, old


def stream(runs: Path, seed: int) -> list[str]:
    """The multi-round drifting stream: stale parent vs chained updates vs a full retrain each round."""
    rounds = drifting_stream(SyntheticConfig(seed=seed), rounds=4)
    rng = np.random.default_rng(seed + 3)
    u0, i0, t0 = rounds[0]
    ds0 = leave_one_out(Interactions.from_raw(u0, i0, t0), seed=seed, name="stream round 0")
    chain = edgerec.train(ds0, PAPER).save(runs / "stream" / "v1")
    stale = retrained = checkpoint.load(chain)
    lines = [
        "| round | new interactions | test users (round-0 / newer) | stale parent HR@10 (round-0 users+items) "
        "| chained updates HR@10 (round-0 / newer) | full retrain HR@10 (round-0 / newer) | update s | retrain s "
        "| gate |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in range(1, len(rounds)):
        users, pos, negs, old = prequential_test(rounds[:r], rounds[r], rng)
        hr = [hr_ndcg(ranks_by_ids(stale, users[old], pos[old], negs[old]))[0]]
        for ck in (checkpoint.load(chain), retrained):
            ranks = ranks_by_ids(ck, users, pos, negs)
            hr += [hr_ndcg(ranks[old])[0], hr_ndcg(ranks[~old])[0] if (~old).any() else float("nan")]
        t0 = time.perf_counter()
        parent = checkpoint.load(chain)
        res = run_update(parent, Interactions.from_raw(*rounds[r]), ds0 if r == 1 else None, UpdateConfig())
        update_s = time.perf_counter() - t0
        if res.passed:
            chain = child_checkpoint(res).save(runs / "stream" / f"v{r + 1}")
        t0 = time.perf_counter()
        u, i, t = (np.concatenate([x[k] for x in rounds[: r + 1]]) for k in range(3))
        ds = leave_one_out(Interactions.from_raw(u, i, t), seed=seed, name=f"stream rounds 0-{r}")
        retrained = checkpoint.load(edgerec.train(ds, PAPER).save(runs / "stream" / f"retrain{r}"))
        retrain_s = time.perf_counter() - t0
        gate = "passed" if res.passed else "rejected: " + "; ".join(res.gate.failures)
        f = ["-" if np.isnan(x) else f"{x:.4f}" for x in hr]  # no newer users yet in round 1
        lines.append(
            f"| {r} | {len(rounds[r][0]):,} | {int(old.sum())} / {int((~old).sum())} | {f[0]} | {f[1]} / {f[2]} | "
            f"{f[3]} / {f[4]} | {update_s:.0f} | {retrain_s:.0f} | {gate} |"
        )
        print(lines[-1], flush=True)
    return lines


def timed_train(ds: Dataset, folder: Path) -> None:
    t0 = time.perf_counter()
    ck = edgerec.train(ds, PAPER)
    ck.config["report"]["wall_seconds"] = round(time.perf_counter() - t0, 2)
    ck.save(folder)
    print(f"{folder.name}: {ck.report['wall_seconds']} s, HR@10 {ck.metrics['hr@10']:.4f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=None, help="the ML-1M NCF split folder (all stages but stream)")
    ap.add_argument("--stage", required=True, choices=["parent", "retrain", "update", "stream"])
    ap.add_argument("--runs", default="benchmarks/runs/incremental")
    ap.add_argument("--results", default="benchmarks/results")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)  # the two trainings share the machine's two cores; the update gets the same one core
    runs = Path(args.runs)
    if args.stage == "stream":
        lines = [
            "# Incremental updates on a drifting stream (synthetic)",
            "",
            f"Machine: {machine()}, PyTorch on 1 thread. `edgerec.data.synthetic.drifting_stream` (default world, "
            f"seed {args.seed}): round 0 trains the parent (NeuMF-8, `TrainConfig()`); each later round brings 100 new "
            "users, 40 new items, about 8 interactions per user, and moves every taste cluster by 0.35 along its own "
            "direction. Prequential test: before a round is used, one of its interactions per known user (known item) "
            "+ 99 never-touched known items is ranked by the stale parent, the chain of `edgerec update`s (defaults) "
            "and a full retrain on every earlier round; a user or item a model has never seen counts as a miss for "
            "it. A rejected update leaves the chain at its last accepted version. Generated by "
            f"{provenance()}.",
            "",
            *stream(runs, args.seed),
        ]
        Path(args.results, "incremental_stream.md").write_text("\n".join(lines) + "\n")
        print("\n".join(lines))
        return 0
    full = load_dataset(args.data)
    late_users, late_items = split_late(full, args.seed)
    pds = parent_dataset(full, late_users, late_items, args.seed)
    if args.stage == "parent":
        timed_train(pds, runs / "parent")
        return 0
    if args.stage == "retrain":
        timed_train(full, runs / "retrain")
        return 0
    new = late_interactions(full, late_users, late_items)
    parent_dir = runs / "parent"
    before = file_hashes(parent_dir)
    t0 = time.perf_counter()
    res = run_update(checkpoint.load(parent_dir), new, pds, UpdateConfig())
    update_s = time.perf_counter() - t0
    if not res.passed:
        print("the good update was rejected:", list(res.gate.failures))
    child_checkpoint(res).save(runs / "updated")
    # the bad update: every late interaction's item id replaced by a random one of the catalog (a broken id mapping
    # upstream; shuffling the items across rows instead keeps their popularity, which is still signal)
    rng = np.random.default_rng(args.seed + 7)
    random_items = rng.choice(full.train.item_ids[np.unique(full.train.items)], len(new))
    bad = Interactions.from_raw(new.user_ids[new.users], random_items)
    bad_res = run_update(checkpoint.load(parent_dir), bad, pds, UpdateConfig())
    unchanged = file_hashes(parent_dir) == before
    parent, retrain, updated = (checkpoint.load(runs / n) for n in ("parent", "retrain", "updated"))
    # test rows whose item or negatives no training row ever shows (ML-1M has such items) cannot be scored by a
    # model that learns its catalog from interactions: the comparison skips those rows for both models
    seen_items = np.unique(full.train.items)
    scorable = np.isin(full.test_items, seen_items) & np.isin(full.test_negatives, seen_items).all(axis=1)
    test_rows = np.flatnonzero(scorable)
    is_new = np.isin(full.test_users[test_rows], late_users)
    r_retrain, r_update = full_protocol_ranks(retrain, full, test_rows), full_protocol_ranks(updated, full, test_rows)
    u = res.report.to_json()["update"]
    retrain_s = retrain.config["report"]["wall_seconds"]
    rows = {
        "late users (full retrain)": hr_ndcg(r_retrain[is_new]),
        "late users (update)": hr_ndcg(r_update[is_new]),
        "old users (full retrain)": hr_ndcg(r_retrain[~is_new]),
        "old users (update)": hr_ndcg(r_update[~is_new]),
    }
    ratio_new = rows["late users (update)"][0] / rows["late users (full retrain)"][0]
    pp = u["parent_protocol"]
    old_drop = pp["parent"]["hr@10"] - pp["child"]["hr@10"]
    bu = bad_res.report.to_json()["update"]
    lines = [
        "# Incremental update vs full retrain (ML-1M, NeuMF-8)",
        "",
        f"Machine: {machine()}, PyTorch on 1 thread per process (the parent and the full retrain trained side by side,"
        " one core each, while other test jobs also ran on the machine; the update ran after them). "
        f"Generated by {provenance()}.",
        "",
        f"Late arrivals (seed {args.seed}): {len(late_users)} users (10 %) and {len(late_items)} items (5 %) with "
        f"every interaction of theirs: {u['rows_read']:,} interactions. Parent: NeuMF-8, default training "
        f"(`TrainConfig()`), on the remaining {len(pds.train):,}. Update: `edgerec update` defaults "
        f"({u['config']['epochs']} epochs max over the new interactions + {u['replayed']:,} replayed old ones, "
        f"gate tolerance {u['config']['tolerance']['hr']}); {u['holdout_users']} users' latest late interaction "
        "held out.",
        "",
        "## Quality on the paper's protocol (NCF split test item + 99 negatives)",
        "",
        f"{len(test_rows):,} of {len(full.test_users):,} test rows: the others name an item that no training "
        "interaction shows, which a model that learns its catalog from interactions cannot score.",
        "",
        "| users | model | HR@10 | NDCG@10 |",
        "|---|---|---|---|",
        *(f"| {k.split(' (')[0]} | {k.split('(')[1][:-1]} | {v[0]:.4f} | {v[1]:.4f} |" for k, v in rows.items()),
        "",
        f"Late users after the update reach **{ratio_new:.1%}** of the full retrain's HR@10 (bar: 90 %).",
        "",
        "## Old users on the parent's own protocol (the gate's view)",
        "",
        "| model | HR@10 | NDCG@10 | test users |",
        "|---|---|---|---|",
        f"| parent | {pp['parent']['hr@10']:.4f} | {pp['parent']['ndcg@10']:.4f} | {pp['parent']['test_users']} |",
        f"| updated | {pp['child']['hr@10']:.4f} | {pp['child']['ndcg@10']:.4f} | {pp['child']['test_users']} |",
        "",
        f"HR@10 change for old users: {-old_drop:+.4f} (bar: at most 0.01 lost). New-data holdout HR@10: grown parent "
        f"{u['holdout']['grown_parent']['hr@10']:.4f} -> updated {u['holdout']['child']['hr@10']:.4f}.",
        "",
        "## Wall time",
        "",
        "| job | seconds |",
        "|---|---|",
        f"| full retrain (all data, `TrainConfig()`) | {retrain_s:.0f} |",
        f"| parent training (early data) | {parent.config['report']['wall_seconds']:.0f} |",
        f"| update (load, merge, fine-tune, evaluate both protocols, gate) | {update_s:.0f} |",
        "",
        f"The update took **{update_s / retrain_s:.1%}** of the full retrain's wall time (bar: 20 %).",
        "",
        "## A bad update is stopped",
        "",
        "The same late interactions with every item id replaced by a random one of the catalog (a broken id mapping "
        "upstream): gate "
        f"{'**passed (not stopped!)**' if bad_res.passed else '**rejected**'}: {'; '.join(bu['gate']['failures'])}. "
        f"Parent folder byte-identical afterwards: {unchanged}.",
    ]
    text = "\n".join(lines) + "\n"
    Path(args.results, "incremental.md").write_text(text)
    (runs / "incremental.json").write_text(
        json.dumps(
            {
                "provenance": provenance(),
                "good": res.report.to_json(),
                "bad": bad_res.report.to_json(),
                "update_seconds": update_s,
            },
            indent=1,
            default=str,
        )
    )
    print(text)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except EdgerecError as e:
        sys.exit(f"error: {e}")
