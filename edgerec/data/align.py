"""Data onto a model's id maps, matched by original id.

Every loader numbers ids its own way (edgerec sorts them, RecBole and NVIDIA's NCF number them in order of first
appearance), so a model trained elsewhere and the data given with it rarely share dense indices. `align` re-indexes
a Dataset onto the model's id maps by original id (compared as text, so 42 and "42" are the same id). What the model
does not know is counted and left out: training rows with an unknown user or item, and test cases whose user, test
item or any negative is unknown. When too little of the data matches, the data (or the id maps) are not the model's:
that is an error, not a quiet evaluation on a handful of users.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from edgerec.data.interactions import Interactions
from edgerec.data.split import Dataset
from edgerec.errors import EdgerecError

log = logging.getLogger(__name__)

# below this share of the data's users (or items) known to the model, the data is not the model's
MIN_KNOWN = 0.5


@dataclass(frozen=True)
class Alignment:
    """What aligning left out: ids of the data unknown to the model and the rows and test cases that used them."""

    unknown_users: int
    unknown_items: int
    dropped_train: int
    dropped_test: int

    @property
    def exact(self) -> bool:
        return not (self.unknown_users or self.unknown_items or self.dropped_train or self.dropped_test)

    def describe(self) -> str:
        return (
            f"{self.unknown_users} users and {self.unknown_items} items of the data are unknown to the model: "
            f"left out {self.dropped_train} training interactions and {self.dropped_test} test cases"
        )


def index_of(model_ids: np.ndarray, data_ids: np.ndarray | list) -> np.ndarray:
    """[len(data_ids)] the model's index of every data id (compared as text), -1 where the model does not know it."""
    where = {str(x): k for k, x in enumerate(model_ids)}
    return np.asarray([where.get(str(x), -1) for x in data_ids], dtype=np.int64)


def same_ids(a: np.ndarray, b: np.ndarray) -> bool:
    return len(a) == len(b) and np.array_equal(a.astype(str), b.astype(str))


def align(
    ds: Dataset, user_ids: np.ndarray, item_ids: np.ndarray, what: str = "the model"
) -> tuple[Dataset, Alignment]:
    """ds re-indexed onto (user_ids, item_ids); unchanged (the same object) when its id maps already are those."""
    t = ds.train
    if same_ids(t.user_ids, user_ids) and same_ids(t.item_ids, item_ids):
        return ds, Alignment(0, 0, 0, 0)
    u, i = index_of(user_ids, t.user_ids), index_of(item_ids, t.item_ids)
    known_u, known_i = float((u >= 0).mean()), float((i >= 0).mean())
    if known_u < MIN_KNOWN or known_i < MIN_KNOWN:
        raise EdgerecError(
            f"the data's ids do not match {what}'s: only {known_u:.0%} of its {t.n_users} users and {known_i:.0%} of "
            f"its {t.n_items} items are known to it; use the data it was trained on (or the right --id-maps)"
        )
    users, items = u[t.users], i[t.items]
    keep = (users >= 0) & (items >= 0)
    train = Interactions(
        users[keep],
        items[keep],
        user_ids,
        item_ids,
        None if t.timestamps is None else t.timestamps[keep],
        None if t.ratings is None else t.ratings[keep],
    )
    tu, ti, tn = u[ds.test_users], i[ds.test_items], i[ds.test_negatives]
    ok = (tu >= 0) & (ti >= 0) & (tn >= 0).all(axis=1)
    if not ok.any():
        raise EdgerecError(f"no test case of the data is known to {what}: every one has an unknown user or item")
    order = np.argsort(tu[ok], kind="stable")
    ratings = None if ds.test_ratings is None else ds.test_ratings[ok][order]
    out = Dataset(ds.name, train, tu[ok][order], ti[ok][order], tn[ok][order], ratings)
    report = Alignment(int((u < 0).sum()), int((i < 0).sum()), int((~keep).sum()), int((~ok).sum()))
    if report.exact:
        log.info("%s: matched the data to %s's id maps by original id", ds.name, what)
    else:
        log.warning("%s: %s", ds.name, report.describe())
    return out, report
