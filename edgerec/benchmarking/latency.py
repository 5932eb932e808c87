"""The benchmark harness: warm-up, a minimum measured time, percentiles from time.perf_counter_ns.

Imports numpy, the artifact's runtime and edgerec's torch-free modules only, so it runs on a device that has just
`pip install edgerec ai-edge-litert`.
"""

from __future__ import annotations

import contextlib
import os
import resource
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from edgerec.benchmarking.config import BenchConfig
from edgerec.data.align import align
from edgerec.data.interactions import load_id_maps
from edgerec.data.split import Dataset
from edgerec.errors import EdgerecError
from edgerec.io import write_json
from edgerec.sysinfo import machine

Count = Annotated[int, Field(ge=0)]
BENCH_HISTORY = 20  # a phone bundle's fold_in and explain are timed on a history of this many items (0..19)


def bench_history(max_history: int | None, n_items: int) -> np.ndarray:
    """The history (dense item indices 0..) a bundle's fold_in, fold_in_from and explain are timed on."""
    return np.arange(min(BENCH_HISTORY, max_history or BENCH_HISTORY, n_items - 1))


@dataclass
class BenchReport:
    """What `edgerec.bench` measured: `record` is the JSON document (bytes, load time, latency percentiles per batch,
    throughput, peak RSS, the machine, and HR@10 / NDCG@10 through the runtime when data was given)."""

    record: dict[str, Any]

    @property
    def latency_ms(self) -> dict[str, dict[str, float]]:
        """{batch or "catalog_top10": {"p50", "p90", "p99", "mean", "calls"}}."""
        return self.record["latency_ms"]

    @property
    def metrics(self) -> dict[str, float] | None:
        return self.record.get("metrics")

    def save(self, path: str | Path) -> Path:
        """Write the record as JSON, atomically."""
        write_json(path, self.record)
        return Path(path)


def timed(fn: Callable[[], Any], cfg: BenchConfig) -> dict[str, float]:
    """Call fn repeatedly: cfg.warmup unmeasured calls, then until both min_time_s and min_calls are reached.
    Returns latency percentiles and mean in milliseconds and the number of measured calls."""
    warm_until = time.perf_counter_ns() + int(cfg.warmup_s * 1e9)
    done = 0
    while done < cfg.warmup or time.perf_counter_ns() < warm_until:
        fn()
        done += 1
    samples: list[int] = []
    deadline = time.perf_counter_ns() + int(cfg.min_time_s * 1e9)
    while len(samples) < cfg.max_calls and (len(samples) < cfg.min_calls or time.perf_counter_ns() < deadline):
        t0 = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - t0)
    return summary(np.asarray(samples, dtype=np.float64) / 1e6)


def summary(ms: Any) -> dict[str, float]:
    """p50 / p90 / p99 / mean of call times in milliseconds, and how many calls (every bench record's form)."""
    a = np.asarray(ms, dtype=np.float64)
    return {
        "p50": float(np.percentile(a, 50)),
        "p90": float(np.percentile(a, 90)),
        "p99": float(np.percentile(a, 99)),
        "mean": float(a.mean()),
        "calls": int(a.size),
    }


@contextlib.contextmanager
def one_core(enabled: bool) -> Iterator[int | None]:
    """Keep a one-thread measurement on one CPU (Linux): migrations between cores add run-to-run noise. The
    previous affinity is restored afterwards."""
    if not enabled or not hasattr(os, "sched_setaffinity"):
        yield None
        return
    before = os.sched_getaffinity(0)
    cpu = max(before)
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, before)


def peak_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1 << 20) if sys.platform == "darwin" else rss / 1024  # bytes on macOS, KiB on Linux


def bench_scorer(scorer: Any, buckets: list[int], cfg: BenchConfig) -> dict[str, Any]:
    """Latency per batch size through scorer.score (ids checked, request cut into the runtime's buckets), and the
    whole catalog for one user with its top-10 taken (scorer.top_k)."""
    n_items = scorer.n_items
    latency, items_per_s = {}, {}
    for b in buckets:
        users = np.full(b, cfg.user, dtype=np.int32)
        items = (np.arange(b) % n_items).astype(np.int32)
        latency[str(b)] = stats = timed(lambda u=users, i=items: scorer.score(u, i), cfg)
        items_per_s[str(b)] = b / (stats["mean"] / 1e3)
    top = timed(lambda: scorer.top_k(cfg.user, 10), cfg)
    latency["catalog_top10"] = top
    items_per_s["catalog_top10"] = n_items / (top["mean"] / 1e3)
    out: dict[str, Any] = {"latency_ms": latency, "items_per_s": items_per_s}
    if getattr(scorer, "retrieve_runner", None) is not None:  # a phone bundle with the two-stage path
        ug, um = scorer.user(cfg.user)
        latency["retrieve"] = timed(lambda: scorer.retrieve(ug), cfg)
        latency["two_stage_top10"] = timed(lambda: scorer.two_stage(ug, um), cfg)
        out["two_stage"] = two_stage_recall(scorer)
    if getattr(scorer, "fold_in_runner", None) is not None:  # a phone bundle with its on-device functions
        history = bench_history(scorer.max_history, scorer.n_items)
        latency["fold_in"] = timed(lambda: scorer.fold_in(history), cfg)
        ug, um = scorer.fold_in(history)
        top = scorer.recommend(ug, um)[0]
        latency["explain"] = timed(lambda: scorer.explain(ug, um, history, top), cfg)
    if getattr(scorer, "user_features_runner", None) is not None:  # a bundle with user features: a cold user
        indices, weights, _ = scorer.encode_user({})  # every attribute missing: the same work as any other user
        latency["user_features"] = timed(lambda: scorer.user_features(indices, weights), cfg)
        if getattr(scorer, "fold_in_from_runner", None) is not None:
            start = scorer.user_features(indices, weights)
            history = bench_history(scorer.max_history, scorer.n_items)
            latency["fold_in_from"] = timed(lambda: scorer.fold_in(history, start), cfg)
    return out


TWO_STAGE_USERS = 200


def two_stage_recall(scorer: Any, users: int = TWO_STAGE_USERS, seed: int = 0) -> dict[str, Any]:
    """Recall@K of the two-stage top-K against the exhaustive top-K (recommend over the whole catalog; for a
    shortlist bundle, `score` over every item) of the same bundle, over a seeded sample of users (train items are not
    excluded by either: the phone's own view)."""
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(scorer.n_users, size=min(users, scorer.n_users), replace=False))
    hits = []
    for u in sample:
        ug, um = scorer.user(int(u))
        if getattr(scorer, "shortlist", 0):
            exhaustive = scorer.recommend_from(ug, um, np.arange(scorer.n_items))[0]
        else:
            exhaustive = scorer.recommend(ug, um)[0]
        staged = scorer.two_stage(ug, um)[0]
        hits.append(len(np.intersect1d(exhaustive, staged)) / len(exhaustive))
    return {"candidates": scorer.candidates, "users": len(sample), "recall@k": float(np.mean(hits)), "k": scorer.k}


def bench_artifact(folder: str | Path, cfg: BenchConfig = BenchConfig(), ds: Dataset | None = None) -> dict:
    """The bench record of an artifact: bytes, load time, latency per bucket, throughput, peak RSS and, with data,
    HR@10 / NDCG@10 measured through the artifact's runtime. cfg.client "web": a phone bundle run by the web client
    (bench_web): latency, load time and downloaded bytes."""
    from edgerec.metrics import evaluate
    from edgerec.runtime import load_scorer

    folder = Path(folder)
    if cfg.client == "web":
        if ds is not None:
            raise EdgerecError(
                "the web client is benchmarked for latency, load time and bytes; measure HR@10 through the same "
                "model.tflite with the python client (the default)"
            )
        return bench_web(folder, cfg)
    t0 = time.perf_counter_ns()
    scorer = load_scorer(folder, threads=cfg.threads)  # includes verifying every file's sha256
    load_ms = (time.perf_counter_ns() - t0) / 1e6
    m = scorer.manifest
    if ds is not None and (folder / "id_maps.json").is_file():
        ds = align(ds, *load_id_maps(folder / "id_maps.json"), str(folder))[0]
    if ds is not None and (ds.n_users, ds.n_items) != (scorer.n_users, scorer.n_items):
        raise EdgerecError(
            f"the data ({ds.n_users} users, {ds.n_items} items) is not the data {folder} was exported for "
            f"({scorer.n_users} users, {scorer.n_items} items)"
        )
    if ds is not None and m.get("data", {}).get("fingerprint") not in (None, ds.fingerprint()):
        raise EdgerecError(f"the data's fingerprint differs from the one in {folder}/manifest.json")
    buckets = sorted({*(cfg.buckets or m.get("buckets") or (1, 1000, scorer.n_items)), *cfg.also})
    record: dict[str, Any] = {
        "artifact": str(folder),
        "target": m.get("target"),
        "precision": m.get("precision"),
        "runtime": scorer.runtime,
        "profile": m.get("profile", {}).get("name") if isinstance(m.get("profile"), dict) else None,
        "machine": machine(),
        "config": asdict(cfg),
        "bytes": int(m["files"][m["model_file"]]["bytes"]),
        "load_ms": load_ms,
    }
    with one_core(cfg.threads == 1) as cpu:
        record.update(bench_scorer(scorer, buckets, cfg), pinned_cpu=cpu)
    record["peak_rss_mb"] = peak_rss_mb()
    if ds is not None:
        res = evaluate(scorer, ds)
        record["metrics"] = {k: res[k] for k in ("hr@10", "ndcg@10", "full_hr@10", "full_ndcg@10")}
    return record


def page_options(cfg: BenchConfig, history: Any) -> dict[str, Any]:
    """cfg's loop (warm-up, minimum time and calls) as the web page's bench takes it, and the history (dense item
    indices) its user is folded in from."""
    return {
        "warmup": cfg.warmup,
        "warmupMs": cfg.warmup_s * 1e3,
        "minCalls": cfg.min_calls,
        "minMs": cfg.min_time_s * 1e3,
        "maxCalls": cfg.max_calls,
        "history": [int(i) for i in history],
    }


def bench_web(folder: Path, cfg: BenchConfig) -> dict[str, Any]:
    """The bench record of a phone bundle run by the web client (`edgerec app web`'s site, LiteRT.js in headless
    Chromium on this machine, edgerec.apps.browser): each signature the page calls timed in the page under cfg's
    loop, "catalog_top10" being recommend (one user against the catalog, top-K in the graph); the page's load time
    and the bytes a first visit downloads ("bytes": what a web profile's budget counts)."""
    from edgerec.apps.browser import PageTimings
    from edgerec.apps.web import LITERTJS_VERSION
    from edgerec.manifest import read_manifest
    from edgerec.runtime.config import check_table_format

    if cfg.threads != 1:
        raise EdgerecError(
            f"the web client runs LiteRT.js's single-threaded WebAssembly build; threads must be 1 (got {cfg.threads})"
        )
    m = read_manifest(folder, verify=False)
    table = ((m.get("quantization") or {}).get("item_table") or {}).get("format", "int8")
    check_table_format(table, "LiteRT.js")
    history = bench_history(m.get("max_history"), int(m["n_items"]))
    page = PageTimings.run(folder, page_options(cfg, history))
    latency = {("catalog_top10" if name == "recommend" else name): summary(ms) for name, ms in page.ms.items()}
    return {
        "artifact": str(folder),
        "target": m.get("target"),
        "precision": m.get("precision"),
        "runtime": f"LiteRT.js {LITERTJS_VERSION} (WebAssembly) in headless Chromium {page.chromium}",
        "client": "web",
        "profile": None,
        "machine": machine(),
        "config": asdict(cfg),
        "bytes": page.downloaded_bytes,
        "model_bytes": int(m["files"][m["model_file"]]["bytes"]),
        "site_bytes": page.site_bytes,
        "load_ms": float(sum(page.load_ms.values())),
        "load_parts_ms": page.load_ms,
        "cross_origin_isolated": page.cross_origin_isolated,
        "latency_ms": latency,
        "items_per_s": {"catalog_top10": int(m["n_items"]) / (latency["catalog_top10"]["mean"] / 1e3)},
    }
