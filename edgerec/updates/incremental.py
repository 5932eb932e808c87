"""Incremental update: a checkpoint fine-tuned on new interactions, with grown id maps and a regression gate.

    parent checkpoint + its data + NEW interactions
      -> map NEW onto the parent's ids (unknown users / items appended: old indices never move, so deployed user
         vectors and item rows stay valid)                                                        (merge.py)
      -> hold out each user's latest new interaction (the new data's own test set)                (merge.py)
      -> grow the tables (new rows = mean of the old rows + the paper's N(0, 0.01) noise; a feature parent's new
         ids: their features, from the update's feature tables, and id rows at zero, as add-items)  (grow.py)
      -> fine-tune on the new interactions plus a replay sample of old ones (so the model does not forget), with the
         training's negative sampling (negatives avoid every known positive, old and new), early stopping on a
         validation item per user carved from the new interactions, epoch 0 = the grown parent    (fine_tune.py)
      -> gate: HR@10 on the parent's test protocol may drop at most `tolerance`; on the new-data holdout it may
         fall at most `holdout_tolerance` below the grown, un-tuned parent's and must reach `min_holdout_lift`
         times chance (interactions nobody can predict look corrupt)
      -> a new checkpoint (version = parent's + 1, the parent's version and hashes, a change summary) that also stores
         its data (`data.safetensors`: train interactions and test protocol), so the next update needs no --data.

The report is typed (report.py). A failed gate writes nothing: the parent is only ever read. A feature parent
(edgerec.model.features.FeatureNCF) gives a feature child, which `edgerec add-items` and the next update take as well.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from edgerec.compression.quantize import QuantSpec, calibrate, spec_files, spec_of
from edgerec.data.interactions import Interactions
from edgerec.data.split import Dataset
from edgerec.gates import GateResult
from edgerec.metrics import evaluate
from edgerec.model.checkpoint import Checkpoint
from edgerec.model.features import fold
from edgerec.model.ncf import NCF
from edgerec.model.training import Progress, torch_scorer
from edgerec.updates.config import UpdateConfig
from edgerec.updates.fine_tune import fine_tune
from edgerec.updates.grow import grow, new_features
from edgerec.updates.merge import merge, parent_data
from edgerec.updates.report import Change, FeedbackRead, Holdout, Lineage, ParentProtocol, UpdateReport

log = logging.getLogger(__name__)

CALIBRATION_DRIFT = 0.10  # a stored calibration is reused while no input range moved more than this


def carry_calibration(parent: Checkpoint, model: NCF, data: Dataset) -> tuple[QuantSpec | None, str]:
    """The calibration the child keeps: the parent's (when it has one and it still fits the child) or a new one.

    "Fits": the child, calibrated the parent's way, has every layer-input range within 10 % of the parent's.
    """
    old = spec_of(parent)
    if old is None:
        return None, "the parent stores no calibration: an export calibrates the updated model afresh"
    new = calibrate(model, data, old.config)
    drift = {k: abs(new.input_amax[k] - v) / max(v, 1e-12) for k, v in old.input_amax.items()}
    worst = max(drift, key=lambda k: drift[k])
    if drift[worst] <= CALIBRATION_DRIFT:
        return old, f"reused the parent's calibration (largest input-range change {drift[worst]:.1%} on {worst})"
    return new, (
        f"recalibrated: the input range of {worst} moved {drift[worst]:.1%} (> {CALIBRATION_DRIFT:.0%}), "
        "so the parent's calibration no longer fits"
    )


def regression_gate(cfg: UpdateConfig, protocol: ParentProtocol, holdout: Holdout, negatives: int) -> GateResult:
    """The update's gate: no more than cfg.tolerance lost on the parent's protocol; on the new data's holdout (with
    `negatives` sampled negatives per user) no more than cfg.holdout_tolerance below the grown parent, and at least
    cfg.min_holdout_lift times chance."""
    failures = list(cfg.tolerance.gate("on the parent's test protocol", protocol.child, protocol.parent).failures)
    if not holdout.child:
        note = "no new-data holdout (no user has two new interactions): only the parent's protocol was checked"
        return GateResult("update", tuple(failures), (note,))
    what = "on the new data's holdout, against the un-tuned grown parent"
    failures += cfg.holdout_tolerance.gate(what, holdout.child, holdout.grown_parent).failures
    chance = 10 / (1 + negatives)
    hr = holdout.child["hr@10"]
    if hr < cfg.min_holdout_lift * chance:
        failures.append(
            f"HR@10 on the new data's holdout is {hr:.4f}, under {cfg.min_holdout_lift:g}x chance "
            f"({chance:.2f}): the new interactions cannot be predicted; are their ids corrupt?"
        )
    return GateResult("update", tuple(failures))


@dataclass
class UpdateResult:
    model: NCF
    data: Dataset
    report: UpdateReport  # written into the child's config.json as report.to_json()
    spec: QuantSpec | None  # the calibration stored with the child (see carry_calibration)

    @property
    def gate(self) -> GateResult:
        return self.report.gate

    @property
    def passed(self) -> bool:
        return self.report.gate.passed


def _metrics(model: NCF, ds: Dataset, full: bool = True) -> dict:
    if len(ds.test_users) == 0:
        return {}
    return evaluate(torch_scorer(fold(model)), ds, full=full)


def _log_change(c: Change) -> None:
    log.info(
        "update: %d new interactions (%d users, %d items new; %d already known, %d duplicate rows), %d holdout users",
        c.interactions_added,
        c.users_added,
        c.items_added,
        c.already_known,
        c.duplicate_rows,
        c.holdout_users,
    )


def run_update(
    parent: Checkpoint,
    new: Interactions,
    data: Dataset | None = None,
    cfg: UpdateConfig = UpdateConfig(),
    progress: Progress | None = None,
    feedback: FeedbackRead | None = None,
) -> UpdateResult:
    """Fine-tune the parent on `new`; returns the child, its data and the report, whether or not the gate passed
    (the caller enforces it). `feedback`: what was read from an event log to make `new`, kept in the lineage so the
    next update from that log starts after it. A rating model is refused."""
    parent.require_implicit()
    t0 = time.perf_counter()
    pdata = parent_data(parent, data)
    merged = merge(pdata, new, cfg.seed)
    change = merged.change
    _log_change(change)
    train = merged.data.train
    new_ids = {"user": train.user_ids[pdata.n_users :], "item": train.item_ids[pdata.n_items :]}
    encoded, features = new_features(parent.model, new_ids, cfg)
    start = grow(parent.model, change.users, change.items, cfg.seed, encoded)  # the gate's un-tuned reference
    model, tuned = fine_tune(start, pdata, merged, cfg, progress)
    seconds = time.perf_counter() - t0
    protocol = ParentProtocol(_metrics(parent.model, pdata), _metrics(model, merged.parent_protocol))
    holdout = Holdout(_metrics(start, merged.holdout, full=False), _metrics(model, merged.holdout, full=False))
    gate = regression_gate(cfg, protocol, holdout, merged.holdout.test_negatives.shape[1])
    spec, calibration = carry_calibration(parent, model, merged.data) if gate.passed else (None, "")
    lineage = Lineage(
        version=parent.version + 1,
        **parent.as_parent(),
        parent_data_fingerprint=pdata.fingerprint(),
        change=change,
        delta_hr_parent_protocol=protocol.delta_hr,
        delta_hr_new_holdout=holdout.delta_hr,
        calibration=calibration,
        feedback=feedback,
    )
    report = UpdateReport(change, cfg, tuned, seconds, protocol, holdout, gate, lineage, features or None)
    return UpdateResult(model, merged.data, report, spec)


def child_checkpoint(result: UpdateResult) -> Checkpoint:
    """The updated checkpoint: version and lineage in its config, its own data and calibration attached."""
    report = result.report.to_json()
    files = spec_files(result.model, result.spec) if result.spec is not None else {}
    return Checkpoint.create(
        result.model,
        result.data,
        report,
        extra={"version": result.report.lineage.version, "lineage": report["lineage"]},
        files=files,
        store_data=True,
    )
