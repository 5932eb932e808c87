"""The server model in onnxruntime against PyTorch eager, then the Triton repository served by a real Triton.

    python benchmarks/serving.py [--model benchmarks/runs/neumf8] [--rounds 5] [--users 64] [--requests 3000]

Part 1, in process:
Exports the teacher as `onnx-server` fp32 and fp16 (users in, top-10 over the catalog out, item side folded) and as
the pair-scoring `onnx` fp32 artifact, each verified at export against the fp32 model. Then, pinned to one core and
interleaved over --rounds rounds: one user's catalog top-10 per call, and a batch of --users users per call
(recommendations for many users at once, as a server batches requests). The table gives the median over rounds of
each percentile; the speed-up is the median of the per-round p50 ratios against PyTorch eager (the full NeuMF over
the catalog + torch.topk). Also measured: int8 for this graph (onnxruntime's static QDQ quantization, per-channel,
calibrated on 256 users), to say whether int8 is worth offering on the CPU backend.

Part 2, served: the teacher exported with the triton-cpu-onnx profile's settings, started with `edgerec serve`'s
TritonServer on 127.0.0.1 (the server environment of `edgerec serve --setup`), checked (the top-10 of --check users
through the server against the repository's local scorer), then loaded by the closed-loop generator over HTTP and
gRPC at concurrency 1, 8 and 32, --requests requests each, on one seeded request stream; beside it, in this process
and on the same stream, PyTorch eager and the onnxruntime scorer at concurrency 1 and 8 (threads). Server, clients
and the in-process scorers share the machine's 2 cores: nothing is pinned in part 2. Writes
benchmarks/results/serving.md and serving.png (latency against throughput).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch

import edgerec
from edgerec.benchmarking.config import BenchConfig
from edgerec.benchmarking.eager import TorchEager
from edgerec.benchmarking.latency import one_core, timed
from edgerec.runtime import load_scorer
from edgerec.sysinfo import machine, provenance

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data" / "ml-1m-ncf"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(HERE / "runs" / "neumf8"))
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--users", type=int, default=64)
    ap.add_argument("--work", default=str(HERE / "runs" / "serving"))
    ap.add_argument("--results", default=str(HERE / "results" / "serving.md"))
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--check", type=int, default=1000)
    args = ap.parse_args()
    torch.set_num_threads(1)
    ck = edgerec.load(args.model)
    ds = edgerec.dataset(args.data)
    work = Path(args.work)
    exports = {}
    for name, target, precision in (("server-fp32", "onnx-server", "fp32"), ("server-fp16", "onnx-server", "fp16"),
                                    ("onnx-fp32", "onnx", "fp32")):  # fmt: skip
        art = edgerec.export(ck, edgerec.ExportConfig(target=target, precision=precision), data=ds, out=work / name)
        exports[name] = art
    eager = TorchEager(ck.model, 1)
    scorers = {name: load_scorer(art.folder, threads=1) for name, art in exports.items()}
    rng = np.random.default_rng(0)
    batch = rng.choice(ds.n_users, size=args.users, replace=False)
    all_items = np.arange(ds.n_items)

    def eager_batch() -> None:
        with torch.inference_mode():
            u = torch.from_numpy(np.repeat(batch, ds.n_items))
            s = ck.model(u, torch.from_numpy(np.tile(all_items, len(batch)))).view(len(batch), -1)
            torch.topk(s, 10, dim=1)

    def onnx_batch(scorer) -> None:  # the pair-scoring artifact: every (user, item) pair, then top-10 per user
        s = scorer.score(np.repeat(batch, ds.n_items), np.tile(all_items, len(batch))).reshape(len(batch), -1)
        np.argpartition(-s, 10, axis=1)

    cases = {
        "one user, catalog top-10": {
            "pytorch eager fp32": lambda: eager.top_k(7, 10),
            "onnx (pairs) fp32": lambda: scorers["onnx-fp32"].top_k(7, 10),
            "onnx-server fp32": lambda: scorers["server-fp32"].recommend([7]),
            "onnx-server fp16": lambda: scorers["server-fp16"].recommend([7]),
        },
        f"{args.users} users per call, top-10 each": {
            "pytorch eager fp32": eager_batch,
            "onnx (pairs) fp32": lambda: onnx_batch(scorers["onnx-fp32"]),
            "onnx-server fp32": lambda: scorers["server-fp32"].recommend(batch),
            "onnx-server fp16": lambda: scorers["server-fp16"].recommend(batch),
        },
    }
    cfg = BenchConfig(min_time_s=0.5, min_calls=20, warmup=5)
    rounds: dict[tuple[str, str], list[dict]] = {}
    with one_core(True):
        for _ in range(args.rounds):
            for case, fns in cases.items():
                for name, fn in fns.items():
                    rounds.setdefault((case, name), []).append(timed(fn, cfg))
    lines = [
        "# The server model (onnx-server) against PyTorch eager, one thread (ML-1M NeuMF-8)",
        "",
        f"{provenance(sys.argv)}  ",
        f"Machine: {machine()}; one thread, pinned to one core; {args.rounds} interleaved rounds.",
        "",
        "| artifact | bytes | HR@10 in its runtime | dHR@10 vs fp32 | max abs score error |",
        "|---|---|---|---|---|",
    ]
    for name, art in exports.items():
        v = art.verification
        lines.append(
            f"| {name} | {art.bytes:,} | {art.metrics['hr@10']:.4f} | {v['deltas']['hr@10']:+.4f} | "
            f"{v.get('max_abs_score_error', float('nan')):.2e} |"
        )
    for case, fns in cases.items():
        lines += ["", f"**{case}**", "", "| scorer | p50 ms | p90 ms | p99 ms | speed-up vs eager (p50) |",
                  "|---|---|---|---|---|"]  # fmt: skip
        base = [r["p50"] for r in rounds[(case, "pytorch eager fp32")]]
        for name in fns:
            rs = rounds[(case, name)]
            med = {p: statistics.median(r[p] for r in rs) for p in ("p50", "p90", "p99")}
            speed = statistics.median(b / r["p50"] for b, r in zip(base, rs, strict=True))
            lines.append(f"| {name} | {med['p50']:.3f} | {med['p90']:.3f} | {med['p99']:.3f} | {speed:.1f}x |")
    lines += int8_section(exports["server-fp32"], ds)
    lines += triton_section(ck, ds, eager, args)
    Path(args.results).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def int8_section(art, ds) -> list[str]:
    """The server graph quantized by onnxruntime (static QDQ, per-channel int8), against its fp32 source."""
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    src, dst = art.folder / "model.onnx", art.folder.parent / "server-int8-qdq.onnx"
    rng = np.random.default_rng(0)
    calib = iter([{"users": rng.integers(0, ds.n_users, 16).astype(np.int64)} for _ in range(16)])

    class Reader(CalibrationDataReader):
        def get_next(self):
            return next(calib, None)

    quantize_static(
        str(src),
        str(dst),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul", "Gemm"],
        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True},
    )
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sessions = {"fp32": ort.InferenceSession(str(src), so), "int8 (QDQ)": ort.InferenceSession(str(dst), so)}

    def every_user(sess) -> tuple[np.ndarray, np.ndarray]:
        parts = [sess.run(["scores", "top_items"], {"users": np.arange(b, min(b + 256, ds.n_users))})
                 for b in range(0, ds.n_users, 256)]  # fmt: skip
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    (s32, top32), (s8, top8) = every_user(sessions["fp32"]), every_user(sessions["int8 (QDQ)"])
    err = float(np.abs(s32 - s8).max())
    overlap = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top32, top8, strict=True)]))
    cfg = BenchConfig(min_time_s=1.0, min_calls=50, warmup=10)
    one = {"users": np.array([7], dtype=np.int64)}
    with one_core(True):
        t = {n: timed(lambda s=s: s.run(["top_items", "top_scores"], one), cfg) for n, s in sessions.items()}
    return [
        "",
        "**int8 on the CPU backend** (onnxruntime static QDQ, per-channel, 256 calibration users; one user + top-10,",
        "one thread pinned):",
        "",
        "| graph | p50 ms | p99 ms | max abs score error vs fp32 | top-10 overlap with fp32 |",
        "|---|---|---|---|---|",
        f"| fp32 | {t['fp32']['p50']:.3f} | {t['fp32']['p99']:.3f} | 0 | 1.000 |",
        f"| int8 (QDQ) | {t['int8 (QDQ)']['p50']:.3f} | {t['int8 (QDQ)']['p99']:.3f} | {err:.3f} | {overlap:.3f} |",
        "",
        "int8 is not offered for the CPU repository: slower than fp32 at these layer widths (32-16-8) and further from",
        "the fp32 ranking. On TensorRT (GPU) it is not measured: no GPU or TensorRT here.",
    ]


def triton_section(ck, ds, eager, args) -> list[str]:
    from edgerec.profiles.pipeline import export_config
    from edgerec.profiles.schema import load_profile
    from edgerec.serving.client import Client
    from edgerec.serving.config import LoadConfig
    from edgerec.serving.load import closed_loop, server_load
    from edgerec.serving.server import TritonServer, free_ports

    torch.set_num_threads(1)
    profile = load_profile("triton-cpu-onnx")
    repo = edgerec.export(ck, export_config(profile), data=ds, out=Path(args.work) / "triton-cpu-onnx")
    local = repo.scorer(threads=1)
    stream = LoadConfig(requests=args.requests).stream(ds.n_users)
    http, grpc = free_ports(2)
    rows, check = [], {}
    with TritonServer(repo.folder, http_port=http, grpc_port=grpc) as server:
        startup = server.startup_s
        users = np.random.default_rng(1).choice(ds.n_users, size=min(args.check, ds.n_users), replace=False)
        with Client(server.grpc_url, "grpc") as c:
            served = np.concatenate([c.recommend(users[s : s + 50])[0] for s in range(0, len(users), 50)])
            version = c.server_version()
        want = local.recommend(users)[0]
        check = {"users": len(users), "equal": int((served == want).all(axis=1).sum())}
        for protocol, url in (("http", server.http_url), ("grpc", server.grpc_url)):
            for conc in (1, 8, 32):
                rows.append(server_load(url, protocol, stream, conc))
        stop_s = server.stop()
    for conc in (1, 8):
        rows.append(closed_loop("in-process pytorch eager", lambda: lambda u: eager.top_k(u, 10), stream, conc))
        scorer_of = lambda: (lambda s=repo.scorer(threads=1): lambda u: s.recommend([u]))()  # noqa: E731
        rows.append(closed_loop("in-process onnxruntime", scorer_of, stream, conc))
    best_eager = max(r.per_second for r in rows if r.name == "in-process pytorch eager")
    lines = [
        "",
        "## Served: the Triton repository on a real Triton Inference Server",
        "",
        f"Repository: profile triton-cpu-onnx ({repo.manifest['triton']['backend']} backend, "
        f"{repo.manifest['triton']['instances']} instance, max batch {repo.manifest['triton']['max_batch_size']}, "
        f"preferred {repo.manifest['triton']['preferred_batch_sizes']}, queue delay "
        f"{repo.manifest['triton']['max_queue_delay_us']} us), fp32, HR@10 {repo.metrics['hr@10']:.4f}. "
        f"Triton {version} from nvidia-pytriton, started in {startup:.1f} s, stopped in {stop_s:.1f} s.",
        "",
        f"Served top-10 equal to the repository's local top-10 for {check['equal']} of {check['users']} users "
        "(same items, same order).",
        "",
        f"{args.requests} requests per row (one user each, top-10 over the {ds.n_items:,}-item catalog), closed loop.",
        "",
        "| scorer | clients | p50 ms | p90 ms | p99 ms | recommendations/s | errors | mean server batch "
        "| vs best eager |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        batch = f"{r.server['batch_mean']:.2f}" if r.server else "-"
        lines.append(
            f"| {r.name} | {r.concurrency} | {r.percentile(50):.3f} | {r.percentile(90):.3f} | {r.percentile(99):.3f} "
            f"| {r.per_second:,.0f} | {r.errors} | {batch} | {r.per_second / best_eager:.2f}x |"
        )
    plot(rows, Path(args.results).with_suffix(".png"))
    lines += ["", f"![latency against throughput]({Path(args.results).with_suffix('.png').name})"]
    return lines


def local_call(repo):  # one onnxruntime scorer per worker thread, as the server has one session per instance
    scorer = repo.scorer(threads=1)
    return lambda user: scorer.recommend([user])


def plot(rows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in dict.fromkeys(r.name for r in rows):
        rs = [r for r in rows if r.name == name]
        ax.plot([r.per_second for r in rs], [r.percentile(50) for r in rs], "o-", label=f"{name} p50")
        ax.plot([r.per_second for r in rs], [r.percentile(99) for r in rs], "x--", alpha=0.6, label=f"{name} p99")
        for r in rs:
            ax.annotate(str(r.concurrency), (r.per_second, r.percentile(50)), fontsize=7)
    ax.set_xlabel("recommendations / s (one user, catalog top-10)")
    ax.set_ylabel("latency, ms (log)")
    ax.set_yscale("log")
    ax.set_title("ML-1M NeuMF-8 on 2 cores: Triton (python backend + onnxruntime) vs in-process")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    sys.exit(main())
