"""The model side of an update's growth: the parent's tables extended to the merged id maps.

The grown parent is both the fine-tuning's start and the gate's un-tuned reference on the new data's holdout. A
feature parent (edgerec.model.features.FeatureNCF) grows into a feature model: each new id of a side with features
gets its encoding (from the update's feature table, by the parent's encoder) and the id rows `edgerec add-items` would
give it (edgerec.model.features.new_rows: zero, or its feature neighbours' placement), so that it starts where
add-items would put it; the other sides' new rows start as a plain model's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict

import numpy as np
import torch

from edgerec.data.features import Encoded, join, read_features
from edgerec.errors import EdgerecError
from edgerec.model.features import SIDES, FeatureNCF, new_rows, with_encodings
from edgerec.model.ncf import NCF
from edgerec.updates.config import UpdateConfig


def grow(model: NCF, n_users: int, n_items: int, seed: int = 0, encoded: Mapping[str, Encoded] | None = None) -> NCF:
    """A copy of model with n_users / n_items rows; old rows unchanged, new rows = mean old row + N(0, 0.01), or, on
    a feature side, new_rows of `encoded[side]` (one row per new id: their features)."""
    arch = model.arch
    if n_users < arch.n_users or n_items < arch.n_items:
        raise EdgerecError("an update never removes users or items")
    arch = type(arch)(**{**asdict(arch), "n_users": n_users, "n_items": n_items})
    grown = NCF(arch)
    feature_sides: set[str] = set()
    placed: dict[str, torch.Tensor] = {}
    if isinstance(model, FeatureNCF):
        features = model.features
        for side, enc in (encoded or {}).items():
            placed |= new_rows(model, side, enc)  # type: ignore[arg-type]
            features = with_encodings(features, side, enc)  # type: ignore[arg-type]
        grown = FeatureNCF(arch, features)
        feature_sides = set(features.encoded)
    gen = torch.Generator().manual_seed(seed)
    state = {}
    with torch.no_grad():
        for name, value in model.state_dict().items():
            table = name.split(".")[0]
            if name.endswith(".weight") and table in model.tables():
                side = table.rsplit("_", 1)[1]
                extra = (n_users if side == "user" else n_items) - value.shape[0]
                noise = 0.01 * torch.randn(extra, value.shape[1], generator=gen)
                if side in feature_sides:
                    rows = placed[table] if table in placed else torch.zeros_like(noise)
                else:
                    rows = value.mean(dim=0, keepdim=True) + noise
                value = torch.cat([value, rows])
            state[name] = value.clone()
    grown.load_state_dict(state)
    grown.eval()
    return grown


def new_features(
    model: NCF, new_ids: Mapping[str, np.ndarray], cfg: UpdateConfig
) -> tuple[dict[str, Encoded], dict[str, dict]]:
    """For a feature parent, each feature side's new ids (original ids, in the merged order) encoded by its encoder
    from cfg's table for that side (ids it lacks: every feature missing); and per side how many the table covered.
    A table for a side the parent has no features on is refused."""
    tables = {"user": cfg.user_features, "item": cfg.item_features}
    encoders = model.features.encoders if isinstance(model, FeatureNCF) else {}
    for side in SIDES:
        if tables[side] is not None and side not in encoders:
            raise EdgerecError(
                f"{tables[side]}: the parent has no {side} features, so a {side} feature table has nothing to feed"
            )
    encoded: dict[str, Encoded] = {}
    report: dict[str, dict] = {}
    for side, encoder in sorted(encoders.items()):
        ids, path = new_ids[side], tables[side]
        table = None if path is None else read_features(path, side)  # type: ignore[arg-type]
        encoded[side] = encoder.encode_ids(table, ids)
        covered = 0 if table is None else int((join(table, ids) >= 0).sum())
        report[side] = {"table": path, "new": len(ids), "with_features": covered}
    return encoded, report
