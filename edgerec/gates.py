"""The two kinds of tolerance edgerec gates on, and the checks that raise GateFailed.

- `DropTolerance`: how far a metric may FALL against a reference (a compression step against its teacher, an update
  against its parent). Rising is always allowed.
- `ParityBound`: how far an exported artifact may DIFFER, either way, from the fp32 model it was exported from
  (measured in the artifact's own runtime), plus the batch-parity bound of its scores.

Both are configs (validated at construction); both checks raise GateFailed carrying the report they read.
Torch-free.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from edgerec.config import config
from edgerec.errors import GateFailed

Share = Annotated[float | None, Field(ge=0.0, le=1.0)]


@config
class DropTolerance:
    """Largest allowed drop of HR@10 / NDCG@10 against the reference (None = not checked), and the lowest top-10
    agreement with it (mean Jaccard of the two top-10 lists over the catalog; None = not checked)."""

    hr: Share = Field(0.01, description="largest allowed HR@10 drop (null = not checked)")
    ndcg: Share = Field(None, description="largest allowed NDCG@10 drop (null = not checked)")
    agreement: Share = Field(None, description="lowest top-10 agreement (null = not checked)")

    def failures(self, what: str, metrics: dict, reference: dict, agreement: float | None = None) -> list[str]:
        """One line per metric that fell beyond the tolerance (empty: within it)."""
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
        return out

    def check(self, what: str, metrics: dict, reference: dict, agreement: float | None, report: Any) -> None:
        """Raise GateFailed (carrying `report`) when a metric fell beyond the tolerance."""
        failed = self.failures(what, metrics, reference, agreement)
        if failed:
            raise GateFailed("; ".join(failed), report)


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

    def check(self, what: str, report: dict) -> None:
        """report: the verification dict (deltas, agreement, batch parity), carried by the GateFailed."""
        d = report["deltas"]
        if abs(d["hr@10"]) > self.hr:
            raise GateFailed(
                f"{what}: HR@10 moved by {d['hr@10']:+.4f} against the fp32 source (tolerance {self.hr})", report
            )
        if self.ndcg is not None and abs(d["ndcg@10"]) > self.ndcg:
            raise GateFailed(f"{what}: NDCG@10 moved by {d['ndcg@10']:+.4f} (tolerance {self.ndcg})", report)
        if self.agreement is not None and report["agreement"] < self.agreement:
            raise GateFailed(f"{what}: top-10 agreement {report['agreement']:.3f} is below {self.agreement}", report)
        if report["batch_parity_max_diff"] > self.parity:
            raise GateFailed(
                f"{what}: scores depend on the batch (max difference {report['batch_parity_max_diff']:.2e} between a "
                f"batch of {report['parity_batch']} and single rows; tolerance {self.parity})",
                report,
            )
