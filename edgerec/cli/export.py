"""`edgerec export`: flags (or a profile) -> ExportConfig -> edgerec.export -> artifact folder and its table."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgerec.cli.common import data_args, int_list, load_data, model_and_data, table
from edgerec.errors import EdgerecError


def add(sub: argparse._SubParsersAction) -> None:
    from edgerec.compression.config import DEFAULT_OBSERVER
    from edgerec.exporters.config import DEFAULT_BUCKETS
    from edgerec.targets import TARGETS

    p = sub.add_parser("export", help="export a checkpoint to ONNX / TensorRT / TFLite, verified in its runtime")
    data_args(p, required=False, default_note=" (default: the data an updated --model stores, else synthetic)")
    p.add_argument(
        "--profile",
        default=None,
        help="a target profile (the name of a shipped one, see `edgerec profiles`, or a .yaml path): runs train "
        "(without --model), compress, export, verify and bench as the profile says; the flags below are then taken "
        "from the profile",
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
    p.add_argument(
        "--buckets", type=int_list, default=DEFAULT_BUCKETS, help="batch sizes of fixed-batch targets; 0 = catalog size"
    )
    p.add_argument("--calibration-size", type=int, default=20_000, help="calibration pairs for int8 (default 20000)")
    p.add_argument(
        "--observer",
        default=DEFAULT_OBSERVER,
        help=f"minmax | percentile | entropy: int8 ONNX/TensorRT calibration when the checkpoint has none "
        f"(default {DEFAULT_OBSERVER})",
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
    p.add_argument(
        "--explain",
        action="store_true",
        help="tflite-bundle: also ship the folded item side (item_side.safetensors, fp16) for `edgerec recommend "
        "--explain` and fold-in on the device",
    )
    p.add_argument(
        "--triton",
        type=triton_settings,
        default={},
        help="triton: repository settings as key=value,... e.g. backend=onnxruntime,instances=2,max_batch_size=128 "
        "(keys: backend, kind, instances, threads, max_batch_size, max_queue_delay_us, k, max_candidates, "
        "served_versions; preferred_batch_sizes as 8/32)",
    )
    p.add_argument("--out", required=True, help="artifact folder to write (replaced atomically)")
    p.set_defaults(run=run)


def triton_settings(text: str) -> dict[str, object]:
    """`backend=onnxruntime,preferred_batch_sizes=8/32` -> {"backend": "onnxruntime", "preferred...": [8, 32]}."""
    out: dict[str, object] = {}
    for part in filter(None, text.split(",")):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise argparse.ArgumentTypeError(f"expected key=value pairs separated by commas; got {part!r}")
        out[key.strip()] = value.strip().split("/") if key.strip() == "preferred_batch_sizes" else value.strip()
    return out


def config(args: argparse.Namespace):  # -> ExportConfig
    from edgerec.exporters.config import ExportConfig
    from edgerec.gates import ParityBound
    from edgerec.serving.config import TritonConfig

    base = ParityBound.for_precision(args.precision)
    hr = base.hr if args.tolerance_hr is None else args.tolerance_hr
    return ExportConfig(
        target=args.target,
        precision=args.precision,
        runtime=args.runtime,
        buckets=args.buckets,
        calibration_size=args.calibration_size,
        observer=args.observer,
        threads=args.threads,
        tolerance=ParityBound(hr=hr, agreement=args.min_agreement),
        candidates=args.candidates,
        explain=args.explain,
        triton=TritonConfig(**args.triton),
    )


def run(args: argparse.Namespace) -> int:
    if args.profile:
        from edgerec.profiles.schema import load_profile

        profile = load_profile(args.profile)  # a bad name fails before any data is loaded
        stored = None
        if args.model is not None:
            from edgerec.model.checkpoint import load

            stored = load(args.model).data
        return run_profile(profile, load_data(args, stored), args.out, args.model, args.cache, args.dry_run)
    if args.model is None:
        raise EdgerecError("give --model (a checkpoint folder), or --profile to train one on the data first")
    from edgerec import api

    cfg = config(args)
    ck, ds = model_and_data(args)
    art = api.export(ck, cfg, ds, out=args.out)
    if art.engine_missing:
        raise EdgerecError(
            f"{art.engine_missing}: wrote the TensorRT-ready ONNX (verified in onnxruntime) and trtexec.sh to "
            f"{args.out}; build the engine on the GPU host"
        )
    v, met = art.verification, art.metrics
    columns = ("HR@10", "NDCG@10", "dHR@10", "dNDCG@10", "agreement", "max |err|", "parity", "bytes")
    row = [
        f"{met['hr@10']:.4f}",
        f"{met['ndcg@10']:.4f}",
        f"{v['deltas']['hr@10']:+.4f}",
        f"{v['deltas']['ndcg@10']:+.4f}",
        f"{v['agreement']:.3f}",
        f"{v['max_abs_score_error']:.1e}",
        f"{v['batch_parity_max_diff']:.1e}",
        f"{art.bytes:,}",
    ]
    table(f"{art.target} {art.precision} verified in {v['verified_with']} on {ds.name}", columns, [row])
    print(f"wrote {Path(args.out)}/ ({', '.join(art.manifest['files'])}, manifest.json)")
    return 0


def run_profile(profile, ds, out: str, model: str | None, cache: str | None, dry_run: bool) -> int:
    """Run a profile's steps (edgerec.profiles.pipeline) and print its row; what `export --profile` and
    `update --profile` do."""
    from edgerec.profiles.compare import COLUMNS, table_rows
    from edgerec.profiles.pipeline import default_cache, run

    row = run(profile, ds, out, model, Path(cache) if cache else default_cache(), dry_run=dry_run)
    if dry_run:
        for s in row["steps"]:
            state = "" if s["name"] == "bench" else ("cached " if s["cached"] else "to run ")
            print(f"{s['name']:<9} {state:<7} {s['detail']}" + (f"  [{s['key'][:12]}]" if s["key"] else ""))
        return 0
    table(f"profile {profile.name} on {ds.name}", COLUMNS, table_rows([row]), left=("profile", "status"))
    print(f"wrote {out}/ ({', '.join(sorted(p.name for p in Path(out).iterdir()))})")
    if row["status"] == "passed":
        return 0
    raise EdgerecError(f"profile {profile.name}: {row['status']} (the artifact and bench.json are in {out})")
