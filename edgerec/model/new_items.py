"""New items added to a feature model without retraining: `edgerec add-items` (api.add_items)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgerec.data.features import FeatureTable
from edgerec.errors import EdgerecError
from edgerec.io import SavesJson
from edgerec.model.checkpoint import Checkpoint
from edgerec.model.features import FeatureNCF, add_ids


@dataclass(frozen=True)
class AddedItems(SavesJson):
    """What `add_items` wrote: the new checkpoint's folder, how many items it added and left (already known), and
    its catalog size."""

    folder: Path
    added: int
    already_known: int
    n_items: int

    def to_json(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "added": self.added, "already_known": self.already_known,
                "n_items": self.n_items}  # fmt: skip


def add_items(ck: Checkpoint, table: FeatureTable) -> tuple[Checkpoint, int, int]:
    """`ck` (a model with item features) with the items of `table` it does not know added after its own, their rows
    computed from their features by the training encoder (add_ids); (the new checkpoint, items added, items of the
    table already known and left as they are)."""
    model = ck.model
    if not isinstance(model, FeatureNCF) or "item" not in model.features.encoders:
        raise EdgerecError(
            f"{ck.path or 'the model'} has no item features, so new items have nothing to be scored by: train it "
            "with --item-features"
        )
    known = {str(x) for x in ck.item_ids}
    new = np.array([str(x) not in known for x in table.ids])
    if not new.any():
        raise EdgerecError(f"{table.source}: all {len(table)} items are in the model already; nothing to add")
    ids = table.ids[new]
    if ck.item_ids.dtype.kind in "iu" and ids.dtype.kind not in "iu":
        raise EdgerecError(f"{table.source}: the model's item ids are integers; got {str(ids[0])[:40]!r}")
    grown = add_ids(model, "item", model.features.encoders["item"].encode_ids(table, ids))
    item_ids = np.concatenate([ck.item_ids, ids.astype(ck.item_ids.dtype)])
    report = {**ck.config.get("report", {}), "added_items": {"source": table.source, "added": int(new.sum()),
                                                              "already_known": int((~new).sum())}}  # fmt: skip
    extra = {k: v for k, v in ck.config.items() if k in ("train", "lineage", "version")}
    child = Checkpoint.of(grown, ck.user_ids, item_ids, report, ck.config.get("data") or {}, extra)
    return child, int(new.sum()), int((~new).sum())
