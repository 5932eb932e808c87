"""The two kinds of tolerance edgerec gates on, and the one result every gate returns.

- `DropTolerance`: how far a metric may FALL against a reference (a compression step against its teacher, an update
  against its parent). Rising is always allowed.
- `ParityBound`: how far an exported artifact may DIFFER, either way, from the fp32 model it was exported from
  (measured in the artifact's own runtime), plus the batch-parity bound of its scores.

Both are configs (validated at construction). Their `gate(...)` returns a `GateResult` (passed, failures, notes);
`GateResult.enforce(report)` raises GateFailed carrying the typed report the gate read. Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field

from edgerec.config import config
from edgerec.errors import GateFailed, Report

Share = Annotated[float | None, Field(ge=0.0, le=1.0)]


@dataclass(frozen=True)
class GateResult:
    """What a gate decided: `passed`, one line per failed check (`failures`), and what it did not check or
    loosened (`notes`). The same shape for the compression steps, an export's parity bound and an update."""

    name: str
    failures: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "failures": list(self.failures), "notes": list(self.notes)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> GateResult:
        return cls(str(d.get("name", "")), tuple(d.get("failures", ())), tuple(d.get("notes", ())))

    def enforce(self, report: Report, prefix: str = "") -> None:
        """Raise GateFailed (its message the failures, its report `report`) when the gate did not pass."""
        if self.failures:
            raise GateFailed(prefix + "; ".join(self.failures), report, self)


@config
class DropTolerance:
    """Largest allowed drop of HR@10 / NDCG@10 against the reference (None = not checked), and the lowest top-10
    agreement with it (mean Jaccard of the two top-10 lists over the catalog; None = not checked)."""

    hr: Share = Field(0.01, description="largest allowed HR@10 drop (null = not checked)")
    ndcg: Share = Field(None, description="largest allowed NDCG@10 drop (null = not checked)")
    agreement: Share = Field(None, description="lowest top-10 agreement (null = not checked)")

    def gate(self, what: str, metrics: dict, reference: dict, agreement: float | None = None) -> GateResult:
        """One failure line per metric that fell beyond the tolerance."""
        out = []
        for key, name, limit in (("hr@10", "HR@10", self.hr), ("ndcg@10", "NDCG@10", self.ndcg)):
            drop = reference[key] - metrics[key]
            if limit is not None and drop > limit:
                out.append(
                    f"{what}: {name} fell by {drop:.4f} (tolerance {limit}): {reference[key]:.4f} -> {metrics[key]:.4f}"
                )
        if self.agreement is not None and agreement is not None and agreement < self.agreement:
            out.append(
                f"{what}: top-10 agreement with the reference is {agreement:.3f}, below the required {self.agreement}"
            )
        return GateResult(what, tuple(out))


@config
class ParityBound:
    """Largest allowed |delta| of HR@10 / NDCG@10 of an artifact against its fp32 source, the lowest top-10
    agreement with it, and the largest difference between a pair's score in a batch of 1,000 and alone."""

    hr: Annotated[float, Field(ge=0.0, le=1.0)] = Field(0.005, description="largest |delta HR@10| vs the fp32 source")
    ndcg: Share = Field(None, description="largest |delta NDCG@10| (null = not checked)")
    agreement: Share = Field(None, description="lowest top-10 agreement (null = not checked)")
    parity: Annotated[float, Field(ge=0.0)] = Field(1e-5, description="largest batch-vs-alone score difference")

    @classmethod
    def for_precision(cls, precision: str) -> ParityBound:
        """The default bound of a precision: 0.001 HR@10 for fp32 / fp16, 0.005 for the int8 variants."""
        return cls(hr=0.001) if precision in ("fp32", "fp16") else cls(hr=0.005)

    def gate(self, what: str, deltas: dict, agreement: float, parity_max_diff: float, parity_batch: int) -> GateResult:
        """The artifact's verification against the bound: one failure line per check it misses."""
        out = []
        if abs(deltas["hr@10"]) > self.hr:
            out.append(f"{what}: HR@10 moved by {deltas['hr@10']:+.4f} against the fp32 source (tolerance {self.hr})")
        if self.ndcg is not None and abs(deltas["ndcg@10"]) > self.ndcg:
            out.append(f"{what}: NDCG@10 moved by {deltas['ndcg@10']:+.4f} (tolerance {self.ndcg})")
        if self.agreement is not None and agreement < self.agreement:
            out.append(f"{what}: top-10 agreement {agreement:.3f} is below {self.agreement}")
        if parity_max_diff > self.parity:
            out.append(
                f"{what}: scores depend on the batch (max difference {parity_max_diff:.2e} between a batch of "
                f"{parity_batch} and single rows; tolerance {self.parity})"
            )
        return GateResult(what, tuple(out))
