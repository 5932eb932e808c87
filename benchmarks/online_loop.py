"""The online loop end to end on a real Triton server: serve -> feedback -> update -> roll-out, 3 rounds, on the
synthetic drifting stream (edgerec.data.synthetic.drifting_stream: tastes move every round, 100 new users and 40
new items arrive per round).

    python benchmarks/online_loop.py [--rounds 3] [--workers 8]

Why not ML-1M: its NCF split has no training timestamps, so there is no later period to replay. A first attempt
replayed a seeded random 20 % of each ML-1M user's training interactions as the "future": the updates then kept the
parent (fine-tuning never beat epoch 0 on the new-data validation: the future was the same distribution the base
model had learnt), so the loop would have shown plumbing only; see online_loop.md.

Round 0 trains the base NeuMF-8 (edgerec defaults), exported as a Triton repository (profile triton-cpu-onnx) and
served by `edgerec serve`'s TritonServer with an event log and repository polling. Each round r = 1..rounds:
  1. every user with interactions in round r who is known to the served version asks it for a top-10 (HTTP,
     --workers concurrent clients); the impression is logged through the `feedback` model; a shown item the user
     interacts with in round r is clicked; every round-r interaction is logged as a purchase (organic behaviour, new
     users' included: they have no recommendations yet);
  2. `edgerec.update` reads the log (click + purchase are positives; each record once) and gates the update;
  3. `edgerec.rollout` adds the passed update as the next version while a closed-loop load (concurrency 8, gRPC)
     runs until the server serves it: requests answered and failed during the roll-out;
  4. the updated model and the stale base model are measured on round r + 1, the users' next interactions
     (prequential, as benchmarks/incremental.py): HR@10 / NDCG@10 of one next interaction among 99 never-touched
     round-0 items, for round-0 users and items (what the stale model can score); precision / recall / F1@10 of each
     model's full-catalog top-10 (known items excluded) against all the round-0 users' next items; CTR, conversion
     and catalog coverage of what was served come from the simulation.
A poisoned round follows: 300 fake users click one median-popularity target item (plus 4 random ones); the update
is gated and, when it passes, the target's rank among 1,000 real users is measured before and after (never rolled
out). Writes benchmarks/results/online_loop.md.
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
from edgerec.data.align import index_of
from edgerec.data.interactions import Interactions
from edgerec.data.split import leave_one_out
from edgerec.data.synthetic import SyntheticConfig, drifting_stream
from edgerec.errors import GateFailed
from edgerec.metrics import hr_ndcg, precision_recall_f1, top_k
from edgerec.model.training import torch_scorer
from edgerec.profiles.pipeline import export_config
from edgerec.profiles.schema import load_profile
from edgerec.serving.client import Client
from edgerec.serving.events import read_log
from edgerec.serving.load import BackgroundLoad
from edgerec.serving.server import TritonServer, free_ports
from edgerec.sysinfo import machine, provenance

sys.path.insert(0, str(Path(__file__).resolve().parent))
from incremental import prequential_test, ranks_by_ids

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data" / "ml-1m-ncf"


def next_metrics(ck, history: list, now: tuple, rng: np.random.Generator) -> dict:
    """The model on round `now` (the users' next interactions), round-0 users only."""
    users, pos, negs, old = prequential_test(history, now, rng)
    hr, ndcg = hr_ndcg(ranks_by_ids(ck, users[old], pos[old], negs[old]))
    known = {}
    for h in history:
        for u, i in zip(h[0].tolist(), h[1].tolist(), strict=True):
            known.setdefault(u, set()).add(i)
    relevant = {}
    users0 = set(history[0][0].tolist())
    for u, i in zip(now[0].tolist(), now[1].tolist(), strict=True):
        if u in users0:
            relevant.setdefault(u, set()).add(i)
    order = sorted(relevant)
    dense = index_of(ck.user_ids, order)
    item_ids = ck.item_ids
    scorer = torch_scorer(ck.model.eval())
    n = len(item_ids)
    tops = []
    for s in range(0, len(order), 256):
        u = dense[s : s + 256]
        scores = scorer(np.repeat(u, n), np.tile(np.arange(n), len(u))).reshape(len(u), n).astype(np.float64)
        for row, orig in zip(scores, order[s : s + 256], strict=True):
            seen = index_of(item_ids, sorted(known.get(orig, ())))
            row[seen[seen >= 0]] = -np.inf
        tops.append(top_k(scores, 10))
    top = item_ids[np.concatenate(tops)]
    return {"hr@10": hr, "ndcg@10": ndcg, "hr_users": int(old.sum()),
            **precision_recall_f1(top, [relevant[u] for u in order])}  # fmt: skip


def simulate(url: str, served_ck, now: tuple, workers: int, ts: int) -> dict:
    """One round: recommend -> impression -> clicks on shown items the user takes this round -> purchases."""
    users_now, items_now = now[0].tolist(), now[1].tolist()
    takes: dict[int, list[int]] = {}
    for u, i in zip(users_now, items_now, strict=True):
        takes.setdefault(u, []).append(i)
    dense = dict(zip(sorted(takes), index_of(served_ck.user_ids, sorted(takes)).tolist(), strict=True))
    item_ids = served_ck.item_ids.tolist()
    stats = {"impressions": 0, "shown": 0, "clicks": 0, "purchases": 0, "served_items": set(), "clicked_lists": 0,
             "cold_users": 0}  # fmt: skip
    lock = threading.Lock()
    local = threading.local()

    def one(u: int) -> None:
        c = getattr(local, "client", None) or Client(url)
        local.client = c
        clicks: list = []
        items: list = []
        if dense[u] >= 0:  # a user the served version knows gets recommendations
            items = [item_ids[i] for i in c.recommend([dense[u]])[0][0].tolist()]
            c.feedback(str(u), "impression", ts, shown=[str(i) for i in items])
            clicks = [i for i in items if i in takes[u]]
            for i in clicks:
                c.feedback(str(u), "click", ts, item=str(i))
        for i in takes[u]:
            c.feedback(str(u), "purchase", ts, item=str(i))
        with lock:
            stats["impressions"] += bool(items)
            stats["cold_users"] += not items
            stats["shown"] += len(items)
            stats["clicks"] += len(clicks)
            stats["clicked_lists"] += bool(clicks)
            stats["purchases"] += len(takes[u])
            stats["served_items"].update(items)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, sorted(takes)))
    stats["seconds"] = time.perf_counter() - t0
    stats["ctr"] = stats["clicks"] / max(1, stats["shown"])
    stats["conversion"] = stats["clicked_lists"] / max(1, stats["impressions"])
    stats["coverage"] = len(stats.pop("served_items")) / len(item_ids)
    return stats


def rollout_under_load(server: TritonServer, repo: Path, child, n_users: int) -> dict:
    users = np.random.default_rng(7).integers(0, n_users, 200)
    with BackgroundLoad(server.grpc_url, "grpc", users, 8) as load:
        time.sleep(1.0)
        t0 = time.perf_counter()
        v = str(edgerec.rollout(repo, child).version)
        with Client(server.http_url) as c:
            while c.served_versions() != [v]:
                time.sleep(0.1)
        swap_s = time.perf_counter() - t0
        time.sleep(1.0)
    return {"version": int(v), "rollout_s": swap_s, "answered": load.answered, "failed": load.failed,
            "first_error": load.first_error}  # fmt: skip


def bundle_step(ck, work: Path, previous: Path | None, data=None) -> tuple[Path, str]:
    from edgerec.updates.delta import make_delta

    out = work / f"bundle-v{ck.version}"
    art = edgerec.export(ck, edgerec.ExportConfig(target="tflite-bundle", precision="int8"), data=data, out=out)
    if previous is None:
        return out, f"full bundle {art.bytes:,} B"
    try:
        d = make_delta(previous, out, work / f"delta-v{ck.version}")
        return out, f"delta {d['patch_bytes']:,} B of {art.bytes:,} B"
    except edgerec.EdgerecError:
        return out, f"full bundle {art.bytes:,} B (new items: no delta)"


def poisoned(url: str, ck, log: Path, ts: int, seed: int) -> dict:
    counts = np.bincount(ck.data.train.items, minlength=len(ck.item_ids))
    target = int(np.argsort(counts)[len(counts) // 2])  # an item of median popularity
    rng = np.random.default_rng(seed)
    item_ids = ck.item_ids.tolist()
    with Client(url) as c:
        for f in range(300):
            for i in [target, *rng.choice(len(item_ids), 4, replace=False).tolist()]:
                c.feedback(str(10_000_000 + f), "click", ts, item=str(item_ids[i]))  # ids of the model's type
    real = rng.choice(len(ck.user_ids), 1000, replace=False)

    def target_rank(model) -> tuple[float, float]:
        scorer = torch_scorer(model.eval())
        n = len(item_ids)
        s = scorer(np.repeat(real, n), np.tile(np.arange(n), len(real))).reshape(len(real), -1)
        ranks = (s > s[:, [target]]).sum(axis=1)
        return float(np.median(ranks)), float((ranks < 10).mean())

    before = target_rank(ck.model)
    out = {"target": item_ids[target], "target_interactions": int(counts[target]), "rank_before": before[0],
           "top10_before": before[1]}  # fmt: skip
    try:
        p = edgerec.update(ck, log)
    except GateFailed as e:
        return {**out, "gate": "refused", "why": "; ".join(e.gate.failures if e.gate else [str(e)])}
    after = target_rank(p.model)
    return {**out, "gate": "passed", "rank_after": after[0], "top10_after": after[1]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default=str(HERE / "runs" / "online"))
    ap.add_argument("--results", default=str(HERE / "results" / "online_loop.md"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    stream = drifting_stream(SyntheticConfig(seed=args.seed), rounds=args.rounds + 1)
    u0, i0, t0_ = stream[0]
    ds0 = leave_one_out(Interactions.from_raw(u0, i0, t0_), seed=args.seed, name="stream round 0")
    t0 = time.perf_counter()
    base = edgerec.train(ds0)
    base_s = time.perf_counter() - t0
    repo, log = work / "repo", work / "log"
    edgerec.export(base, export_config(load_profile("triton-cpu-onnx")), data=ds0, out=repo)
    rows, current = [], base
    bundle, _ = bundle_step(base, work, None, ds0)
    rng = np.random.default_rng(args.seed + 3)
    ts = int(time.time())
    http, grpc = free_ports(2)
    with TritonServer(repo, http_port=http, grpc_port=grpc, poll_seconds=1, log_dir=log) as server:
        for r in range(1, args.rounds + 1):
            sim = simulate(server.http_url, current, stream[r], args.workers, ts)
            t1 = time.perf_counter()
            try:
                child = edgerec.update(current, log, data=ds0 if current is base else None)
            except GateFailed as e:
                rows.append(
                    {"round": r, **sim, "gate": "refused: " + "; ".join(e.gate.failures if e.gate else [str(e)])}
                )
                continue
            update_s = time.perf_counter() - t1
            swap = rollout_under_load(server, repo, child, len(current.user_ids))  # users both versions know
            stale = next_metrics(base, stream[: r + 1], stream[r + 1], rng)
            fresh = next_metrics(child, stream[: r + 1], stream[r + 1], rng)
            bundle, phone = bundle_step(child, work, bundle)
            fb = child.report["lineage"]["feedback"]
            rows.append({"round": r, **sim, "update_s": update_s, **swap, "stale": stale, "updated": fresh,
                         "phone": phone, "seq": f"{fb['from_seq']}..{fb['through_seq']}", "gate": "passed",
                         "users": len(child.user_ids), "items": len(child.item_ids)})  # fmt: skip
            current = child
            print(json.dumps(rows[-1], default=float), flush=True)
        poison = poisoned(server.http_url, current, log, ts, seed=5)
        print(json.dumps(poison), flush=True)
    segments, _ = read_log(log)
    write_report(args, rows, poison, base_s, base, segments)
    return 0


def write_report(args, rows: list[dict], poison: dict, base_s: float, base, segments) -> None:
    lines = [
        "# The online loop: serve -> feedback -> update -> roll-out (synthetic drifting stream)",
        "",
        f"{provenance(sys.argv)}  ",
        f"Machine: {machine()}. Server, simulated users, updates and evaluation share these 2 cores.",
        "",
        f"World: `drifting_stream(SyntheticConfig(seed={args.seed}))`: {len(base.user_ids):,} users x "
        f"{len(base.item_ids):,} items in round 0, every later round +100 users, +40 items, ~8 interactions per user, "
        "tastes moved by 0.35. Base NeuMF-8 (edgerec defaults) trained on round 0 in "
        f"{base_s:.0f} s, served as a Triton repository (triton-cpu-onnx), polling every 1 s. The updates are "
        "`edgerec.update(model, LOG_DIR)` with the defaults (click + purchase positives), rolled out with "
        "`edgerec.rollout` under a concurrency-8 gRPC load.",
        "",
        "| round | impressions / clicks / purchases (cold users) | CTR | conversion | coverage | update s | "
        "roll-out s (export + verify + swap) | requests answered / failed during it | served after: version, "
        "users x items | log seq read | phone |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if row["gate"] != "passed":
            lines.append(f"| {row['round']} | {row['impressions']:,} / {row['clicks']:,} / {row['purchases']:,} | "
                         f"{row['ctr']:.4f} | | | | | | {row['gate']} | | |")  # fmt: skip
            continue
        lines.append(
            f"| {row['round']} | {row['impressions']:,} / {row['clicks']:,} / {row['purchases']:,} "
            f"({row['cold_users']}) | {row['ctr']:.4f} | {row['conversion']:.3f} | {row['coverage']:.3f} | "
            f"{row['update_s']:.0f} | {row['rollout_s']:.1f} | {row['answered']:,} / {row['failed']} | "
            f"v{row['version']}, {row['users']:,} x {row['items']:,} | {row['seq']} | {row['phone']} |"
        )
    lines += [
        "",
        "On the users' next interactions (round r + 1, round-0 users), the updated model against the stale base:",
        "",
        "| after round | model | HR@10 | NDCG@10 | (users) | precision@10 | recall@10 | F1@10 | (users) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if row["gate"] != "passed":
            continue
        for name in ("stale", "updated"):
            m = row[name]
            lines.append(
                f"| {row['round']} | {name} | {m['hr@10']:.4f} | {m['ndcg@10']:.4f} | {m['hr_users']:,} | "
                f"{m['precision@10']:.4f} | {m['recall@10']:.4f} | {m['f1@10']:.4f} | {m['users']:,} |"
            )
    lines += ["", "**Poisoned round** (300 fake users each click the target item and 4 random ones):", ""]
    if poison["gate"] == "refused":
        lines.append(f"- target item {poison['target']}: the gate refused the update: {poison['why']}")
    else:
        lines.append(
            f"- target item {poison['target']} ({poison['target_interactions']} interactions): the gate passed; "
            f"its median rank among 1,000 real users moved {poison['rank_before']:.0f} -> {poison['rank_after']:.0f}, "
            f"in their top-10 for {poison['top10_before']:.1%} -> {poison['top10_after']:.1%} of them (not rolled out)"
        )
    torn = sum(s.torn for s in segments)
    records = sum(len(s.records) for s in segments)
    lines += ["", f"Event log: {len(segments)} segment(s), {records:,} records, {torn} torn line(s). A kill -9 of "
              "the server mid-logging is tested in tests/test_online.py."]  # fmt: skip
    lines += ["", ML1M_NOTE]
    Path(args.results).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


ML1M_NOTE = """**ML-1M first attempt** (same machine, same day, one round, then stopped): the NCF split has no training
timestamps, so a seeded random 20 % of each user's training interactions (in 4 chunks) stood in for the future and
the base NeuMF-8 was trained on the other 80 % (9 min). Round 1: 6,040 impressions, 7,623 clicks, 51,976
purchases through the feedback model (CTR 0.126, 50 s); the update (34 s) kept the parent: fine-tuning never beat
epoch 0 on the new-data validation (tried lr 1e-4..3e-3, replay 1 and 3, L2 0 and 1e-3, up to 6 epochs: best
epoch 0 every time), so HR@10 on the next chunk was equal, 0.8061 / NDCG@10 0.5503 for both. The roll-out of that
version (77 s with export and verification) ran under the concurrency-8 load: 94,800 requests answered, 0 failed.
A random split of the same users' interactions is not drift: the stream above is."""


if __name__ == "__main__":
    sys.exit(main())
