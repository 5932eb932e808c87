"""The GPU host check: one short script for a machine with an NVIDIA GPU (the device tool's, or yours).

    python benchmarks/gpu.py [--model benchmarks/runs/neumf8] [--out gpu.json] [--device cuda]

1. PyTorch CUDA throughput of the NeuMF scorer (fp32, and fp16 autocast) at batch 1, 1,024 and 1,048,576 pairs:
   CUDA events around --iters calls after a warm-up, median per call, pairs/s.
2. onnxruntime on the server ONNX (edgerec's recommend graph, one user -> catalog top-10): which providers this
   onnxruntime has; with CUDAExecutionProvider, p50 per call on the GPU.
3. Whether `tensorrt` imports; if it does, edgerec's engine build of the server ONNX and its throughput.
Prints one JSON record (also to --out). With no checkpoint at --model, a NeuMF-8 of ML-1M's shape with random
weights is timed (throughput does not depend on the weights; the record says which). Needs torch and edgerec's
source on the path (run it from the checkout); onnx for part 2.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import torch  # noqa: E402


def model_of(path: Path):
    from edgerec.model.ncf import NCF, NCFArch

    if (path / "model.safetensors").is_file():
        import edgerec

        return edgerec.load(path).model, f"checkpoint {path}"
    return NCF(NCFArch.paper("neumf", 6040, 3706, factors=8)), "random NeuMF-8 of ML-1M's shape"


def torch_throughput(model, device: str, iters: int) -> list[dict]:
    model = model.to(device).eval()
    n_users, n_items = model.arch.n_users, model.arch.n_items
    rows = []
    for batch in (1, 1024, 1_048_576):
        g = torch.Generator().manual_seed(0)
        u = torch.randint(0, n_users, (batch,), generator=g).to(device)
        i = torch.randint(0, n_items, (batch,), generator=g).to(device)
        for precision in ("fp32", "fp16"):
            call = scorer_call(model, u, i, device, precision == "fp16")
            times = timed(call, device, iters if batch < 1_000_000 else max(5, iters // 10))
            p50 = statistics.median(times)
            rows.append({"batch": batch, "precision": precision, "p50_ms": p50, "pairs_per_s": batch / p50 * 1e3})
    return rows


def scorer_call(model, u, i, device: str, half: bool):
    def call() -> None:
        with torch.inference_mode(), torch.autocast(device, torch.float16, enabled=half):
            model(u, i)

    return call


def timed(fn, device: str, iters: int) -> list[float]:
    for _ in range(10):
        fn()
    out = []
    for _ in range(iters):
        if device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            out.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t0) * 1e3)
    return out


def onnxruntime_part(model, work: Path, iters: int) -> dict:
    try:
        import numpy as np
        import onnx
        import onnxruntime as ort
    except ImportError as e:
        return {"skipped": f"{e.name} is not installed"}
    from edgerec.exporters import server_graph

    path = work / "server.onnx"
    onnx.save_model(server_graph.build(model.cpu(), "fp32", 10, catalog_scores=False), str(path))
    record: dict = {"version": ort.__version__, "providers": ort.get_available_providers()}
    one = {"users": np.array([7], dtype=np.int64)}
    for provider in ("CUDAExecutionProvider", "CPUExecutionProvider"):
        if provider not in record["providers"]:
            continue
        sess = ort.InferenceSession(str(path), providers=[provider])
        times = timed(lambda s=sess: s.run(None, one), "cpu", iters)  # wall time per call, host-synchronous
        record[provider] = {"p50_ms": statistics.median(times), "p99_ms": sorted(times)[int(0.99 * len(times))]}
    return record


def tensorrt_part(work: Path) -> dict:
    try:
        import tensorrt
    except ImportError:
        return {"imports": False}
    from edgerec.exporters.tensorrt_engine import build_engine

    record: dict = {"imports": True, "version": tensorrt.__version__}
    try:
        shapes = {"users": ((1,), (64,), (1024,))}
        start = time.perf_counter()
        engine, info = build_engine(work / "server.onnx", "fp16", shapes)
        record |= {"engine_bytes": len(engine), "build_s": time.perf_counter() - start, **info}
    except Exception as e:  # report what failed on the GPU host, do not hide it
        record["build_error"] = f"{type(e).__name__}: {e}"
    return record


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(HERE / "runs" / "neumf8"))
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--iters", type=int, default=100)
    ap.add_argument("--out", default=None)
    ap.add_argument("--work", default="/tmp/edgerec-gpu")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    model, which = model_of(Path(args.model))
    record = {
        "model": which,
        "device": args.device,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "pytorch": torch_throughput(model, args.device, args.iters),
        "onnxruntime": onnxruntime_part(model, work, args.iters),
        "tensorrt": tensorrt_part(work),
    }
    text = json.dumps(record, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
