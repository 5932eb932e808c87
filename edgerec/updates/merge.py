"""The update's data side: the parent's own data, and the new interactions merged onto its id maps.

Unknown users and items are appended (old indices never move, so deployed user vectors and item rows stay valid);
pairs the parent already knew are dropped; each user's latest new interaction is held out for the gate; the child's
test item becomes that freshest interaction, so the next update's gate follows drifting tastes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgerec.data.interactions import Interactions
from edgerec.data.split import Dataset, leave_one_out
from edgerec.errors import EdgerecError
from edgerec.model.checkpoint import Checkpoint
from edgerec.updates.report import Change


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
    change: Change


def merge(parent: Dataset, new: Interactions, seed: int = 0) -> Merged:
    """`new` on the parent's id maps, minus what the parent knew; its holdout, the child's data and the parent's
    protocol re-based on the child's train. `seed`: the holdout's negatives."""
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
    change = Change(
        rows_read=len(new),
        duplicate_rows=int(new.stats.get("duplicates", 0)),
        already_known=int((~fresh).sum()),
        interactions_added=len(rows),
        users_added=len(user_ids) - old.n_users,
        items_added=len(item_ids) - old.n_items,
        holdout_users=len(hold_users),
        users=len(user_ids),
        items=len(item_ids),
    )
    return Merged(new_train, holdout, data, protocol, change)
