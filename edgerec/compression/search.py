"""Search pruning ratio x precision per component under a ranking-quality tolerance.

For every pruning ratio the pruned model is recovered by distillation once; every precision plan (embeddings
fp32/int8/int4 x MLP fp32/fp16/int8) is then calibrated and measured on it. The chosen candidate is the one with
the smallest objective (bytes or MACs per item) whose HR@10 drop stays within the tolerance.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from edgerec.compression.config import PrecisionPlan, PruneConfig, SearchConfig
from edgerec.compression.distill import distill
from edgerec.compression.gate import Baseline, StepReport
from edgerec.compression.prune import prune
from edgerec.compression.quantize import QuantizedNCF, QuantSpec, calibrate
from edgerec.data.split import Dataset
from edgerec.gates import GateResult
from edgerec.model.ncf import NCF

log = logging.getLogger(__name__)


@dataclass
class Candidate:
    ratio: float
    embeddings: str
    mlp: str
    report: StepReport
    model: NCF
    spec: QuantSpec | None

    def objective(self, name: str) -> int:
        return self.report.bytes if name == "bytes" else self.report.macs_per_item

    def row(self) -> dict:
        r = self.report
        return {
            "ratio": self.ratio,
            "embeddings": self.embeddings,
            "mlp": self.mlp,
            "bytes": r.bytes,
            "size_ratio": r.bytes / r.teacher_bytes,
            "macs_per_item": r.macs_per_item,
            **r.metrics,
            **{f"delta_{k}": v for k, v in r.deltas.items()},
            "agreement": r.agreement,
        }


def search(
    teacher: NCF,
    ds: Dataset,
    cfg: SearchConfig,
    progress: Callable[[str, int, int, dict], None] | None = None,
    bases: dict[float, NCF] | None = None,
) -> tuple[list[Candidate], Candidate]:
    """All candidates and the chosen one; raises GateFailed naming the best candidate if none is tolerable.

    bases may hold already pruned-and-distilled models by ratio (they are reused instead of retrained)."""
    baseline = Baseline(teacher, ds)
    candidates: list[Candidate] = []
    for ratio in cfg.ratios:
        if bases and ratio in bases:
            base = bases[ratio]
        elif ratio:
            pruned = prune(teacher, PruneConfig.uniform(ratio, importance=cfg.importance), ds)
            base = distill(pruned, teacher, ds, cfg.distill, cfg.train, progress).model
        else:
            base = teacher
        spec = calibrate(base, ds, cfg.quant) if any(m == "int8" for m in cfg.mlp) else None
        for emb, mlp in itertools.product(cfg.embeddings, cfg.mlp):
            plan = PrecisionPlan(embeddings=emb, mlp=mlp)
            qspec = None
            if (emb, mlp) != ("fp32", "fp32"):
                quant = dataclasses.replace(cfg.quant, embeddings=emb, mlp=mlp)
                qspec = QuantSpec(quant, spec.input_amax if spec else {})
            model = QuantizedNCF(base, qspec) if qspec else base
            rep = baseline.measure(f"ratio {ratio} emb {emb} mlp {mlp}", model, base, plan)
            candidates.append(Candidate(ratio, emb, mlp, rep, base, qspec))
    ok = [c for c in candidates if c.report.measure_gate(cfg.tolerance).passed]
    if not ok:
        best = max(candidates, key=lambda c: c.report.deltas["hr@10"])
        failure = (
            f"no candidate keeps HR@10 within {cfg.tolerance.hr} of the teacher; the best, "
            f"{best.report.step}, changes it by {best.report.deltas['hr@10']:+.4f}"
        )
        GateResult("search", (failure,)).enforce(SearchReport(tuple(c.report for c in candidates)))
    chosen = min(ok, key=lambda c: (c.objective(cfg.objective), -c.report.metrics["hr@10"]))
    return candidates, chosen


@dataclass(frozen=True)
class SearchReport:
    """Every candidate the search measured (what a refused search's GateFailed carries)."""

    candidates: tuple[StepReport, ...]

    def to_json(self) -> list[dict]:
        return [c.to_json() for c in self.candidates]


def pareto(rows: list[dict], x: str = "bytes", y: str = "hr@10") -> list[dict]:
    """Rows not dominated (no other row is at most as large and at least as good, and strictly better in one)."""
    return [r for r in rows if not any(o[x] <= r[x] and o[y] >= r[y] and (o[x] < r[x] or o[y] > r[y]) for o in rows)]


def plot(rows: list[dict], chosen: dict, teacher_hr: float, path: Path | IO[bytes]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for emb, marker in (("fp32", "o"), ("fp16", "s"), ("int8", "^"), ("int4", "v")):
        pts = [r for r in rows if r["embeddings"] == emb]
        if pts:
            ax.scatter(
                [r["bytes"] / 1e6 for r in pts],
                [r["hr@10"] for r in pts],
                marker=marker,
                alpha=0.7,
                label=f"embeddings {emb}",
            )
    front = sorted(pareto(rows), key=lambda r: r["bytes"])
    ax.plot([r["bytes"] / 1e6 for r in front], [r["hr@10"] for r in front], "k--", lw=1, label="Pareto front")
    ax.scatter([chosen["bytes"] / 1e6], [chosen["hr@10"]], s=180, facecolors="none", edgecolors="red", label="chosen")
    ax.axhline(teacher_hr, color="grey", lw=0.8, ls=":", label="teacher")
    ax.set_xscale("log")
    ax.set_xlabel("model bytes (MB, log scale)")
    ax.set_ylabel("HR@10 (sampled protocol)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)


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
