"""Phone artifacts under emulated ARM64 CPUs (qemu-user): do they compute what they compute on x86?

    python benchmarks/arm64.py [--model benchmarks/runs/neumf8] [--users 200] [--cpu cortex-a53,cortex-a76,max]

Exports the benchmark teacher as every phone artifact kind (the phone bundle fp32 / fp16 / int8 weight-only, i.e.
the tflite-android-* profiles' artifacts; the plain TFLite model fp32 and static int8), then runs each through
`edgerec.devices.verify.verify_arm64` (edgerec's wheel inside the cached ARM64 root, each emulated CPU) and compares
with this x86 host on the same rows: max |score error|, top-10 agreement, HR@10 / NDCG@10 on 200 test users of the
NCF protocol, against each artifact's parity bound. Also times building the root from nothing (when it is not cached)
and one verification from the cache. Writes benchmarks/results/arm64.md. Emulation times are not latencies.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import edgerec
from edgerec.devices import CPUS, arm64
from edgerec.devices.verify import verify_arm64
from edgerec.gates import ParityBound
from edgerec.sysinfo import machine, provenance

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data" / "ml-1m-ncf"
ARTIFACTS = (  # (name, target, precision, what it is)
    ("bundle-fp32", "tflite-bundle", "fp32", "phone bundle fp32"),
    ("bundle-fp16", "tflite-bundle", "fp16", "phone bundle fp16 (tflite-android-fp16)"),
    ("bundle-int8", "tflite-bundle", "int8", "phone bundle int8 weight-only (tflite-android-int8)"),
    ("tflite-fp32", "tflite", "fp32", "TFLite NeuMF fp32"),
    ("tflite-int8", "tflite", "int8", "TFLite NeuMF full int8 (static)"),
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(HERE / "runs" / "neumf8"))
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--cpu", default=",".join(CPUS))
    ap.add_argument("--work", default=str(HERE / "runs" / "arm64"))
    ap.add_argument("--results", default=str(HERE / "results" / "arm64.md"))
    args = ap.parse_args()
    cpus = tuple(args.cpu.split(","))
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    cached = arm64.is_usable(arm64.root_dir())
    t0 = time.perf_counter()
    arm64.ensure_root()
    root_s = time.perf_counter() - t0
    if cached:  # built by an earlier run: its build time is in the root's marker
        import json

        root_s = json.loads((arm64.root_dir() / arm64.MARKER).read_text()).get("built_s")
    wheel = arm64.build_wheel()
    arm64.install_wheel(arm64.root_dir(), wheel)
    ds = edgerec.dataset(args.data)
    ck = edgerec.load(args.model)
    rows, first_verify_s = [], None
    for name, target, precision, what in ARTIFACTS:
        folder = work / name
        if not (folder / "manifest.json").is_file():
            edgerec.export(ck, edgerec.ExportConfig(target=target, precision=precision), data=ds, out=folder)
        start = time.perf_counter()
        result = verify_arm64(folder, cpus, ds, args.users, wheel)
        if first_verify_s is None:
            first_verify_s = time.perf_counter() - start
        bound = ParityBound.for_precision(precision)
        for cpu, r in result.items():
            rows.append((what, cpu, r, bound))
    lines = [
        "# Phone artifacts under emulated ARM64 (qemu-user) vs this x86 host",
        "",
        f"{provenance(sys.argv)}  ",
        f"Host: {machine()}. Guest: Debian {arm64.SUITE} arm64 root, edgerec's wheel + ai-edge-litert (aarch64 wheel) "
        f"under qemu-aarch64 -cpu X; {args.users} test users of the ML-1M NCF protocol (test item + 99 negatives "
        "each), the same rows on both sides; top-10 over the whole catalog per user.",
        "",
        "| artifact | emulated CPU | guest features | max abs score error vs x86 | top-10 agreement | dHR@10 | "
        "dNDCG@10 | within the parity bound | emulated run |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for what, cpu, r, bound in rows:
        if "error" in r:
            lines.append(f"| {what} | {cpu} | - | - | - | - | - | **failed**: {r['error'][:120]} | - |")
            continue
        ok = abs(r["delta_hr@10"]) <= bound.hr
        guest = f"{r['machine']} {r.get('cpu_features', '')}".strip()
        lines.append(
            f"| {what} | {cpu} | {guest} | {r['max_abs_score_error']:.2e} | {r['top10_agreement']:.4f} | "
            f"{r['delta_hr@10']:+.4f} | {r['delta_ndcg@10']:+.4f} | {'yes' if ok else '**no**'} "
            f"(|dHR| <= {bound.hr}) | {r['seconds']:.0f} s |"
        )
    lines += [
        "",
        f"Root: built from nothing in {root_s / 60:.1f} min ({'an earlier run' if cached else 'this run'}); the first "
        "artifact's "
        f"verification from the cache ({len(cpus)} CPUs) took {first_verify_s:.0f} s.",
    ]
    Path(args.results).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
