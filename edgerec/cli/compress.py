"""`edgerec compress`: flags -> CompressConfig -> edgerec.compress -> checkpoint folder and the step table."""

from __future__ import annotations

import argparse

from edgerec.cli.common import data_args, float_list, int_list, model_and_data, progress, table
from edgerec.compression.config import (
    FINE_TUNE_EPOCHS,
    CompressConfig,
    DistillConfig,
    PruneConfig,
    QuantConfig,
    SearchConfig,
)
from edgerec.gates import DropTolerance
from edgerec.model.config import fine_tune_config

PRUNE, DISTILL, QUANT, SEARCH = PruneConfig(), DistillConfig(), QuantConfig(), SearchConfig()


def add(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("compress", help="prune, distill and quantize a checkpoint, gated by ranking quality")
    c.add_argument("--model", required=True, help="teacher checkpoint folder")
    data_args(c, required=False, default_note=" (default: the data an updated --model stores, else synthetic)")
    c.add_argument("--out", required=True, help="folder for the compressed checkpoint (replaced atomically)")
    g = c.add_argument_group("pruning")
    g.add_argument("--prune", type=float, default=None, metavar="R", help="prune every component by ratio R")
    g.add_argument("--prune-mlp", type=float, default=None, metavar="R", help="MLP hidden channels")
    g.add_argument("--prune-gmf", type=float, default=None, metavar="R", help="GMF embedding dimensions")
    g.add_argument("--prune-embedding", type=float, default=None, metavar="R", help="MLP embedding dimensions")
    g.add_argument(
        "--importance", default=PRUNE.importance, help=f"l1 | l2 | taylor | random (default {PRUNE.importance})"
    )
    g.add_argument(
        "--prune-steps",
        type=int,
        default=PRUNE.steps,
        metavar="N",
        help=f"reach the ratios in N equal steps, with --distill recovery after each (default {PRUNE.steps})",
    )
    g = c.add_argument_group("distillation")
    g.add_argument("--distill", action="store_true", help="distil from the teacher (after pruning: recovery)")
    g.add_argument(
        "--student",
        type=int_list,
        default=None,
        metavar="F,L1,L2,..",
        help="a fresh student: predictive factors then MLP layers, e.g. 4,32,16,8",
    )
    g.add_argument("--distill-weight", type=float, default=DISTILL.weight)
    g.add_argument("--temperature", type=float, default=DISTILL.temperature)
    g.add_argument(
        "--rank-k", type=int, default=DISTILL.rank_k, help="ranking distillation over the teacher's top-K (0 = off)"
    )
    g.add_argument(
        "--epochs",
        type=int,
        default=FINE_TUNE_EPOCHS,
        help=f"distillation epochs (default {FINE_TUNE_EPOCHS}, early stopping)",
    )
    g = c.add_argument_group("quantization")
    g.add_argument("--quantize", action="store_true", help="post-training quantization with calibration")
    g.add_argument(
        "--embeddings",
        default=QUANT.embeddings,
        help=f"fp32 | fp16 | int8 | int4 (row-wise; default {QUANT.embeddings})",
    )
    g.add_argument("--mlp", default=QUANT.mlp, help=f"fp32 | fp16 | int8 (default {QUANT.mlp})")
    g.add_argument(
        "--observer", default=QUANT.observer, help=f"minmax | percentile | entropy (default {QUANT.observer})"
    )
    g.add_argument("--calibration-size", type=int, default=QUANT.calibration_size)
    g = c.add_argument_group("gates and search")
    g.add_argument("--tolerance-hr", type=float, default=None, help="fail if HR@10 drops by more than this")
    g.add_argument("--tolerance-ndcg", type=float, default=None, help="fail if NDCG@10 drops by more than this")
    g.add_argument("--min-agreement", type=float, default=None, help="fail if top-10 agreement is below this")
    g.add_argument(
        "--search",
        action="store_true",
        help=f"search pruning ratio x precision; keep the smallest candidate within --tolerance-hr "
        f"(default {SEARCH.tolerance.hr})",
    )
    g.add_argument("--objective", default=SEARCH.objective, help="bytes | macs (search objective)")
    g.add_argument("--ratios", type=float_list, default=SEARCH.ratios, help="search ratios")
    c.set_defaults(run=run)


def config(args: argparse.Namespace) -> CompressConfig:
    """The CompressConfig the flags describe."""
    distill = DistillConfig(weight=args.distill_weight, temperature=args.temperature, rank_k=args.rank_k)
    train = fine_tune_config(args.epochs)
    quant = QuantConfig(
        embeddings=args.embeddings, mlp=args.mlp, observer=args.observer, calibration_size=args.calibration_size
    )
    if args.search:
        hr = SEARCH.tolerance.hr if args.tolerance_hr is None else args.tolerance_hr
        tolerance = DropTolerance(hr=hr, ndcg=args.tolerance_ndcg, agreement=args.min_agreement)
        search = SearchConfig(
            tolerance=tolerance,
            objective=args.objective,
            ratios=args.ratios,
            importance=args.importance,
            distill=distill,
            train=train,
            quant=quant,
        )
        return CompressConfig(search=search)
    ratios = [args.prune_mlp, args.prune_gmf, args.prune_embedding]
    prune = None
    if args.prune is not None or any(r is not None for r in ratios):
        base = args.prune or 0.0
        mlp, gmf, emb = (base if r is None else r for r in ratios)
        prune = PruneConfig(mlp=mlp, gmf=gmf, mlp_embedding=emb, importance=args.importance, steps=args.prune_steps)
    return CompressConfig(
        prune=prune,
        distill=distill if (args.distill or args.student) else None,
        student=args.student,
        quantize=quant if args.quantize else None,
        train=train,
        tolerance=DropTolerance(hr=args.tolerance_hr, ndcg=args.tolerance_ndcg, agreement=args.min_agreement),
    )


def run(args: argparse.Namespace) -> int:
    from edgerec import api

    cfg = config(args)
    teacher, ds = model_and_data(args)
    with progress(args.terminal) as update:
        small = api.compress(teacher, ds, cfg, update)
    small.save(args.out)
    report = small.report
    print_steps(report.get("candidates") or report["steps"])
    if cfg.search is not None:
        chosen = small.config["compression"]["search"]
        print(f"chosen: ratio {chosen['ratio']}, embeddings {chosen['embeddings']}, MLP {chosen['mlp']} "
              f"({chosen['bytes']:,} bytes, HR@10 {chosen['delta_hr@10']:+.4f})")  # fmt: skip
        print(f"wrote {args.out}/ (search/candidates.json, search/candidates.md, search/pareto.png)")
    else:
        print(f"wrote {args.out}/")
    return 0


def print_steps(steps: list[dict]) -> None:
    columns = ("step", "bytes", "% fp32", "MACs/item", "HR@10", "dHR@10", "dNDCG@10", "dfull HR@10", "agreement")
    rows = [
        [
            r["step"],
            f"{r['bytes']:,}",
            f"{100 * r['size_ratio']:.1f}",
            f"{r['macs_per_item']:,}",
            f"{r['metrics']['hr@10']:.4f}",
            f"{r['deltas']['hr@10']:+.4f}",
            f"{r['deltas']['ndcg@10']:+.4f}",
            f"{r['deltas']['full_hr@10']:+.4f}",
            f"{r['agreement']:.3f}",
        ]
        for r in steps
    ]
    table("compression against the teacher", columns, rows, left=("step",))
