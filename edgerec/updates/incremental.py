"""Incremental update: a checkpoint fine-tuned on new interactions, with grown id maps and a regression gate.

    parent checkpoint + its data + NEW interactions
      -> map NEW onto the parent's ids (unknown users / items appended: old indices never move, so deployed user
         vectors and item rows stay valid)
      -> hold out each user's latest new interaction (the new data's own test set)
      -> grow the tables (new rows = mean of the old rows + the paper's N(0, 0.01) noise)
      -> fine-tune on the new interactions plus a replay sample of old ones (so the model does not forget), with the
         training's negative sampling (negatives avoid every known positive, old and new), early stopping on a
         validation item per user carved from the new interactions, epoch 0 = the grown parent
      -> gate: HR@10 on the parent's test protocol may drop at most `tolerance`; on the new-data holdout it may
         fall at most `holdout_tolerance` below the grown, un-tuned parent's and must reach `min_holdout_lift`
         times chance (interactions nobody can predict look corrupt)
      -> a new checkpoint (version = parent's + 1, the parent's version and hashes, a change summary) that also stores
         its data (`data.safetensors`: train interactions and test protocol), so the next update needs no --data.

A failed gate writes nothing: the parent is only ever read.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from edgerec.compression.quantize import QuantSpec, calibrate, spec_files, spec_of
from edgerec.data.interactions import Interactions
from edgerec.data.split import Dataset, leave_one_out, positive_keys
from edgerec.errors import EdgerecError
from edgerec.io import sha256_file
from edgerec.metrics import evaluate
from edgerec.model.checkpoint import CONFIG, Checkpoint
from edgerec.model.ncf import NCF
from edgerec.model.training import FitOptions, fit, torch_scorer
from edgerec.updates.config import UpdateConfig

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------------------------
# the parent's data


def parent_data(ck: Checkpoint, data: Dataset | None) -> Dataset:
    """The data the parent was trained and tested on: its stored data file, else `data` checked by fingerprint."""
    stored = ck.data  # checked against the fingerprint there
    if stored is not None:
        return stored
    where = ck.path or "the parent checkpoint"
    if data is None:
        raise EdgerecError(
            f"{where}: the parent checkpoint does not store its data; pass the data it was trained on with --data"
        )
    recorded = ck.config.get("data", {}).get("fingerprint")  # None: imported without data
    if recorded is None:
        return ck.align(data)
    try:  # the same data, possibly as another loader numbers it (align returns data itself when the maps agree)
        aligned: Dataset | None = ck.align(data)
    except EdgerecError:
        aligned = None
    if aligned is None or aligned.fingerprint() != recorded:
        raise EdgerecError(
            f"{where}: the data's fingerprint differs from the one the parent was trained on: "
            "pass the exact data (and --split-seed) it was trained on"
        )
    return aligned


# ---------------------------------------------------------------------------------------------------------------
# new interactions onto the parent's ids


def _extend(known: np.ndarray, new: np.ndarray, what: str, source: str) -> tuple[np.ndarray, np.ndarray]:
    """(index of every new id in the extended map, extended map): unseen ids appended in sorted order."""
    if known.dtype.kind in "iu" and new.dtype.kind not in "iu":
        # the loaders keep ids as text when any of them is not an int64 (a word, a fraction, 20+ digits)
        def fits(x: object) -> bool:
            try:
                return -(2**63) <= int(str(x)) < 2**63
            except ValueError:
                return False

        example = next((x for x in new if not fits(x)), new[0])
        raise EdgerecError(
            f"{source}: {what} id {str(example)[:40]!r} is not an int64 integer, but the model's {what} ids are"
        )
    if known.dtype.kind not in "iu":
        new = new.astype(str)  # integer-looking ids of a string-keyed model are strings
    index = {v: k for k, v in enumerate(known.tolist())}
    unseen = sorted({v for v in new.tolist() if v not in index})
    for v in unseen:
        index[v] = len(index)
    extended = np.asarray(list(known.tolist()) + unseen, dtype=known.dtype if known.dtype.kind in "iu" else None)
    return np.asarray([index[v] for v in new.tolist()], dtype=np.int64), extended


@dataclass(frozen=True)
class Merged:
    """The parent's data extended with the new interactions (all on the extended id maps)."""

    new_train: Interactions  # new interactions the update trains on
    holdout: Dataset  # each user's latest new interaction with 99 negatives (train = everything known)
    data: Dataset  # the child's data: old + new train; test: each user's newest holdout, else the parent's test row
    parent_protocol: Dataset  # the parent's test rows, with the child's train (seen items) for full ranking
    summary: dict


def merge(parent: Dataset, new: Interactions, seed: int = 0) -> Merged:
    old = parent.train
    src = "new interactions"
    user_idx, user_ids = _extend(old.user_ids, new.user_ids, "user", src)
    item_idx, item_ids = _extend(old.item_ids, new.item_ids, "item", src)
    users, items = user_idx[new.users], item_idx[new.items]
    n_items = len(item_ids)
    known_old = old.users * n_items + old.items
    known_old = np.union1d(known_old, parent.test_users * n_items + parent.test_items)
    fresh = ~np.isin(users * n_items + items, known_old)
    rows = Interactions(
        users[fresh],
        items[fresh],
        user_ids,
        item_ids,
        None if new.timestamps is None else new.timestamps[fresh],
    )
    if len(rows) == 0:
        raise EdgerecError("the new interactions are all known to the parent already: nothing to update")
    known_all = np.union1d(known_old, rows.keys())
    try:
        hold = leave_one_out(rows, seed=seed, name="new-data holdout", known=known_all)
        hold_users, hold_items, hold_negs = hold.test_users, hold.test_items, hold.test_negatives
        new_train = hold.train
    except EdgerecError:  # no user has two new interactions (and 99 unseen items): the gate has the parent's
        # protocol only, and says so in the report
        hold_users = hold_items = np.zeros(0, np.int64)
        hold_negs = np.zeros((0, parent.test_negatives.shape[1]), np.int64)
        new_train = rows
    train_all = Interactions(
        np.concatenate([old.users, new_train.users]), np.concatenate([old.items, new_train.items]), user_ids, item_ids
    )
    holdout = Dataset("new-data holdout", train_all, hold_users, hold_items, hold_negs)
    # the child's own data: each user's freshest held-out interaction is its test item (so the next update's gate
    # follows drifting tastes instead of guarding stale ones); a replaced parent test item joins the train set
    stale = np.isin(parent.test_users, hold_users)
    order = np.argsort(np.concatenate([parent.test_users[~stale], hold_users]), kind="stable")
    stored_train = Interactions(
        np.concatenate([train_all.users, parent.test_users[stale]]),
        np.concatenate([train_all.items, parent.test_items[stale]]),
        user_ids,
        item_ids,
    )
    data = Dataset(
        parent.name,
        stored_train,
        np.concatenate([parent.test_users[~stale], hold_users])[order],
        np.concatenate([parent.test_items[~stale], hold_items])[order],
        np.concatenate([parent.test_negatives[~stale], hold_negs])[order],
    )
    protocol = Dataset(parent.name, train_all, parent.test_users, parent.test_items, parent.test_negatives)
    summary = {
        "rows_read": len(new),
        "duplicate_rows": int(new.stats.get("duplicates", 0)),
        "already_known": int((~fresh).sum()),
        "interactions_added": len(rows),
        "users_added": len(user_ids) - old.n_users,
        "items_added": len(item_ids) - old.n_items,
        "holdout_users": len(hold_users),
        "users": len(user_ids),
        "items": len(item_ids),
    }
    return Merged(new_train, holdout, data, protocol, summary)


# ---------------------------------------------------------------------------------------------------------------
# the model


def grow(model: NCF, n_users: int, n_items: int, seed: int = 0) -> NCF:
    """A copy of model with n_users / n_items rows; old rows unchanged, new rows = mean old row + N(0, 0.01)."""
    arch = model.arch
    if n_users < arch.n_users or n_items < arch.n_items:
        raise EdgerecError("an update never removes users or items")
    grown = NCF(type(arch)(**{**asdict(arch), "n_users": n_users, "n_items": n_items}))
    gen = torch.Generator().manual_seed(seed)
    state = {}
    with torch.no_grad():
        for name, value in model.state_dict().items():
            table = name.split(".")[0]
            if name.endswith(".weight") and table in model.tables():
                n = n_users if table.endswith("_user") else n_items
                extra = n - value.shape[0]
                new_rows = value.mean(dim=0, keepdim=True) + 0.01 * torch.randn(extra, value.shape[1], generator=gen)
                value = torch.cat([value, new_rows])
            state[name] = value.clone()
    grown.load_state_dict(state)
    grown.eval()
    return grown


def _replay(parent: Dataset, new_train: Interactions, ratio: float, rng: np.random.Generator) -> Interactions:
    """The fine-tuning set: every new interaction plus `ratio` times as many old ones, drawn so that every old user
    is equally likely to be replayed (weight 1 / the user's interactions): users with a short history (the ones an
    earlier update added) are the first to be forgotten under uniform replay."""
    old = parent.train
    n = min(len(old), round(ratio * len(new_train)))
    weight = 1.0 / old.user_counts()[old.users]
    pick = np.sort(rng.choice(len(old), size=n, replace=False, p=weight / weight.sum()))
    return Interactions(
        np.concatenate([new_train.users, old.users[pick]]),
        np.concatenate([new_train.items, old.items[pick]]),
        new_train.user_ids,
        new_train.item_ids,
    )


def _freeze_all_but_rows(model: NCF, touched: Interactions) -> dict[str, torch.Tensor]:
    """--scope rows: freeze the dense layers; return the row mask that lets only the touched users' and items' rows
    learn (fit zeroes every other row's gradient)."""
    masks = {}
    for name, table in model.tables().items():
        mask = torch.zeros(table.num_embeddings, dtype=torch.bool)
        mask[torch.from_numpy(touched.users if name.endswith("_user") else touched.items)] = True
        masks[name] = mask
    for name, param in model.named_parameters():
        param.requires_grad_(name.split(".")[0] in masks)
    return masks


# ---------------------------------------------------------------------------------------------------------------
# the update


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


@dataclass
class UpdateResult:
    model: NCF
    data: Dataset
    report: dict  # the checkpoint's report: metrics (child, parent protocol), the change summary, the gate
    passed: bool
    spec: QuantSpec | None  # the calibration stored with the child (see carry_calibration)


def _metrics(model: NCF, ds: Dataset, full: bool = True) -> dict:
    if len(ds.test_users) == 0:
        return {}
    return evaluate(torch_scorer(model), ds, full=full)


def _delta(a: dict, b: dict, key: str) -> float | None:
    return round(a[key] - b[key], 6) if key in a and key in b else None


def run_update(
    parent: Checkpoint,
    new: Interactions,
    data: Dataset | None = None,
    cfg: UpdateConfig = UpdateConfig(),
    progress: Callable[[str, int, int, dict], None] | None = None,
) -> UpdateResult:
    """Fine-tune the parent on `new`; returns the child, its data and the report (whether or not the gate passed)."""
    t0 = time.perf_counter()
    ck = parent
    pdata = parent_data(ck, data)
    merged = merge(pdata, new, cfg.seed)
    s = merged.summary
    log.info(
        "update: %d new interactions (%d users, %d items new; %d already known, %d duplicate rows), %d holdout users",
        s["interactions_added"],
        s["users_added"],
        s["items_added"],
        s["already_known"],
        s["duplicate_rows"],
        s["holdout_users"],
    )
    start = grow(ck.model, s["users"], s["items"], cfg.seed)  # the gate's un-tuned reference
    model = copy.deepcopy(start)
    rng = np.random.default_rng(cfg.seed)
    known = positive_keys(
        Interactions(
            np.concatenate([merged.data.train.users, merged.holdout.test_users]),
            np.concatenate([merged.data.train.items, merged.holdout.test_items]),
            merged.data.train.user_ids,
            merged.data.train.item_ids,
        )
    )
    # model selection on the new interactions only: a validation carved from the replayed old ones would reward
    # the parent, which was trained on them
    new_train, val = merged.new_train, None
    try:
        val = leave_one_out(new_train, seed=cfg.seed + 1, name="update validation", known=known)
        new_train = val.train
    except EdgerecError:
        log.warning("update: too few new interactions for a validation split; selecting on the replay mix")
    mix = _replay(pdata, new_train, cfg.replay, rng)
    mix_ds = Dataset("update mix", mix, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 1), np.int64))
    row_mask = _freeze_all_but_rows(model, merged.new_train) if cfg.scope == "rows" else None
    options = FitOptions("update", progress, known=known, row_mask=row_mask, val=val)
    res = fit(model, mix_ds, cfg.train_config(), options)
    for param in res.model.parameters():
        param.requires_grad_(True)
    train_seconds = time.perf_counter() - t0
    parent_m = _metrics(ck.model, pdata)
    child_m = _metrics(res.model, merged.parent_protocol)
    start_hold = _metrics(start, merged.holdout, full=False)
    child_hold = _metrics(res.model, merged.holdout, full=False)
    failures = list(cfg.tolerance.gate("on the parent's test protocol", child_m, parent_m).failures)
    notes = []
    if not child_hold:
        notes.append("no new-data holdout (no user has two new interactions): only the parent's protocol was checked")
    else:
        what = "on the new data's holdout, against the un-tuned grown parent"
        failures += list(cfg.holdout_tolerance.gate(what, child_hold, start_hold).failures)
        chance = 10 / (1 + merged.holdout.test_negatives.shape[1])
        if child_hold["hr@10"] < cfg.min_holdout_lift * chance:
            failures.append(
                f"HR@10 on the new data's holdout is {child_hold['hr@10']:.4f}, under {cfg.min_holdout_lift:g}x chance "
                f"({chance:.2f}): the new interactions cannot be predicted; are their ids corrupt?"
            )
    spec, calibration = carry_calibration(ck, res.model, merged.data) if not failures else (None, "")
    parent_version = ck.version
    report = {
        "metrics": child_m,
        "update": {
            **s,
            "replayed": len(mix) - len(new_train),
            "validation_users": 0 if val is None else len(val.test_users),
            "config": asdict(cfg),
            "fine_tune": res.summary(),
            "seconds": round(train_seconds, 2),
            "parent_protocol": {
                "parent": parent_m,
                "child": child_m,
                "delta_hr@10": _delta(child_m, parent_m, "hr@10"),
                "delta_ndcg@10": _delta(child_m, parent_m, "ndcg@10"),
            },
            "holdout": {
                "grown_parent": start_hold,
                "child": child_hold,
                "delta_hr@10": _delta(child_hold, start_hold, "hr@10"),
            },
            "gate": {"passed": not failures, "failures": failures, "notes": notes},
        },
        "lineage": {
            "version": parent_version + 1,
            "parent_version": parent_version,
            "parent_weights_sha256": ck.weights_sha256,
            "parent_config_sha256": sha256_file(ck.path / CONFIG) if ck.path else None,
            "parent_data_fingerprint": pdata.fingerprint(),
            "parent_path": str(ck.path.resolve()) if ck.path else None,
            "change": {k: s[k] for k in ("interactions_added", "users_added", "items_added", "users", "items")}
            | {
                "delta_hr@10_parent_protocol": _delta(child_m, parent_m, "hr@10"),
                "delta_hr@10_new_holdout": _delta(child_hold, start_hold, "hr@10"),
            },
            "calibration": calibration,
        },
    }
    return UpdateResult(res.model, merged.data, report, not failures, spec)


def child_checkpoint(result: UpdateResult) -> Checkpoint:
    """The updated checkpoint: version and lineage in its config, its own data and calibration attached."""
    lineage = result.report["lineage"]
    files = spec_files(result.model, result.spec) if result.spec is not None else {}
    return Checkpoint.create(
        result.model,
        result.data,
        result.report,
        extra={"version": lineage["version"], "lineage": lineage},
        files=files,
        store_data=True,
    )
