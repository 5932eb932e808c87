"""The report of a shadow experiment from the router's shadow log (`edgerec serve --shadow-log FILE`): one JSON line
per shadowed user with the live and the candidate's top-K (original ids), their overlap, the candidate's latency or
its error, and how many requests were not shadowed because the candidate fell behind. numpy only."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgerec.errors import EdgerecError
from edgerec.io import SavesJson


@dataclass(frozen=True)
class ShadowReport(SavesJson):
    log: str
    versions: tuple[int, int]  # (control, candidate)
    users: int  # lines: shadowed users
    answered: int  # the candidate answered
    errors: int
    first_error: str | None
    dropped: int  # users not shadowed: the candidate's queue was full
    overlap: float  # mean top-K overlap with the live answer, over answered users
    overlap_share_identical: float  # the share of answered users whose two top-K hold the same items
    latency_ms: dict[str, float]  # the candidate's call, per batch: p50 / p90 / p99 / max

    def to_json(self) -> dict[str, Any]:
        return {
            "log": self.log,
            "versions": list(self.versions),
            "users": self.users,
            "answered": self.answered,
            "errors": self.errors,
            "first_error": self.first_error,
            "dropped": self.dropped,
            "overlap": self.overlap,
            "overlap_share_identical": self.overlap_share_identical,
            "latency_ms": self.latency_ms,
        }


def shadow_report(path: str | Path) -> ShadowReport:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise EdgerecError(f"{path}: unreadable shadow log ({e.strerror})") from None
    lines = []
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            if n == len(text.splitlines()) and not text.endswith("\n"):
                continue  # a last line cut by a stopped server
            raise EdgerecError(f"{path}:{n}: not a shadow log line") from None
        if not isinstance(line, dict) or "live" not in line or "candidate" not in line:
            raise EdgerecError(f"{path}:{n}: not a shadow log line")
        lines.append(line)
    if not lines:
        raise EdgerecError(f"{path}: the shadow log is empty (is the server running with --shadow-log?)")
    answered = [ln for ln in lines if "overlap" in ln]
    failed = [ln for ln in lines if "error" in ln]
    overlap = np.array([ln["overlap"] for ln in answered], dtype=np.float64)
    batches = {ln.get("batch", n): float(ln.get("latency_ms", 0.0)) for n, ln in enumerate(lines)}  # one per call
    lat = np.array(list(batches.values()), dtype=np.float64)
    versions = {(int(ln["control"]), int(ln["candidate"])) for ln in lines}
    if len(versions) != 1:
        raise EdgerecError(f"{path}: lines of several experiments ({sorted(versions)}): one log per experiment")
    return ShadowReport(
        log=str(path),
        versions=versions.pop(),
        users=len(lines),
        answered=len(answered),
        errors=len(failed),
        first_error=failed[0]["error"] if failed else None,
        dropped=int(sum(int(ln.get("dropped", 0)) for ln in lines)),
        overlap=float(overlap.mean()) if overlap.size else float("nan"),
        overlap_share_identical=float((overlap == 1.0).mean()) if overlap.size else float("nan"),
        latency_ms={q: float(np.percentile(lat, p)) for q, p in (("p50", 50), ("p90", 90), ("p99", 99))}
        | {"max": float(lat.max())},
    )
