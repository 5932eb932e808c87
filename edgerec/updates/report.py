"""What an update reports, as attributes: the change it merged, the two protocols the gate read, the fine-tuning,
the gate's decision, the lineage the child carries and, for an event log, what was read from it.

`UpdateReport.to_json()` is the form written into the child's config.json (`report`, and `lineage` beside it) and
read back by `edgerec update`'s table, artifact manifests and the next update's event-log cursor, so every record
writes the keys those readers expect, in a stable order. Torch-free.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgerec.gates import GateResult
from edgerec.updates.config import UpdateConfig

if TYPE_CHECKING:
    from edgerec.model.training import EpochLog, TrainResult

Metrics = dict[str, Any]  # edgerec.metrics.evaluate's result; {} where there was nothing to measure


def _delta(a: Metrics, b: Metrics, key: str) -> float | None:
    return round(a[key] - b[key], 6) if key in a and key in b else None


@dataclass(frozen=True)
class Change:
    """The new interactions as merged onto the parent's id maps: what was read, what was new, what grew."""

    rows_read: int
    duplicate_rows: int
    already_known: int  # pairs the parent already had (train or test): not trained on again
    interactions_added: int
    users_added: int
    items_added: int
    holdout_users: int  # users whose latest new interaction was held out for the gate
    users: int  # the child's users and items
    items: int

    def to_json(self) -> dict[str, int]:
        return asdict(self)

    def grown(self) -> dict[str, int]:
        """The part the lineage keeps: what was added and the resulting sizes."""
        return {k: getattr(self, k) for k in ("interactions_added", "users_added", "items_added", "users", "items")}


@dataclass(frozen=True)
class ParentProtocol:
    """The parent and the child on the parent's own test protocol (the child ranks its grown catalog)."""

    parent: Metrics
    child: Metrics

    @property
    def delta_hr(self) -> float | None:
        return _delta(self.child, self.parent, "hr@10")

    @property
    def delta_ndcg(self) -> float | None:
        return _delta(self.child, self.parent, "ndcg@10")

    def to_json(self) -> dict[str, Any]:
        return {"parent": self.parent, "child": self.child, "delta_hr@10": self.delta_hr,
                "delta_ndcg@10": self.delta_ndcg}  # fmt: skip


@dataclass(frozen=True)
class Holdout:
    """The grown, un-tuned parent and the child on the new data's holdout ({} both when nobody has two new
    interactions): the part of the gate that sees whether the new interactions were learned."""

    grown_parent: Metrics
    child: Metrics

    @property
    def delta_hr(self) -> float | None:
        return _delta(self.child, self.grown_parent, "hr@10")

    def to_json(self) -> dict[str, Any]:
        return {"grown_parent": self.grown_parent, "child": self.child, "delta_hr@10": self.delta_hr}


@dataclass(frozen=True)
class FineTune:
    """The fine-tuning on the new interactions plus the replayed old ones."""

    replayed: int  # old interactions in the mix
    validation_users: int  # 0: too few new interactions for a validation split (selected on the replay mix)
    best_epoch: int  # 0: the grown parent itself was kept
    history: tuple[EpochLog, ...]
    fit_seconds: float
    samples_per_s: float

    @classmethod
    def of(cls, res: TrainResult, replayed: int, validation_users: int) -> FineTune:
        return cls(replayed, validation_users, res.best_epoch, tuple(res.history), res.seconds, res.samples_per_s)

    def to_json(self) -> dict[str, Any]:
        """The fit's summary, as TrainResult.summary writes it; `replayed` and `validation_users` are written one
        level up, beside the change counts in the update section."""
        return {
            "best_epoch": self.best_epoch,
            "seconds": round(self.fit_seconds, 2),
            "samples_per_s": round(self.samples_per_s),
            "history": [asdict(h) for h in self.history],
        }


@dataclass(frozen=True)
class FeedbackRead:
    """What an update read from a serving event log: the records after the parent's cursor. `through_seq` is the
    next update's cursor (edgerec.updates.feedback.consumed reads it back from the lineage)."""

    log: str
    log_id: str
    from_seq: int
    through_seq: int
    events: int
    by_type: dict[str, int]
    positives: tuple[str, ...]
    torn_skipped: int
    segments: int
    interactions: int

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> FeedbackRead:
        """From read_feedback's summary (or a lineage's `feedback`)."""
        return cls(str(d["log"]), str(d["log_id"]), int(d["from_seq"]), int(d["through_seq"]), int(d["events"]),
                   {str(k): int(v) for k, v in d["by_type"].items()}, tuple(d["positives"]), int(d["torn_skipped"]),
                   int(d["segments"]), int(d["interactions"]))  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "by_type": dict(self.by_type), "positives": list(self.positives)}


@dataclass(frozen=True)
class Lineage:
    """What the child carries about where it came from (config.json `lineage`, and artifact manifests): its version,
    the parent's identity, the change in short, the calibration decision and the event log read."""

    version: int
    parent_version: int
    parent_weights_sha256: str
    parent_config_sha256: str | None  # None: the parent was never saved
    parent_data_fingerprint: str
    parent_path: str | None
    change: Change
    delta_hr_parent_protocol: float | None
    delta_hr_new_holdout: float | None
    calibration: str  # "" when the gate refused the update (no calibration was carried)
    feedback: FeedbackRead | None = None

    def to_json(self) -> dict[str, Any]:
        out = {
            "version": self.version,
            "parent_version": self.parent_version,
            "parent_weights_sha256": self.parent_weights_sha256,
            "parent_config_sha256": self.parent_config_sha256,
            "parent_data_fingerprint": self.parent_data_fingerprint,
            "parent_path": self.parent_path,
            "change": self.change.grown()
            | {
                "delta_hr@10_parent_protocol": self.delta_hr_parent_protocol,
                "delta_hr@10_new_holdout": self.delta_hr_new_holdout,
            },
            "calibration": self.calibration,
        }
        return out if self.feedback is None else out | {"feedback": self.feedback.to_json()}


@dataclass(frozen=True)
class UpdateReport:
    """An update's whole report: the child's metrics are its parent-protocol numbers (`metrics`); `gate` decided."""

    change: Change
    config: UpdateConfig
    fine_tune: FineTune
    seconds: float  # wall time from reading the parent to the end of fine-tuning
    parent_protocol: ParentProtocol
    holdout: Holdout
    gate: GateResult
    lineage: Lineage
    # a feature parent: per side, the feature table of the new ids, how many there were and how many it covered
    features: dict[str, dict] | None = None

    @property
    def metrics(self) -> Metrics:
        return self.parent_protocol.child

    @property
    def feedback(self) -> FeedbackRead | None:
        return self.lineage.feedback

    def to_json(self) -> dict[str, Any]:
        gate = {"passed": self.gate.passed, "failures": list(self.gate.failures), "notes": list(self.gate.notes)}
        update = {
            **self.change.to_json(),
            "replayed": self.fine_tune.replayed,
            "validation_users": self.fine_tune.validation_users,
            "config": asdict(self.config),
            "fine_tune": self.fine_tune.to_json(),
            "seconds": round(self.seconds, 2),
            "parent_protocol": self.parent_protocol.to_json(),
            "holdout": self.holdout.to_json(),
            "gate": gate,
        }
        if self.feedback is not None:
            update["feedback"] = self.feedback.to_json()
        if self.features is not None:
            update["features"] = self.features
        return {"metrics": self.metrics, "update": update, "lineage": self.lineage.to_json()}


@dataclass(frozen=True)
class UpdateChain:
    """What `edgerec update` did: the next version (saved in `out`), and where asked, its roll-out into a served
    repository (`served`, an edgerec.serving.versions.ServedState) and a target profile's run on it (`profile_run`,
    an edgerec.profiles.pipeline.ProfileRun)."""

    child: Any  # edgerec.model.checkpoint.Checkpoint
    out: Path
    served: Any = None
    profile_run: Any = None
