"""`edgerec compress`: arguments -> configs -> compress() or search() -> checkpoint folder and report."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from edgerec.compress.distill import DistillConfig
from edgerec.compress.gate import StepReport, Tolerance
from edgerec.compress.pipeline import CompressConfig, compress
from edgerec.compress.prune import PruneConfig
from edgerec.compress.quantize import QuantConfig, QuantSpec, save_spec
from edgerec.compress.search import SearchConfig, plot, search
from edgerec.data.split import Dataset
from edgerec.errors import EdgerecError
from edgerec.io import write_json
from edgerec.model import checkpoint
from edgerec.model.config import fine_tune_config
from edgerec.model.ncf import NCF


def _prune_config(args: argparse.Namespace) -> PruneConfig | None:
    ratios = [args.prune_mlp, args.prune_gmf, args.prune_embedding]
    if args.prune is None and all(r is None for r in ratios):
        return None
    base = args.prune or 0.0
    mlp, gmf, emb = (base if r is None else r for r in ratios)
    return PruneConfig(mlp=mlp, gmf=gmf, mlp_embedding=emb, importance=args.importance, steps=args.prune_steps)


def _student(args: argparse.Namespace) -> tuple[int, tuple[int, ...]] | None:
    if args.student is None:
        return None
    if len(args.student) < 3:
        raise EdgerecError("--student takes predictive factors then MLP layers, e.g. 4,32,16,8")
    return args.student[0], tuple(args.student[1:])


def run(args: argparse.Namespace, ds: Dataset, progress: Callable[[str, int, int, dict], None] | None) -> int:
    teacher = checkpoint.load(args.model)
    teacher.check_data(ds)
    distill_cfg = DistillConfig(weight=args.distill_weight, temperature=args.temperature, rank_k=args.rank_k)
    train_cfg = fine_tune_config(args.epochs)
    quant = QuantConfig(args.embeddings, args.mlp, args.observer, calibration_size=args.calibration_size)
    if args.search:
        return _run_search(args, ds, teacher, distill_cfg, train_cfg, quant, progress)
    cfg = CompressConfig(
        prune=_prune_config(args),
        distill=distill_cfg if (args.distill or args.student) else None,
        student=_student(args),
        quantize=quant if args.quantize else None,
        train=train_cfg,
        tolerance=Tolerance(args.tolerance_hr, args.tolerance_ndcg, args.min_agreement),
    )
    if not (cfg.prune or cfg.distill or cfg.quantize):
        raise EdgerecError("nothing to do: give --prune*, --distill / --student, --quantize or --search")
    result = compress(teacher.model, ds, cfg, progress)
    _write(args.out, result.model, result.spec, ds, result.reports, {"teacher": str(args.model)})
    _print_reports(result.reports)
    print(f"wrote {args.out}/")
    return 0


def _run_search(args, ds, teacher, distill_cfg, train_cfg, quant, progress) -> int:
    cfg = SearchConfig(
        tolerance=0.01 if args.tolerance_hr is None else args.tolerance_hr,
        objective=args.objective,
        ratios=args.ratios,
        importance=args.importance,
        distill=distill_cfg,
        train=train_cfg,
        quant=quant,
    )
    candidates, chosen = search(teacher.model, ds, cfg, progress)
    rows = [c.row() for c in candidates]
    chosen_row = chosen.row()

    def extra(folder: Path) -> None:
        out = folder / "search"
        out.mkdir()
        write_json(
            out / "candidates.json",
            {"objective": cfg.objective, "tolerance": cfg.tolerance, "chosen": chosen_row, "candidates": rows},
        )
        (out / "candidates.md").write_text(markdown_table(rows, chosen_row))
        plot(rows, chosen_row, chosen.report.teacher["hr@10"], out / "pareto.png")

    _write(
        args.out,
        chosen.model,
        chosen.spec,
        ds,
        [chosen.report],
        {"teacher": str(args.model), "search": chosen_row},
        extra,
    )
    _print_reports([c.report for c in candidates])
    print(f"chosen: {chosen.report.step} ({chosen_row['bytes']:,} bytes, HR@10 {chosen_row['delta_hr@10']:+.4f})")
    print(f"wrote {args.out}/ (search/candidates.json, search/candidates.md, search/pareto.png)")
    return 0


def _write(
    out: str,
    model: NCF,
    spec: QuantSpec | None,
    ds: Dataset,
    reports: list[StepReport],
    info: dict,
    extra: Callable[[Path], None] | None = None,
) -> None:
    final = reports[-1]

    def write_extra(folder: Path) -> None:
        if spec is not None:
            save_spec(folder, model, spec)
        write_json(folder / "compress.json", {**info, "steps": [r.to_json() for r in reports]})
        if extra is not None:
            extra(folder)

    report = {
        "metrics": {
            **final.metrics,
            "protocol": "sampled-99-negatives-leave-one-out",
            "top10_agreement": final.agreement,
            "bytes": final.bytes,
        }
    }
    checkpoint.save(out, model, ds, report=report, extra={"compression": info}, write_extra=write_extra)


def markdown_table(rows: list[dict], chosen: dict | None = None) -> str:
    head = (
        "| ratio | embeddings | MLP | bytes | % of fp32 | MACs/item | HR@10 | NDCG@10 | dHR@10 | dNDCG@10 "
        "| full HR@10 | dfull HR@10 | top-10 agreement |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        mark = " **(chosen)**" if chosen is not None and r == chosen else ""
        lines.append(
            f"| {r['ratio']} | {r['embeddings']} | {r['mlp']}{mark} | {r['bytes']:,} | {100 * r['size_ratio']:.1f} "
            f"| {r['macs_per_item']:,} | {r['hr@10']:.4f} | {r['ndcg@10']:.4f} | {r['delta_hr@10']:+.4f} "
            f"| {r['delta_ndcg@10']:+.4f} | {r['full_hr@10']:.4f} | {r['delta_full_hr@10']:+.4f} "
            f"| {r['agreement']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def _print_reports(reports: list[StepReport]) -> None:
    from rich.table import Table

    from edgerec.io import console

    table = Table(title="compression against the teacher")
    for col in ("step", "bytes", "% fp32", "MACs/item", "HR@10", "dHR@10", "dNDCG@10", "dfull HR@10", "agreement"):
        table.add_column(col, justify="left" if col == "step" else "right")
    for r in reports:
        d = r.deltas
        table.add_row(
            r.step,
            f"{r.bytes:,}",
            f"{100 * r.bytes / r.teacher_bytes:.1f}",
            f"{r.macs_per_item:,}",
            f"{r.metrics['hr@10']:.4f}",
            f"{d['hr@10']:+.4f}",
            f"{d['ndcg@10']:+.4f}",
            f"{d['full_hr@10']:+.4f}",
            f"{r.agreement:.3f}",
        )
    console().print(table)
