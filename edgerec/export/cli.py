"""`edgerec export`: arguments and the result table (the work is edgerec.export.api.export)."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgerec.data.split import Dataset
from edgerec.targets import TARGETS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--profile",
        default=None,
        help="a target profile (name in export_profiles/ or a .yaml path): runs train (without --model), compress, "
        "export, verify and bench as the profile says; the flags below are then taken from the profile",
    )
    p.add_argument("--model", default=None, help="checkpoint folder (from `edgerec train` or `edgerec compress`)")
    p.add_argument("--cache", default=None, help="step cache for --profile (default ~/.cache/edgerec/steps)")
    p.add_argument("--dry-run", action="store_true", help="with --profile: print the resolved steps and stop")
    p.add_argument("--target", default="tflite", help=f"{' | '.join(TARGETS)} (default tflite)")
    p.add_argument(
        "--precision",
        default="fp32",
        help="; ".join(f"{t.name}: {', '.join(t.precisions)}" for t in TARGETS.values()) + " (default fp32)",
    )
    p.add_argument("--runtime", default=None, help="tflite: ai-edge-litert (default) | tflite-runtime (per-tensor)")
    p.add_argument("--buckets", default="1,1000,0", help="batch sizes of fixed-batch targets; 0 = catalog size")
    p.add_argument("--calibration-size", type=int, default=20_000, help="calibration pairs for int8 (default 20000)")
    p.add_argument(
        "--observer",
        default="percentile",
        help="minmax | percentile | entropy: int8 ONNX/TensorRT calibration when the checkpoint has none",
    )
    p.add_argument("--tolerance-hr", type=float, default=None, help="max |delta HR@10| vs fp32 (default 0.001 / 0.005)")
    p.add_argument("--min-agreement", type=float, default=None, help="fail if top-10 agreement is below this")
    p.add_argument("--threads", type=int, default=1, help="runtime threads during verification (default 1)")
    p.add_argument(
        "--candidates",
        type=int,
        default=0,
        help="tflite-bundle: add a `score` signature over a list of this many items (0 = recommend only)",
    )
    p.add_argument("--out", required=True, help="artifact folder to write (replaced atomically)")


def run_profile(args: argparse.Namespace, ds: Dataset) -> int:
    from rich.table import Table

    from edgerec.bench.compare import COLUMNS, table_rows
    from edgerec.io import console
    from edgerec.pipeline import default_cache, run
    from edgerec.profiles import load_profile

    profile = load_profile(args.profile)
    cache = Path(args.cache) if args.cache else default_cache()
    row = run(profile, ds, args.out, args.model, cache, dry_run=args.dry_run)
    if args.dry_run:
        for s in row["steps"]:
            state = "" if s["name"] == "bench" else ("cached " if s["cached"] else "to run ")
            print(f"{s['name']:<9} {state:<7} {s['detail']}" + (f"  [{s['key'][:12]}]" if s["key"] else ""))
        return 0
    table = Table(title=f"profile {profile.name} on {ds.name}")
    for col in COLUMNS:
        table.add_column(col, justify="left" if col in ("profile", "status") else "right")
    table.add_row(*table_rows([row])[0])
    console().print(table)
    print(f"wrote {args.out}/ ({', '.join(sorted(p.name for p in Path(args.out).iterdir()))})")
    if row["status"] == "passed":
        return 0
    from edgerec.errors import EdgerecError

    raise EdgerecError(f"profile {profile.name}: {row['status']} (the artifact and bench.json are in {args.out})")


def run(args: argparse.Namespace, ds: Dataset) -> int:
    from rich.table import Table

    from edgerec.errors import EdgerecError

    if args.profile:
        return run_profile(args, ds)
    if args.model is None:
        raise EdgerecError("give --model (a checkpoint folder), or --profile to train one on the data first")

    from edgerec.cli import _int_list
    from edgerec.export.api import ExportConfig, export
    from edgerec.export.verify import ExportTolerance
    from edgerec.io import console

    base = ExportTolerance.for_precision(args.precision)
    tol = ExportTolerance(hr=base.hr if args.tolerance_hr is None else args.tolerance_hr, agreement=args.min_agreement)
    cfg = ExportConfig(
        target=args.target,
        precision=args.precision,
        runtime=args.runtime,
        buckets=_int_list(args.buckets),
        calibration_size=args.calibration_size,
        observer=args.observer,
        threads=args.threads,
        tolerance=tol,
        candidates=args.candidates,
    )
    m = export(args.model, ds, args.out, cfg)
    v, met = m["verification"], m["metrics"]
    table = Table(title=f"{m['target']} {m['precision']} verified in {v['verified_with']} on {ds.name}")
    for col in ("HR@10", "NDCG@10", "dHR@10", "dNDCG@10", "agreement", "max |err|", "parity", "bytes"):
        table.add_column(col, justify="right")
    table.add_row(
        f"{met['hr@10']:.4f}",
        f"{met['ndcg@10']:.4f}",
        f"{v['deltas']['hr@10']:+.4f}",
        f"{v['deltas']['ndcg@10']:+.4f}",
        f"{v['agreement']:.3f}",
        f"{v['max_abs_score_error']:.1e}",
        f"{v['batch_parity_max_diff']:.1e}",
        f"{m['files'][m['model_file']]['bytes']:,}",
    )
    console().print(table)
    print(f"wrote {Path(args.out)}/ ({', '.join(m['files'])}, manifest.json)")
    return 0
