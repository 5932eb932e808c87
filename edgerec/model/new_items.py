"""New items and users added to a feature model without retraining, by their features: `edgerec add-items`,
`edgerec add-users` (api.add_items, api.add_users)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgerec.compression.gate import COMPRESS_JSON
from edgerec.compression.quantize import carried_spec_files
from edgerec.data.features import FeatureTable, Side
from edgerec.errors import EdgerecError
from edgerec.io import SavesJson
from edgerec.model.checkpoint import Checkpoint
from edgerec.model.features import FeatureNCF, add_ids


@dataclass(frozen=True)
class AddedIds(SavesJson):
    """What `add_items` / `add_users` wrote: the new checkpoint's folder, the side, how many ids it added and left
    (already known), that side's size now, the new checkpoint's version and how the new ids were placed (the number
    of feature neighbours; 0: by their feature bags alone)."""

    folder: Path
    side: str
    added: int
    already_known: int
    size: int
    version: int  # the new checkpoint's: its parent's + 1
    neighbours: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "side": self.side, "added": self.added,
                "already_known": self.already_known, "size": self.size, "version": self.version,
                "neighbours": self.neighbours}  # fmt: skip


def lineage(parent: Checkpoint, change: dict[str, Any]) -> dict[str, Any]:
    """The child's lineage: the next version, the parent's identity, the change; what the parent's own lineage
    consumed of a feedback log is carried, so that the next `edgerec update` from that log starts after it."""
    record = {"version": parent.version + 1, **parent.as_parent(), "change": change}
    feedback = (parent.config.get("lineage") or {}).get("feedback")
    return record | ({"feedback": feedback} if feedback else {})


def add_from_features(ck: Checkpoint, table: FeatureTable, side: Side) -> tuple[Checkpoint, int, int]:
    """`ck` (a model with `side` features) with the ids of `table` it does not know added after its own, their rows
    computed from their features by the training encoder (add_ids): new items are scored, new users get their
    vectors, by features alone. (The new checkpoint, ids added, ids of the table already known and left as they
    are.)"""
    model = ck.model
    if not isinstance(model, FeatureNCF) or side not in model.features.encoders:
        raise EdgerecError(
            f"{ck.path or 'the model'} has no {side} features, so new {side}s have nothing to be scored by: train it "
            f"with --{side}-features"
        )
    old = ck.item_ids if side == "item" else ck.user_ids
    known = {str(x) for x in old}
    new = np.array([str(x) not in known for x in table.ids])
    if not new.any():
        raise EdgerecError(f"{table.source}: all {len(table)} {side}s are in the model already; nothing to add")
    ids = table.ids[new]
    if old.dtype.kind in "iu" and ids.dtype.kind not in "iu":
        raise EdgerecError(f"{table.source}: the model's {side} ids are integers; got {str(ids[0])[:40]!r}")
    grown = add_ids(model, side, model.features.encoders[side].encode_ids(table, ids))
    grown_ids = np.concatenate([old, ids.astype(old.dtype)])
    users, items = (ck.user_ids, grown_ids) if side == "item" else (grown_ids, ck.item_ids)
    added = {"source": table.source, "added": int(new.sum()), "already_known": int((~new).sum())}
    report = {**ck.config.get("report", {}), f"added_{side}s": added}
    extra = {k: v for k, v in ck.config.items() if k in ("train", "compression")} | {
        "version": ck.version + 1,
        "lineage": lineage(ck, {f"added_{side}s": added}),
    }
    # a compressed model stays compressed: its step reports, and its calibration for the grown tables
    files: dict[str, bytes | Path] = {**carried_spec_files(ck, grown)}
    if (steps := ck.read(COMPRESS_JSON)) is not None:
        files[COMPRESS_JSON] = steps
    child = Checkpoint.of(grown, users, items, report, ck.config.get("data") or {}, extra, files)
    return child, int(new.sum()), int((~new).sum())
