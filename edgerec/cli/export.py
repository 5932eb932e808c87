"""`edgerec export`: flags (or a profile) -> ExportConfig -> edgerec.export (or edgerec.run_profile) -> its table."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgerec import api
from edgerec.cli.common import data_args, int_list, load_data, print_profile_run, table
from edgerec.errors import EdgerecError
from edgerec.exporters.config import ExportConfig
from edgerec.gates import ParityBound

DEFAULTS = ExportConfig()
# flags that are a target's options, by the option they set (`--triton k=v,...` sets several)
OPTION_FLAGS = ("candidates", "shortlist", "explain", "compute", "item_table", "table_recall", "max_bytes")


def add(sub: argparse._SubParsersAction) -> None:
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
    names = api.target_names()
    p.add_argument("--target", default=DEFAULTS.target, help=f"{' | '.join(names)} (default {DEFAULTS.target})")
    p.add_argument(
        "--precision",
        default=DEFAULTS.precision,
        help=f"default {DEFAULTS.precision}; "
        + "; ".join(f"{n}: {', '.join(api.target(n).precisions)}" for n in names),
    )
    p.add_argument("--runtime", default=DEFAULTS.runtime, help="runtime package (default: the target's first)")
    p.add_argument(
        "--buckets",
        type=int_list,
        default=DEFAULTS.buckets,
        help="batch sizes of fixed-batch targets; 0 = catalog size",
    )
    p.add_argument(
        "--calibration-size",
        type=int,
        default=DEFAULTS.calibration_size,
        help=f"calibration pairs for int8 (default {DEFAULTS.calibration_size})",
    )
    p.add_argument(
        "--observer",
        default=DEFAULTS.observer,
        help=f"minmax | percentile | entropy: int8 ONNX/TensorRT calibration when the checkpoint has none "
        f"(default {DEFAULTS.observer})",
    )
    p.add_argument("--tolerance-hr", type=float, default=None, help="max |delta HR@10| vs fp32 (default 0.001 / 0.005)")
    p.add_argument("--min-agreement", type=float, default=None, help="fail if top-10 agreement is below this")
    p.add_argument(
        "--threads",
        type=int,
        default=DEFAULTS.threads,
        help=f"runtime threads during verification (default {DEFAULTS.threads})",
    )
    p.add_argument(
        "--candidates",
        type=int,
        default=None,
        help="tflite-bundle option: `score` and `retrieve` signatures over lists of this many items",
    )
    p.add_argument(
        "--shortlist",
        type=int,
        default=None,
        help="tflite-bundle option: recommend ranks a shortlist of this many items (best GMF half + item prior, found "
        "in the graph) with the whole NeuMF instead of the catalog; gated by --table-recall (adds `score` over as "
        "many items unless --candidates is given)",
    )
    p.add_argument(
        "--explain",
        action="store_const",
        const=True,
        default=None,
        help="tflite-bundle option: also ship the folded item side (item_side.safetensors, fp16) for "
        "`edgerec recommend --explain` and fold-in on the device",
    )
    p.add_argument(
        "--compute",
        choices=("float", "int8"),
        default=None,
        help="tflite-bundle option, precision int8: int8 computes the catalog-wide MLP of recommend and score with "
        "int8 activations (XNNPACK's integer kernels; head and scores float32); float (default) dequantizes the "
        "int8 weights at load",
    )
    p.add_argument(
        "--item-table",
        choices=("int8", "int4", "pq", "auto"),
        default=None,
        help="tflite-bundle option: how the per-item constants are stored: int8 (default), int4, pq (product "
        "quantization, see --pq-subspaces), auto (the smallest that passes --table-recall within --max-bytes); "
        "int4 / pq / auto store the item prior in 8 bits",
    )
    p.add_argument(
        "--pq-subspaces",
        type=int_list,
        default=None,
        help="tflite-bundle option, --item-table pq: subspaces of the GMF rows and of the MLP item half, e.g. 2,8 "
        "(the default; even numbers: two codes to an int16 word, one byte per subspace per item)",
    )
    p.add_argument(
        "--table-recall",
        type=float,
        default=None,
        help="tflite-bundle option: the gate of a compressed item table or a shortlist, recall@10 of recommend (and of "
        "the two-stage top-10) against the uncompressed model's top-10 (default 0.95)",
    )
    p.add_argument(
        "--max-bytes",
        type=int,
        default=None,
        help="tflite-bundle option, --item-table auto: the largest model.tflite it may choose",
    )
    p.add_argument(
        "--triton",
        type=settings,
        default=None,
        help="triton options as key=value,... e.g. backend=onnxruntime,instances=2,max_batch_size=128 "
        "(keys: backend, kind, instances, threads, max_batch_size, max_queue_delay_us, k, max_candidates, "
        "served_versions; preferred_batch_sizes as 8/32)",
    )
    p.add_argument("--out", required=True, help="artifact folder to write (replaced atomically)")
    p.set_defaults(run=run)


def settings(text: str) -> dict[str, object]:
    """`backend=onnxruntime,preferred_batch_sizes=8/32` -> {"backend": "onnxruntime", "preferred...": [8, 32]}."""
    out: dict[str, object] = {}
    for part in filter(None, text.split(",")):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise argparse.ArgumentTypeError(f"expected key=value pairs separated by commas; got {part!r}")
        out[key.strip()] = value.strip().split("/") if key.strip() == "preferred_batch_sizes" else value.strip()
    return out


def config(args: argparse.Namespace) -> ExportConfig:
    """The flags as an ExportConfig; the target's options are the option flags given (an option the target does not
    have is refused by ExportConfig, naming the target's options)."""
    base = ParityBound.for_precision(args.precision)
    hr = base.hr if args.tolerance_hr is None else args.tolerance_hr
    options = {k: getattr(args, k) for k in OPTION_FLAGS if getattr(args, k) is not None} | (args.triton or {})
    if args.pq_subspaces is not None:
        if len(args.pq_subspaces) != 2:
            raise EdgerecError(f"--pq-subspaces takes two counts, GMF,MLP (e.g. 2,8); got {args.pq_subspaces}")
        options |= {"pq_gmf": args.pq_subspaces[0], "pq_mlp": args.pq_subspaces[1]}
    return ExportConfig(
        target=args.target,
        precision=args.precision,
        runtime=args.runtime,
        buckets=args.buckets,
        calibration_size=args.calibration_size,
        observer=args.observer,
        threads=args.threads,
        tolerance=ParityBound(hr=hr, agreement=args.min_agreement),
        options=options or None,
    )


def run(args: argparse.Namespace) -> int:
    if args.profile:
        data = load_data(args) if args.data else None
        if args.dry_run:
            plan = api.plan_profile(args.profile, data, args.model, args.cache)
            for s, cached in zip(plan.steps, plan.cached, strict=True):
                state = "" if s.name == "bench" else ("cached " if cached else "to run ")
                print(f"{s.name:<9} {state:<7} {s.detail}" + (f"  [{s.key[:12]}]" if s.key else ""))
            return 0
        return print_profile_run(api.run_profile(args.profile, args.out, data, args.model, args.cache), args.out)
    if args.model is None:
        raise EdgerecError("give --model (a checkpoint folder), or --profile to train one on the data first")
    cfg = config(args)
    ck = api.load_checkpoint(args.model)
    ds = load_data(args, ck.data)
    art = api.export(ck, cfg, ds, out=args.out)
    if art.export_only:
        raise EdgerecError(
            f"{art.export_only}: wrote an export-only artifact to {args.out} ({', '.join(art.manifest['files'])}: "
            "what could be verified here)"
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
    short = art.manifest.get("shortlist")
    if short:
        gate = short["gate"]
        print(
            f"recommend ranks a shortlist of {short['size']:,} items: recall@10 {gate['recall_at_k']:.3f} against the "
            f"uncompressed model's top-10 on {gate['users']} users (gate >= {gate['min_recall']})"
        )
    print(f"wrote {Path(args.out)}/ ({', '.join(art.manifest['files'])}, manifest.json)")
    return 0
