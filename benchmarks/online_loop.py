"""The online loop on ML-1M, end to end on a real Triton server: serve -> feedback -> update -> roll-out, 3 rounds.

    python benchmarks/online_loop.py [--data ../shared/data/ml-1m-ncf] [--rounds 3] [--workers 8]

ML-1M's NCF split has no timestamps in its training file, so there is no later period to replay: the users'
"future" is a seeded random 20 % of each user's training interactions, cut into rounds + 1 chunks (it is unseen by
the base model, not later in time). The base NeuMF-8 is trained (edgerec defaults) on the other 80 %, exported as
a Triton repository (profile triton-cpu-onnx) and served by `edgerec serve`'s TritonServer with an event log and
repository polling. Each round r:
  1. every user with interactions in chunk r asks the server for a top-10 (HTTP, --workers concurrent clients), the
     impression is logged through the `feedback` model, a shown item the user will interact with (any later chunk)
     is clicked, and the user's chunk-r interactions are logged as purchases (their organic behaviour);
  2. `edgerec.update` reads the log (click + purchase are positives; each record once) and gates the update;
  3. `edgerec.rollout` adds the passed update as the next version while a closed-loop load (concurrency 8, gRPC)
     runs, until the server serves it: requests answered and failed during the swap;
  4. the updated model and the stale base model are measured on chunk r + 1, the users' next interactions:
     HR@10 / NDCG@10 (sampled: the first next item among 99 unseen negatives), and precision / recall / F1@10 of the
     full-catalog top-10 (known items excluded) against all next items; CTR, conversion and catalog coverage of
     what was served come from the log; each version's phone bundle (tflite-bundle int8) and whether a delta fits.
A poisoned round follows: 300 fake users click one unpopular target item (plus 4 random ones); the update is
gated and, when it passes, the target's rank among 1,000 real users is measured before and after (never rolled out).
Writes benchmarks/results/online_loop.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch

import edgerec
from edgerec.data.split import Dataset, positive_keys, sample_distinct_negatives
from edgerec.errors import GateFailed
from edgerec.metrics import catalog_top_k, evaluate, precision_recall_f1
from edgerec.model.training import torch_scorer
from edgerec.profiles.pipeline import export_config
from edgerec.profiles.schema import load_profile
from edgerec.serving.client import Client
from edgerec.serving.events import read_log
from edgerec.serving.load import BackgroundLoad
from edgerec.serving.server import TritonServer, free_ports
from edgerec.sysinfo import machine, provenance

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data" / "ml-1m-ncf"


def split_future(ds: Dataset, frac: float, chunks: int, seed: int) -> np.ndarray:
    """[train rows] chunk of each row: -1 = the base model's, 0..chunks-1 = the future, per user at random."""
    rng = np.random.default_rng(seed)
    chunk = np.full(len(ds.train), -1, dtype=np.int64)
    order = np.argsort(ds.train.users, kind="stable")
    bounds = np.searchsorted(ds.train.users[order], np.arange(ds.n_users + 1))
    for u in range(ds.n_users):
        rows = order[bounds[u] : bounds[u + 1]]
        n = max(chunks, round(frac * len(rows)))
        if len(rows) <= n:
            continue
        fut = rng.choice(rows, size=n, replace=False)
        chunk[fut] = np.arange(n) % chunks
    return chunk


def next_metrics(ck, ds: Dataset, known_mask: np.ndarray, chunk: np.ndarray, r: int, seed: int) -> dict:
    """The model on chunk r (the users' next interactions): sampled HR/NDCG@10 and full-ranking P/R/F1@10."""
    t = ds.train
    known = t.subset(known_mask)
    rows = np.nonzero(chunk == r)[0]
    users = np.unique(t.users[rows])
    first = {}
    for i in rows:
        first.setdefault(int(t.users[i]), int(t.items[i]))
    every = positive_keys(t)  # negatives are items the user never interacted with
    negs = sample_distinct_negatives(users, ds.n_items, 99, every, np.random.default_rng(seed))
    test = Dataset("next", known, users, np.array([first[int(u)] for u in users]), negs)
    scorer = torch_scorer(ck.model.eval())
    m = evaluate(scorer, test, full=False)
    top = catalog_top_k(scorer, test, 10, users)
    rel: dict[int, set[int]] = {}
    for i in rows:
        rel.setdefault(int(t.users[i]), set()).add(int(t.items[i]))
    return {"hr@10": m["hr@10"], "ndcg@10": m["ndcg@10"], **precision_recall_f1(top, [rel[int(u)] for u in users])}


def simulate(url: str, ds: Dataset, chunk: np.ndarray, r: int, workers: int, now: int) -> dict:
    """One round of users: recommend -> impression -> clicks on shown items they will interact with -> purchases."""
    t = ds.train
    user_ids, item_ids = t.user_ids.tolist(), t.item_ids.tolist()
    future: dict[int, set[int]] = {}
    organic: dict[int, list[int]] = {}
    for i in np.nonzero(chunk >= r)[0]:
        future.setdefault(int(t.users[i]), set()).add(int(t.items[i]))
        if chunk[i] == r:
            organic.setdefault(int(t.users[i]), []).append(int(t.items[i]))
    users = sorted(organic)
    stats = {"impressions": 0, "shown": 0, "clicks": 0, "purchases": 0, "served_items": set(), "clicked_lists": 0}
    lock = threading.Lock()
    local = threading.local()

    def one(u: int) -> None:
        c = getattr(local, "client", None) or Client(url)
        local.client = c
        items = c.recommend([u])[0][0].tolist()
        uid = str(user_ids[u])
        c.feedback(uid, "impression", now, shown=[str(item_ids[i]) for i in items])
        clicks = [i for i in items if i in future[u]]
        for i in clicks:
            c.feedback(uid, "click", now, item=str(item_ids[i]))
        for i in organic[u]:
            c.feedback(uid, "purchase", now, item=str(item_ids[i]))
        with lock:
            stats["impressions"] += 1
            stats["shown"] += len(items)
            stats["clicks"] += len(clicks)
            stats["clicked_lists"] += bool(clicks)
            stats["purchases"] += len(organic[u])
            stats["served_items"].update(items)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, users))
    stats["seconds"] = time.perf_counter() - t0
    stats["ctr"] = stats["clicks"] / stats["shown"]
    stats["conversion"] = stats["clicked_lists"] / stats["impressions"]
    stats["coverage"] = len(stats.pop("served_items")) / ds.n_items
    return stats


def served(c: Client) -> list[str]:
    return c._call(lambda: c._c.get_model_metadata("recommend"))["versions"]


def rollout_under_load(server: TritonServer, repo: Path, child, n_users: int) -> dict:
    users = np.random.default_rng(7).integers(0, n_users, 200)
    with BackgroundLoad(server.grpc_url, "grpc", users, 8) as load:
        time.sleep(1.0)
        t0 = time.perf_counter()
        m = edgerec.rollout(repo, child)
        v = str(m["triton"]["version"])
        with Client(server.http_url) as c:
            while served(c) != [v]:
                time.sleep(0.1)
        swap_s = time.perf_counter() - t0
        time.sleep(1.0)
    return {"version": int(v), "rollout_s": swap_s, "answered": load.answered, "failed": load.failed,
            "first_error": load.first_error}  # fmt: skip


def bundle_step(ck, ds: Dataset, work: Path, previous: Path | None) -> tuple[Path, str]:
    from edgerec.updates.delta import make_delta

    out = work / f"bundle-v{ck.version}"
    art = edgerec.export(ck, edgerec.ExportConfig(target="tflite-bundle", precision="int8"), data=ds, out=out)
    if previous is None:
        return out, f"full bundle {art.bytes:,} B"
    try:
        d = make_delta(previous, out, work / f"delta-v{ck.version}")
        return out, f"delta {d['patch_bytes']:,} B of {art.bytes:,} B"
    except edgerec.EdgerecError as e:
        return out, f"full bundle ({str(e)[:60]})"


def poisoned(url: str, ck, ds: Dataset, log: Path, now: int, seed: int) -> dict:
    counts = np.bincount(ds.train.items, minlength=ds.n_items)
    target = int(np.argsort(counts)[ds.n_items // 2])  # an item of median popularity
    rng = np.random.default_rng(seed)
    item_ids = ds.train.item_ids.tolist()
    with Client(url) as c:
        for f in range(300):
            for i in [target, *rng.choice(ds.n_items, 4, replace=False).tolist()]:
                c.feedback(f"fake-{f}", "click", now, item=str(item_ids[i]))
    real = rng.choice(ds.n_users, 1000, replace=False)

    def target_rank(model) -> tuple[float, float]:
        scorer = torch_scorer(model.eval())
        s = scorer(np.repeat(real, ds.n_items), np.tile(np.arange(ds.n_items), len(real))).reshape(len(real), -1)
        ranks = (s > s[:, [target]]).sum(axis=1)
        return float(np.median(ranks)), float((ranks < 10).mean())

    before = target_rank(ck.model)
    out = {"target": int(target), "target_interactions": int(counts[target]), "rank_before": before[0],
           "top10_before": before[1]}  # fmt: skip
    try:
        p = edgerec.update(ck, log)
    except GateFailed as e:
        return {**out, "gate": "refused", "why": "; ".join(e.report["update"]["gate"]["failures"])}
    after = target_rank(p.model)
    return {**out, "gate": "passed", "rank_after": after[0], "top10_after": after[1]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--work", default=str(HERE / "runs" / "online"))
    ap.add_argument("--results", default=str(HERE / "results" / "online_loop.md"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    ds = edgerec.dataset(args.data)
    work = Path(args.work)
    chunk = split_future(ds, 0.2, args.rounds + 1, seed=0)
    base_ds = Dataset("ml-1m, 80 % of each user's train", ds.train.subset(chunk < 0), ds.test_users, ds.test_items,
                      ds.test_negatives)  # fmt: skip
    base_path = work / "base"
    t0 = time.perf_counter()
    if (base_path / "model.safetensors").is_file():
        base, base_s = edgerec.load(base_path), None
    else:
        base = edgerec.train(base_ds, edgerec.TrainConfig()).save(base_path)
        base, base_s = edgerec.load(base_path), time.perf_counter() - t0
    repo, log = work / "repo", work / "log"
    shutil.rmtree(log, ignore_errors=True)
    edgerec.export(base, export_config(load_profile("triton-cpu-onnx")), data=base_ds, out=repo)
    rows, current = [], base
    bundle, _ = bundle_step(base, base_ds, work, None)
    now = int(time.time())
    http, grpc = free_ports(2)
    with TritonServer(repo, http_port=http, grpc_port=grpc, poll_seconds=1, log_dir=log) as server:
        for r in range(args.rounds):
            sim = simulate(server.http_url, ds, chunk, r, args.workers, now)
            t1 = time.perf_counter()
            child = edgerec.update(current, log, data=base_ds if current is base else None)
            update_s = time.perf_counter() - t1
            swap = rollout_under_load(server, repo, child, ds.n_users)
            known = chunk < 0
            known |= (chunk >= 0) & (chunk <= r)
            stale = next_metrics(base, ds, known, chunk, r + 1, seed=r)
            fresh = next_metrics(child, ds, known, chunk, r + 1, seed=r)
            bundle, phone = bundle_step(child, child.data, work, bundle)
            fb = child.report["lineage"]["feedback"]
            rows.append({"round": r + 1, **sim, "update_s": update_s, **swap, "stale": stale, "updated": fresh,
                         "phone": phone, "seq": f"{fb['from_seq']}..{fb['through_seq']}",
                         "gate": child.report["update"]["parent_protocol"]})  # fmt: skip
            current = child
            print(json.dumps(rows[-1], default=float))
        poison = poisoned(server.http_url, current, ds, log, now, seed=5)
        print(json.dumps(poison))
    segments, _ = read_log(log)
    write_report(args, rows, poison, base_s, segments)
    return 0


def write_report(args, rows: list[dict], poison: dict, base_s: float | None, segments) -> None:
    took = "" if base_s is None else f" in {base_s / 60:.1f} min"
    lines = [
        "# The online loop on ML-1M: serve -> feedback -> update -> roll-out",
        "",
        f"{provenance(sys.argv)}  ",
        f"Machine: {machine()}. Server, simulated users, updates and evaluation share these 2 cores.",
        "",
        "ML-1M's NCF split has no training timestamps: each user's \"future\" is a seeded random 20 % of their",
        f"training interactions in {args.rounds + 1} chunks (unseen by the base model, not later in time).",
        f"Base NeuMF-8 trained on the other 80 %{took}; served as a Triton repository (triton-cpu-onnx), "
        "polling every 1 s.",
        "",
        "| round | version served after | impressions / clicks / purchases | CTR | conversion | coverage | "
        "update s | roll-out s | requests answered / failed during the swap | log seq read | phone |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['round']} | {row['version']} | {row['impressions']:,} / {row['clicks']:,} / {row['purchases']:,} "
            f"| {row['ctr']:.4f} | {row['conversion']:.3f} | {row['coverage']:.3f} | {row['update_s']:.0f} | "
            f"{row['rollout_s']:.1f} | {row['answered']:,} / {row['failed']} | {row['seq']} | {row['phone']} |"
        )
    lines += [
        "",
        "On the users' next interactions (the next chunk), the updated model against the stale base model:",
        "",
        "| after round | model | HR@10 | NDCG@10 | precision@10 | recall@10 | F1@10 | users |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        for name in ("stale", "updated"):
            m = row[name]
            lines.append(
                f"| {row['round']} | {name} | {m['hr@10']:.4f} | {m['ndcg@10']:.4f} | {m['precision@10']:.4f} | "
                f"{m['recall@10']:.4f} | {m['f1@10']:.4f} | {m['users']:,} |"
            )
    lines += ["", "Each update's own gate (the parent's test protocol, the NCF test rows):", ""]
    for row in rows:
        g = row["gate"]
        lines.append(f"- round {row['round']}: HR@10 {g['parent']['hr@10']:.4f} -> {g['child']['hr@10']:.4f}")
    lines += ["", "**Poisoned round** (300 fake users each click the target item and 4 random ones):", ""]
    if poison["gate"] == "refused":
        lines.append(f"- target item {poison['target']}: the gate refused the update: {poison['why']}")
    else:
        lines.append(
            f"- target item {poison['target']} ({poison['target_interactions']} real interactions): the gate passed; "
            f"its median rank among 1,000 real users moved {poison['rank_before']:.0f} -> {poison['rank_after']:.0f}, "
            f"in their top-10 for {poison['top10_before']:.1%} -> {poison['top10_after']:.1%} of them (not rolled out)"
        )
    torn = sum(s.torn for s in segments)
    lines += ["", f"Event log: {len(segments)} segment(s), {sum(len(s.records) for s in segments):,} records, "
              f"{torn} torn line(s)."]  # fmt: skip
    Path(args.results).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
