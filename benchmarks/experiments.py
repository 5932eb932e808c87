"""Experiments served by Triton, in a simulated world whose tastes drift (edgerec.data.synthetic.drifting_world).

    python benchmarks/experiments.py [--seed 0] [--hours 48] [--sessions 3]

1. A/B through a live Triton server on 127.0.0.1: arm A (control, served) is a NeuMF-8 trained on round 0 of the
   drifting stream; arm B (the candidate) one trained on rounds 0-2 (fresher). The experiment runs in round 3:
   `edgerec.experiment_start(traffic=0.5)`, then the round-0 users arrive over --hours simulated hours (--sessions
   per user on average); each session asks the `experiment` router for a top-10 (gRPC), logs the impression with the
   version that answered, and clicks each shown item with probability sigmoid(true affinity - c), the true affinity
   being the world's round-3 preference (c puts arm A's expected clicks per impression at --ctr). The report of the
   event log (edgerec.experiment_report, hourly looks) is set beside the true lift: every user's expected clicks per
   impression under both models' top-10, from the true preferences.
2. A/A over 20 seeds: the same model in both arms. The statistics run on simulated event records (the same
   sessions and click model, arms from the same hash), without the server: how often a winner is declared.
3. A broken split: records whose arm is a coin with P(B) = 0.6 while the report expects 0.5 (without the server):
   the sample-ratio check.
4. Shadow: the live p99 under the same closed-loop load (gRPC, --concurrency clients) with the served version alone
   (`recommend`), through the router with no shadow (A/B, traffic 1e-4), through the router with the fresher model
   as a shadow, and with a shadow candidate whose model raises on every request: failed live requests.

Writes benchmarks/results/experiments.md (and .json).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch

import edgerec
from edgerec.data.align import index_of
from edgerec.data.interactions import Interactions
from edgerec.data.split import leave_one_out
from edgerec.data.synthetic import SyntheticConfig, drifting_stream, drifting_world
from edgerec.errors import EdgerecError
from edgerec.experiments.assign import arm
from edgerec.experiments.report import experiment_report
from edgerec.manifest import read_manifest, write_manifest
from edgerec.model.training import torch_scorer
from edgerec.serving.client import Client
from edgerec.serving.server import TritonServer, free_ports
from edgerec.sysinfo import machine, provenance

HERE = Path(__file__).resolve().parent
ROUNDS = 3  # the experiment runs in round 3 of the stream


def top10(ck, users: np.ndarray) -> np.ndarray:
    """[len(users), 10] original item ids of each user's top-10 (dense user indices of `ck`)."""
    scorer = torch_scorer(ck.model.eval())
    n = len(ck.item_ids)
    out = []
    for s in range(0, len(users), 256):
        u = users[s : s + 256]
        scores = scorer(np.repeat(u, n), np.tile(np.arange(n), len(u))).reshape(len(u), n)
        out.append(np.argsort(-scores, axis=1, kind="stable")[:, :10])
    return ck.item_ids[np.concatenate(out)].astype(np.int64)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def click_offset(truth: np.ndarray, users: np.ndarray, lists: np.ndarray, ctr: float) -> float:
    """c such that the expected clicks per shown item of `lists` is `ctr` (bisection)."""
    aff = truth[users[:, None], lists]
    lo, hi = -50.0, 50.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if sigmoid(aff - mid).mean() > ctr else (lo, mid)
    return (lo + hi) / 2


def sessions(rng: np.random.Generator, n_users: int, hours: int, per_user: float) -> list[tuple[int, int]]:
    """(hour, user index) of every session, in time order: each user arrives at a uniform hour, then returns with
    a geometric number of further sessions spread over the hours after."""
    out = []
    for u in range(n_users):
        first = int(rng.integers(0, hours))
        more = int(rng.geometric(1.0 / per_user)) - 1
        out += [(first, u)] + [(int(rng.integers(first, hours)), u) for _ in range(more)]
    return sorted(out)


def simulated_records(rng, plan, users, ids, lists, truth, c, in_b, t0) -> list[dict]:
    """Event records of `plan` without a server: arm B users see lists[1], the others lists[0]."""
    records = []
    for hour, u in plan:
        b = in_b(u)
        shown = lists[int(b)][u]
        ts = t0 + hour * 3600 + int(rng.integers(0, 3600))
        v = "2" if b else "1"
        records.append({"user": ids[u], "event": "impression", "ts": ts, "version": v,
                        "shown": [str(i) for i in shown]})  # fmt: skip
        for i in shown[rng.random(10) < sigmoid(truth[users[u], shown] - c)]:
            records.append({"user": ids[u], "event": "click", "ts": ts + 5, "version": v, "item": str(i)})
    return records


def ab_on_server(args, work: Path, ck_a, ds_a, ck_b, ds_b, truth, c, env) -> dict:
    repo, log = work / "ab-repo", work / "ab-log"
    edgerec.export(ck_a, edgerec.ExportConfig(target="triton"), data=ds_a, out=repo)
    t_start = time.perf_counter()
    edgerec.experiment_start(repo, ck_b, edgerec.ExperimentConfig(traffic=0.5, salt=f"ab{args.seed}"), ds_b)
    start_s = time.perf_counter() - t_start
    users = np.arange(len(ck_a.user_ids))
    originals = ck_a.user_ids.astype(np.int64)
    plan = sessions(np.random.default_rng(args.seed + 11), len(users), args.hours, args.sessions)
    rng = np.random.default_rng(args.seed + 12)
    t0 = int(time.time()) - args.hours * 3600 - 600
    http, grpc = free_ports(2)
    counts = {"sessions": 0, "clicks": 0, "failed": 0}
    t_sim = time.perf_counter()
    server = TritonServer(repo, http_port=http, grpc_port=grpc, env=env, log_dir=log)
    with server, Client(server.grpc_url, "grpc") as c_rec, Client(server.http_url) as c_fb:
        for hour, u in plan:
            ts = t0 + hour * 3600 + int(rng.integers(0, 3000))  # within the log's out-of-order bound
            try:
                a = c_rec.recommend_experiment([u])
            except EdgerecError:
                counts["failed"] += 1
                continue
            v, shown = int(a.versions[0]), a.item_ids[0].astype(np.int64)
            uid = str(originals[u])
            c_fb.feedback(uid, "impression", ts, shown=[str(i) for i in shown], version=v)
            for i in shown[rng.random(10) < sigmoid(truth[originals[u], shown] - c)]:
                c_fb.feedback(uid, "click", ts + 5, item=str(i), version=v)
                counts["clicks"] += 1
            counts["sessions"] += 1
    sim_s = time.perf_counter() - t_sim
    rep = edgerec.experiment_report(log, ("1", "2"), edgerec.ExperimentConfig(traffic=0.5, salt=f"ab{args.seed}"))
    decided_look = next((lk for lk in rep.looks if lk.ts == rep.decided_at), None)
    return {
        "start_s": start_s,
        "simulate_s": sim_s,
        **counts,
        "report": rep.to_json(),
        "decided_hour": None if rep.decided_at is None else (rep.decided_at - t0) / 3600,
        "decided_users": None if decided_look is None else list(decided_look.users),
        "message": rep.message,
    }


def aa_and_broken(args, ck_a, truth, c) -> dict:
    users = np.arange(len(ck_a.user_ids))
    originals = ck_a.user_ids.astype(np.int64)
    ids = [str(x) for x in originals]
    lists_a = top10(ck_a, users)
    t0 = 1_700_000_000
    aa = []
    for seed in range(20):
        rng = np.random.default_rng(1000 + seed)
        plan = sessions(rng, len(users), args.hours, args.sessions)
        salt = f"aa{seed}"
        records = simulated_records(rng, plan, originals, ids, (lists_a, lists_a), truth, c,
                                    lambda u, s=salt: arm(ids[u], s, 0.5) == "B", t0)  # fmt: skip
        rep = experiment_report(records, ("1", "2"), edgerec.ExperimentConfig(salt=salt))
        aa.append({"seed": seed, "decision": rep.decision, "p": rep.p_value, "srm_p": rep.srm_p,
                   "users": [a.users for a in rep.arms]})  # fmt: skip
    rng = np.random.default_rng(77)
    plan = sessions(rng, len(users), args.hours, args.sessions)
    coin = {u: bool(rng.random() < 0.6) for u in range(len(users))}
    records = simulated_records(rng, plan, originals, ids, (lists_a, lists_a), truth, c, coin.__getitem__, t0)
    rep = experiment_report(records, ("1", "2"), edgerec.ExperimentConfig(traffic=0.5))
    broken = {"users": [a.users for a in rep.arms], "srm_chi2": rep.srm_chi2, "srm_p": rep.srm_p,
              "flagged": rep.srm_flagged, "decision": rep.decision, "message": rep.message}  # fmt: skip
    return {"aa": aa, "broken": broken}


def closed_loop(url: str, n_users: int, method: str, concurrency: int, requests: int, seed: int) -> dict:
    """`requests` calls split over `concurrency` gRPC clients, each waiting for its answer: latencies, failures."""
    lat: list[float] = []
    failed: list[str] = []
    lock = threading.Lock()

    def worker(w: int) -> None:
        rng = np.random.default_rng(seed + w)
        with Client(url, "grpc") as c:
            call = getattr(c, method)
            for _ in range(requests // concurrency):
                u = [int(rng.integers(0, n_users))]
                t = time.perf_counter()
                try:
                    call(u)
                except EdgerecError as e:
                    with lock:
                        failed.append(str(e))
                    continue
                with lock:
                    lat.append((time.perf_counter() - t) * 1e3)

    with Client(url, "grpc") as c:  # warm-up
        for u in range(50):
            getattr(c, method)([u % n_users])
    threads = [threading.Thread(target=worker, args=(w,)) for w in range(concurrency)]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    a = np.array(lat)
    return {"answered": len(a), "failed": len(failed), "first_error": failed[0] if failed else None,
            "p50": float(np.percentile(a, 50)), "p90": float(np.percentile(a, 90)),
            "p99": float(np.percentile(a, 99)), "rps": len(a) / wall}  # fmt: skip


def break_candidate(repo: Path, version: int) -> None:
    """The candidate's model.py raises on every request (the manifest re-hashed, as if shipped so)."""
    path = repo / "recommend" / str(version) / "model.py"
    text = path.read_text().replace(
        "    def execute(self, requests: list[Any]) -> list[Any]:\n",
        "    def execute(self, requests: list[Any]) -> list[Any]:\n        raise RuntimeError('candidate broken')\n",
    )
    path.write_text(text)
    m = read_manifest(repo, verify=False)
    write_manifest(repo, {k: v for k, v in m.items() if k not in ("files", "format", "format_version")})


def shadow_latency(args, work: Path, ck_a, ds_a, ck_b, ds_b, env) -> list[dict]:
    base = work / "shadow-base"
    edgerec.export(ck_a, edgerec.ExportConfig(target="triton"), data=ds_a, out=base)
    setups = {}
    for name in ("router", "shadow", "broken"):
        repo = work / f"shadow-{name}"
        shutil.copytree(base, repo)
        if name == "router":
            cfg = edgerec.ExperimentConfig(traffic=1e-4, salt="none")
            edgerec.experiment_start(repo, ck_b, cfg, ds_b)
        else:
            edgerec.experiment_shadow(repo, ck_b, edgerec.ExperimentConfig(), ds_b)
        if name == "broken":
            break_candidate(repo, 2)
        setups[name] = repo
    rows = []
    plan = [("alone", base, "recommend"), ("router, no shadow", setups["router"], "recommend_experiment"),
            ("router + shadow", setups["shadow"], "recommend_experiment"),
            ("router + shadow that raises", setups["broken"], "recommend_experiment")]  # fmt: skip
    for rep in range(args.repeats):
        for name, repo, method in plan:
            http, grpc = free_ports(2)
            shadow_log = work / f"shadow-{rep}-{name.replace(' ', '_')}.jsonl"
            with TritonServer(repo, http_port=http, grpc_port=grpc, env=env, shadow_log=shadow_log) as server:
                got = closed_loop(server.grpc_url, len(ck_a.user_ids), method, args.concurrency, args.requests, rep)
                time.sleep(1.0)
            row = {"setup": name, "pass": rep + 1, **got}
            if "shadow" in name and shadow_log.is_file():
                s = edgerec.shadow_report(shadow_log)
                row |= {"shadowed": s.users, "shadow_errors": s.errors, "dropped": s.dropped, "overlap": s.overlap,
                        "shadow_p50": s.latency_ms["p50"], "shadow_p99": s.latency_ms["p99"],
                        "shadow_error": s.first_error}  # fmt: skip
            rows.append(row)
            print(json.dumps(row, default=float), flush=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hours", type=int, default=48)
    ap.add_argument("--sessions", type=float, default=3.0, help="sessions per user on average")
    ap.add_argument("--ctr", type=float, default=0.05, help="arm A's expected clicks per shown item")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--requests", type=int, default=2000, help="per latency row")
    ap.add_argument("--repeats", type=int, default=2, help="passes over the latency rows")
    ap.add_argument("--work", default=str(HERE / "runs" / "experiments"))
    ap.add_argument("--results", default=str(HERE / "results" / "experiments.md"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    from edgerec.serving.env import find

    env = find()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    cfg = SyntheticConfig(seed=args.seed)
    stream = drifting_stream(cfg, rounds=ROUNDS)
    world = drifting_world(cfg, rounds=ROUNDS)
    truth = world.logits(ROUNDS)  # the true preferences while the experiment runs

    def data(rounds: range, name: str):
        u, i, t = (np.concatenate([stream[r][k] for r in rounds]) for k in range(3))
        return leave_one_out(Interactions.from_raw(u, i, t), seed=args.seed, name=name)

    t = time.perf_counter()
    ds_a, ds_b = data(range(1), "stream round 0"), data(range(ROUNDS), "stream rounds 0-2")
    ck_a = edgerec.train(ds_a, edgerec.TrainConfig(seed=args.seed))
    ck_b = edgerec.train(ds_b, edgerec.TrainConfig(seed=args.seed))
    train_s = time.perf_counter() - t
    users = np.arange(len(ck_a.user_ids))
    originals = ck_a.user_ids.astype(np.int64)
    lists_a = top10(ck_a, users)
    lists_b = top10(ck_b, index_of(ck_b.user_ids, ck_a.user_ids))
    c = click_offset(truth, originals, lists_a, args.ctr)
    true = [float(sigmoid(truth[originals[:, None], lst] - c).sum(axis=1).mean()) for lst in (lists_a, lists_b)]
    truth_row = {"clicks_per_impression": true, "lift": true[1] / true[0] - 1, "c": c, "train_s": train_s,
                 "users": len(users), "items": [len(ck_a.item_ids), len(ck_b.item_ids)],
                 "hr": [ck_a.metrics.get("hr@10"), ck_b.metrics.get("hr@10")]}  # fmt: skip
    print(json.dumps(truth_row), flush=True)
    ab = ab_on_server(args, work, ck_a, ds_a, ck_b, ds_b, truth, c, env)
    print(json.dumps({k: v for k, v in ab.items() if k != "report"}, default=float), flush=True)
    stats = aa_and_broken(args, ck_a, truth, c)
    print(json.dumps(stats["broken"], default=float), flush=True)
    latency = shadow_latency(args, work, ck_a, ds_a, ck_b, ds_b, env)
    out = {"truth": truth_row, "ab": ab, **stats, "latency": latency, "args": vars(args)}
    Path(args.results).with_suffix(".json").write_text(json.dumps(out, indent=1, default=float))
    write_report(args, out)
    return 0


def write_report(args, out: dict) -> None:
    tr, ab, rep = out["truth"], out["ab"], out["ab"]["report"]
    aa = out["aa"]
    wins = [r for r in aa if r["decision"] in ("A", "B")]
    lines = [
        "# Experiments served by Triton: A/B, A/A, a broken split, shadow",
        "",
        f"{provenance(sys.argv)}  ",
        f"Machine: {machine()}. Triton 2.51 (python backend), the simulated users, training and the statistics share "
        "these 2 cores (other work ran beside them).",
        "",
        f"World: `drifting_world(SyntheticConfig(seed={args.seed}), rounds={ROUNDS})`: tastes move every round. Arm A "
        f"(control, served): NeuMF-8 (edgerec defaults) trained on round 0 ({tr['items'][0]} items, HR@10 "
        f"{tr['hr'][0]:.3f} on its own split); arm B (candidate): trained on rounds 0-2 ({tr['items'][1]} items, HR@10 "
        f"{tr['hr'][1]:.3f}). The experiment runs in round 3: the {tr['users']:,} round-0 users arrive over "
        f"{args.hours} simulated hours, {args.sessions:g} sessions each on average; a session is one top-10 from the "
        "`experiment` router (gRPC), its impression logged with the answering version through the `feedback` model "
        "(HTTP), and a click on each shown item with probability sigmoid(true affinity - c), the affinity being the "
        f"world's round-3 preference and c = {tr['c']:.2f} putting arm A at {args.ctr:.0%} per shown item. Training "
        f"both arms took {tr['train_s']:.0f} s.",
        "",
        "## A/B through a live server",
        "",
        f"`edgerec.experiment_start(traffic=0.5)` (export, verification, router) took {ab['start_s']:.1f} s; "
        f"{ab['sessions']:,} sessions and {ab['clicks']:,} clicks in {ab['simulate_s']:.0f} s, {ab['failed']} failed "
        "requests.",
        "",
        "| | clicks per impression, true (every user, both models' top-10) | measured (report) | users |",
        "|---|---|---|---|",
    ]
    for n, a in enumerate(rep["arms"]):
        ci = f"[{a['ctr_interval'][0]:.4f}, {a['ctr_interval'][1]:.4f}]"
        lines.append(f"| {a['arm']} (version {a['version']}) | {tr['clicks_per_impression'][n]:.4f} | "
                     f"{a['ctr']:.4f} {ci} | {a['users']:,} |")  # fmt: skip
    lo, hi = rep["always_valid_interval"]
    decided = (
        f"reached at hour {ab['decided_hour']:.0f} of {args.hours} (users per arm then: {ab['decided_users']})"
        if ab["decided_hour"] is not None
        else "not reached"
    )
    lines += [
        "",
        f"True lift of B over A: **{tr['lift']:+.1%}**; measured {rep['relative']:+.1%} (difference "
        f"{rep['difference']:+.4f}, always-valid 95 % interval [{lo:+.4f}, {hi:+.4f}]). Decision: **{ab['message']}**, "
        f"{decided}. Sample ratio p = {rep['srm_p']:.3g}.",
        "",
        "## A/A: the same model in both arms, 20 seeds (simulated records, no server)",
        "",
        "The same sessions and click model, arms from the same hash (salt per seed), arm A's top-10 shown in both; "
        "the statistics of `edgerec experiment report` on those records, without the server (20 server runs would "
        "take ~20 times the A/B's time and test the same statistics).",
        "",
        f"Winners declared: **{len(wins)} of 20** ({len(wins) / 20:.0%}; alpha 5 %); smallest always-valid p "
        f"{min(r['p'] for r in aa):.3f}; sample-ratio flags: {sum(r['srm_p'] < 0.001 for r in aa)}.",
        "",
        "## A broken split (simulated records, no server)",
        "",
        f"Arms by a coin with P(B) = 0.6, the report told 0.5: users {out['broken']['users']}, chi-square "
        f"{out['broken']['srm_chi2']:.1f}, p = {out['broken']['srm_p']:.2g}: flagged **{out['broken']['flagged']}**; "
        f"decision `{out['broken']['decision']}` ({out['broken']['message']}).",
        "",
        "## Shadow: live latency under the same load",
        "",
        f"Closed loop, {args.concurrency} gRPC clients, {args.requests:,} requests per row (one user each, uniform), "
        "a fresh server per row; the latency is the client's. `alone`: the served version's `recommend`, no "
        "experiment; `router, no shadow`: the `experiment` router in A/B mode with traffic 1e-4 (everyone on A, the "
        "extra BLS hop); `router + shadow`: arm B's model scoring every request in the router's background thread; "
        "`... that raises`: a candidate whose model.py raises on every request.",
        "",
        "| setup | pass | answered | failed | p50 ms | p90 ms | p99 ms | req/s | shadowed / errors / dropped | "
        "overlap@10 | shadow call p50 / p99 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in out["latency"]:
        sh = f"{r['shadowed']:,} / {r['shadow_errors']:,} / {r['dropped']:,}" if "shadowed" in r else ""
        ov = f"{r['overlap']:.3f}" if "shadowed" in r and r["overlap"] == r["overlap"] else ""
        sl = f"{r['shadow_p50']:.2f} / {r['shadow_p99']:.2f}" if "shadowed" in r else ""
        lines.append(f"| {r['setup']} | {r['pass']} | {r['answered']:,} | {r['failed']} | {r['p50']:.2f} | "
                     f"{r['p90']:.2f} | {r['p99']:.2f} | {r['rps']:.0f} | {sh} | {ov} | {sl} |")  # fmt: skip
    broken_err = next((r.get("shadow_error") for r in out["latency"] if r["setup"].endswith("raises")), None)
    lines += ["", f"The raising candidate's logged error: `{broken_err}`.", ""]
    Path(args.results).write_text("\n".join(lines))
    print(f"wrote {args.results}")


if __name__ == "__main__":
    raise SystemExit(main())
