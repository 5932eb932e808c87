"""Interactions from the serving event log (edgerec.serving.events), for `edgerec update --new LOG_DIR`.

The events that count as positives are configurable (click and purchase by default); impressions are read for
CTR, never trained on. A checkpoint updated from a log records in its lineage the log's id and the last record it
read (`through_seq`); an update of that checkpoint from the same log starts after it, so every complete record is
consumed exactly once, by one update. A torn last line (a writer killed mid-record) is skipped and counted.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from edgerec.data.interactions import Interactions
from edgerec.data.loaders import id_column
from edgerec.errors import EdgerecError
from edgerec.serving.events import EventError, read_log

DEFAULT_POSITIVES = ("click", "purchase")


def is_event_log(path: Path) -> bool:
    return path.is_dir() and any(p.name.startswith("events-") for p in path.iterdir())


def consumed(lineage: dict[str, Any] | None, log_id: str) -> int:
    """The last seq of this log an ancestor already consumed (0 if none did)."""
    fb = (lineage or {}).get("feedback") or {}
    return int(fb.get("through_seq", 0)) if fb.get("log_id") == log_id else 0


def read_feedback(
    folder: str | Path, positives: tuple[str, ...] = DEFAULT_POSITIVES, lineage: dict[str, Any] | None = None
) -> tuple[Interactions, dict[str, Any]]:
    """(the positives after what `lineage` consumed, as interactions with original ids; the summary for lineage)."""
    folder = Path(folder)
    try:
        segments, log_id = read_log(folder)
    except EventError as e:
        raise EdgerecError(str(e)) from None
    after = consumed(lineage, log_id)
    records = [r for s in segments for r in s.records if r["seq"] > after]
    summary = {
        "log": str(folder.resolve()),
        "log_id": log_id,
        "from_seq": after + 1,
        "through_seq": after + len(records),
        "events": len(records),
        "by_type": dict(Counter(r["event"] for r in records)),
        "positives": list(positives),
        "torn_skipped": sum(s.torn for s in segments),
        "segments": len(segments),
    }
    if not records:
        raise EdgerecError(
            f"{folder}: no events after seq {after} (the model already consumed this log through {after}): "
            "nothing to update"
        )
    rows = [r for r in records if r["event"] in positives and "item" in r]
    if not rows:
        raise EdgerecError(
            f"{folder}: {len(records)} new events, none of them {' or '.join(positives)}: nothing to train on"
        )
    source = f"{folder} (event log)"
    users = id_column([r["user"] for r in rows], source)
    items = id_column([r["item"] for r in rows], source)
    ts = np.asarray([r["ts"] for r in rows], dtype=np.int64)
    summary["interactions"] = len(rows)
    return Interactions.from_raw(users, items, ts, source=source), summary
