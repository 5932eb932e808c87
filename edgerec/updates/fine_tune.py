"""An update's fine-tuning: the grown parent trained on the new interactions plus a replay sample of old ones (so
it does not forget), with negatives that avoid every known positive, model selection on a validation item per user
carved from the new interactions, and under --scope rows only the touched rows learning."""

from __future__ import annotations

import copy
import logging

import numpy as np
import torch

from edgerec.data.interactions import Interactions
from edgerec.data.split import Dataset, leave_one_out, positive_keys
from edgerec.errors import EdgerecError
from edgerec.model.ncf import NCF
from edgerec.model.training import FitOptions, Progress, fit
from edgerec.updates.config import UpdateConfig
from edgerec.updates.merge import Merged
from edgerec.updates.report import FineTune

log = logging.getLogger(__name__)


def replay(parent: Dataset, new_train: Interactions, ratio: float, rng: np.random.Generator) -> Interactions:
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


def freeze_all_but_rows(model: NCF, touched: Interactions) -> dict[str, torch.Tensor]:
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


def fine_tune(
    start: NCF, parent: Dataset, merged: Merged, cfg: UpdateConfig, progress: Progress | None = None
) -> tuple[NCF, FineTune]:
    """A copy of `start` (the grown parent, left as it is for the gate) fine-tuned; the model and how it went."""
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
    mix = replay(parent, new_train, cfg.replay, rng)
    mix_ds = Dataset("update mix", mix, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 1), np.int64))
    row_mask = freeze_all_but_rows(model, merged.new_train) if cfg.scope == "rows" else None
    options = FitOptions("update", progress, known=known, row_mask=row_mask, val=val)
    res = fit(model, mix_ds, cfg.train_config(), options)
    for param in res.model.parameters():
        param.requires_grad_(True)
    validation_users = 0 if val is None else len(val.test_users)
    return res.model, FineTune.of(res, len(mix) - len(new_train), validation_users)
