"""Seconds from `edgerec add-items` to a served Triton repository answering with the new items (under load), and to
a phone bundle updated by a delta, on ML-1M with its item features.

    python benchmarks/new_items.py --model CKPT [--data ../shared/data/ml-1m-ncf] [--new 10] [--workers 8]

CKPT: an ML-1M NeuMF-8 trained with item features (`edgerec train --data D --user-features D/ml-1m.users.tsv
--item-features D/ml-1m.items.tsv --out CKPT`). Setup (not counted): the checkpoint exported as a Triton repository
(`edgerec export --target triton`) served by edgerec's TritonServer (repository polling every second) under a
closed-loop gRPC load, and as the int8 phone bundle the phones hold. The new items are `--new` ids the catalog has
never had, each described by the features of a seeded ML-1M movie (title, year, genres).

Each step is the user's own command in a fresh process, timed from outside:
  server: `edgerec add-items` -> `edgerec rollout REPO --model CKPT2` -> the server answers `score` for the new
          items with the new version (polled every 50 ms); requests answered / failed across the whole change;
  phone:  `edgerec add-items` (the same) -> `edgerec export --target tflite-bundle --precision int8` ->
          `edgerec delta` -> `edgerec apply-delta` on a copy of the phone's bundle; the patched bundle's scores are
          checked against the exported one.
Writes benchmarks/results/new_items.md and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

from edgerec.errors import EdgerecError
from edgerec.runtime import load_bundle
from edgerec.serving.client import Client
from edgerec.serving.env import find as find_server_env
from edgerec.serving.load import BackgroundLoad
from edgerec.serving.server import TritonServer, free_ports
from edgerec.sysinfo import machine, provenance

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "new_items.md"


def edgerec(*args: str) -> float:
    """Run one edgerec command in a fresh process; its wall seconds."""
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "edgerec.entry", "-q", *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"edgerec {' '.join(args)} failed: {done.stderr.strip()}")
    return time.perf_counter() - t


def new_items_file(items: Path, n: int, out: Path, seed: int = 0) -> list[str]:
    """n new ids, each with the features of a seeded ML-1M movie; the ids written."""
    lines = items.read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], lines[1:]
    picked = np.random.default_rng(seed).choice(len(rows), n, replace=False)
    ids = [str(100_000 + k) for k in range(n)]
    body = [f"{new}\t{rows[r].split(chr(9), 1)[1]}" for new, r in zip(ids, picked, strict=True)]
    out.write_text("\n".join([header, *body]) + "\n", encoding="utf-8")
    return ids


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "ml-1m-ncf")
    ap.add_argument("--new", type=int, default=10)
    ap.add_argument("--workers", type=int, default=8)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edgerec-new-items-"))
    try:
        out = run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    RESULTS.with_suffix(".json").write_text(json.dumps(out, indent=1) + "\n")
    RESULTS.write_text(report(out))
    print(RESULTS.read_text())
    return 0


def run(args: argparse.Namespace, work: Path) -> dict:
    data, ck, ck2 = str(args.data), str(args.model), str(work / "ck2")
    repo, b1, b2 = work / "repo", work / "bundle-v1", work / "bundle-v2"
    setup = {
        "export triton": edgerec("export", "--model", ck, "--data", data, "--target", "triton", "--out", str(repo)),
        "export bundle": edgerec("export", "--model", ck, "--data", data, "--target", "tflite-bundle",
                                 "--precision", "int8", "--out", str(b1)),
    }  # fmt: skip
    ids = new_items_file(args.data / "ml-1m.items.tsv", args.new, work / "new.tsv")
    n_items = len(json.loads((repo / "id_maps.json").read_text())["items"])
    fresh = np.arange(n_items, n_items + args.new)
    users = np.random.default_rng(1).integers(0, 6040, 20_000)
    http, grpc = free_ports(2)
    server = TritonServer(repo, http_port=http, grpc_port=grpc, env=find_server_env(), poll_seconds=1,
                          log_dir=work / "log")  # fmt: skip
    steps: dict[str, float] = {}
    with server, Client(server.http_url) as c, BackgroundLoad(server.grpc_url, "grpc", users, args.workers) as load:
        time.sleep(2.0)
        before = load.answered
        t0 = time.perf_counter()
        steps["add-items"] = edgerec("add-items", "--model", ck, "--items", str(work / "new.tsv"), "--out", ck2)
        steps["rollout"] = edgerec("rollout", str(repo), "--model", ck2, "--data", data)
        t_roll = time.perf_counter()
        while True:
            try:
                if c.served_versions() == ["2"]:
                    scores = c.score(np.arange(4), np.tile(fresh, (4, 1)))
                    break
            except EdgerecError:
                pass
            time.sleep(0.05)
        steps["until served"] = time.perf_counter() - t_roll
        total_server = time.perf_counter() - t0
        top = np.concatenate([c.recommend(np.arange(b, min(b + 64, 6040)))[0] for b in range(0, 6040, 64)])
        time.sleep(1.0)
    answered, failed = load.answered - before, load.failed
    shown = int(np.isin(top, fresh).any(axis=1).sum())

    t0 = time.perf_counter()
    phone = work / "phone"
    shutil.copytree(b1, phone)
    phone_steps = {
        "export bundle": edgerec("export", "--model", ck2, "--data", data, "--target", "tflite-bundle",
                                 "--precision", "int8", "--out", str(b2)),
        "delta": edgerec("delta", "--from", str(b1), "--to", str(b2), "--out", str(work / "delta")),
        "apply-delta": edgerec("apply-delta", "--bundle", str(phone), "--delta", str(work / "delta"),
                               "--out", str(phone)),
    }  # fmt: skip
    total_phone = steps["add-items"] + time.perf_counter() - t0
    record = json.loads((work / "delta" / "delta.json").read_text())
    vec = np.load(b2 / "user_vectors.npy")[:50]
    d = json.loads((b2 / "manifest.json").read_text())["user_vector_dims"]["gmf"]
    got, want = load_bundle(phone), load_bundle(b2)
    same = (
        all(np.array_equal(got.recommend(v[:d], v[d:])[0], want.recommend(v[:d], v[d:])[0]) for v in vec)
        and (phone / "model.tflite").read_bytes() == (b2 / "model.tflite").read_bytes()
    )
    ranks = new_item_ranks(Path(ck2), fresh)
    server_out = {
        "steps": steps,
        "total": total_server,
        "answered": answered,
        "failed": failed,
        "first_error": load.first_error,
        "new_item_scores_user0": scores[0].round(4).tolist(),
        "users_shown_a_new_item": shown,
        "best_new_item_rank": ranks,
        "workers": args.workers,
    }
    phone_out = {
        "steps": {"add-items": steps["add-items"], **phone_steps},
        "total": total_phone,
        "bundle_bytes": (b2 / "model.tflite").stat().st_size,
        "delta": {k: record[k] for k in ("format_version", "encoding", "patch_bytes", "model_bytes") if k in record},
        "patched_equals_export": same,
    }
    return {
        "machine": machine(),
        "provenance": provenance(sys.argv),
        "new_items": ids,
        "setup_seconds": setup,
        "server": server_out,
        "phone": phone_out,
    }


def new_item_ranks(ck2: Path, fresh: np.ndarray) -> dict[str, float]:
    """Where the new items land in every user's whole-catalog ranking by the grown checkpoint: per user the rank
    (1 = first) of the best new item; its median and the share of users with one in the top 10 / 100."""
    import edgerec as er
    from edgerec.model.training import torch_scorer

    grown = er.load(ck2)
    score = torch_scorer(grown.model)
    n_users, n_items = len(grown.user_ids), len(grown.item_ids)
    best = np.empty(n_users)
    for b in range(0, n_users, 256):
        users = np.arange(b, min(b + 256, n_users))
        s = score(np.repeat(users, n_items), np.tile(np.arange(n_items), len(users))).reshape(len(users), n_items)
        best[users] = 1 + (s > s[:, fresh].max(axis=1, keepdims=True)).sum(axis=1)
    shares = {f"top{k}": float((best <= k).mean()) for k in (10, 100)}
    return {"median": float(np.median(best)), **shares}


def report(out: dict) -> str:
    s, p = out["server"], out["phone"]
    r = s["best_new_item_rank"]
    lines = [
        "# New items: seconds from `edgerec add-items` to the server and to the phone (ML-1M, NeuMF-8 + features)",
        "",
        f"{out['provenance']}  ",
        f"Machine: {out['machine']}; one thread per process; every step a fresh `edgerec` process timed from outside.",
        f"New items: {len(out['new_items'])} ids the catalog never had, each described by a seeded ML-1M movie's "
        "title, year and genres. Setup, not counted: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in out["setup_seconds"].items())
        + ".",
        "",
        "## Server: a Triton repository under load",
        "",
        f"Closed-loop gRPC load ({s['workers']} workers) over the whole change; repository polled every second.",
        "",
        "| step | seconds |",
        "|---|---|",
        *(f"| `{k}` | {v:.1f} |" for k, v in s["steps"].items()),
        f"| **add-items -> served** | **{s['total']:.1f}** |",
        "",
        f"Requests the load sent from 2 s before `add-items` to after the check below (whole rounds of 20,000 "
        f"users): {s['answered']:,} answered, {s['failed']} failed. Once served, "
        f"{s['users_shown_a_new_item']:,} of the 6,040 users had a new item in their served top-10. In each user's "
        f"whole-catalog ranking by the grown checkpoint the best new item ranks {r['median']:.0f} at the median; "
        f"{r['top10']:.1%} of users have one in their top 10, {r['top100']:.1%} in their top 100 (train items not "
        "excluded).",
        "",
        "## Phone: the int8 bundle updated by a delta",
        "",
        "| step | seconds |",
        "|---|---|",
        *(f"| `{k}` | {v:.1f} |" for k, v in p["steps"].items()),
        f"| **add-items -> delta applied** | **{p['total']:.1f}** |",
        "",
        f"Delta: {p['delta'].get('encoding', 'ranges')} (format {p['delta']['format_version']}), "
        f"{p['delta']['patch_bytes']:,} bytes for a {p['bundle_bytes']:,}-byte model "
        f"({p['delta']['patch_bytes'] / p['bundle_bytes']:.2%}); the patched bundle equals the exported one "
        f"byte for byte and in its top-10: {p['patched_equals_export']}.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
