"""The model side of an update's growth: the parent's tables extended to the merged id maps.

The grown parent is both the fine-tuning's start and the gate's un-tuned reference on the new data's holdout.
"""

from __future__ import annotations

from dataclasses import asdict

import torch

from edgerec.errors import EdgerecError
from edgerec.model.ncf import NCF


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
