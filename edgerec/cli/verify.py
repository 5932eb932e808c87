"""`edgerec verify ARTIFACT --arch arm64`: the artifact under emulated ARM64 CPUs, compared with this machine."""

from __future__ import annotations

import argparse

from edgerec import api
from edgerec.cli.common import columns, load_data, log, table
from edgerec.errors import EdgerecError

CPUS = api.EMULATED_CPUS


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify",
        help="run a TFLite artifact under emulated ARM64 CPUs (qemu) and compare it with this machine",
        description="Builds (once, cached) an ARM64 Debian root with qemu-user, installs this edgerec there, runs the "
        "artifact through edgerec's runtime under each emulated CPU and compares scores and top-10 with the host. "
        "Needs root, qemu-user-static, binfmt-support and debootstrap. Correctness only: emulation is 50-300x slower.",
    )
    p.add_argument("artifact", help="artifact folder (a tflite or tflite-bundle export)")
    p.add_argument("--arch", required=True, choices=["arm64"], help="the architecture to verify on")
    p.add_argument("--cpu", default=",".join(CPUS), help=f"emulated CPUs, comma-separated (default {','.join(CPUS)})")
    p.add_argument("--data", default=None, help="also compare HR@10 / NDCG@10 on this data's test protocol")
    p.add_argument("--columns", type=columns, default=None, help=argparse.SUPPRESS)
    p.add_argument("--split-seed", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--users", type=int, default=300, help="test users compared (default 300)")
    p.add_argument("--wheel", default=None, help="the edgerec wheel to install there (default: built from here)")
    p.add_argument("--json", default=None, help="also write the comparison to this JSON file")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    cpus = tuple(c.strip() for c in args.cpu.split(",") if c.strip())
    if not cpus:
        raise EdgerecError("--cpu: name at least one CPU, e.g. cortex-a53")
    if args.users < 1:
        raise EdgerecError("--users must be at least 1")
    data = load_data(args) if args.data else None
    report = api.verify_on(args.artifact, args.arch, cpus, data, args.users, args.wheel, log.info)
    rows = []
    for cpu, r in report.results.items():
        if "error" in r:
            rows.append([cpu, "-", "-", "-", r["error"][:80]])
            continue
        delta = f"{r['delta_hr@10']:+.4f}" if "delta_hr@10" in r else "-"
        rows.append([cpu, f"{r['max_abs_score_error']:.2e}", f"{r['top10_agreement']:.4f}", delta, f"{r['seconds']}s"])
    table(f"{args.artifact} on emulated arm64 vs this machine", ("cpu", "max |score error|", "top-10 agreement",
          "dHR@10", "time"), rows, left=("cpu",))  # fmt: skip
    if args.json:
        report.save(args.json)
    return 0 if report.passed else 2
