"""The feedback event log: append-only JSON Lines segments that survive crashes. Self-contained (the standard
library only): the feedback model of a Triton repository imports this very file, copied beside its model.py, and
`edgerec update --new LOG_DIR` reads the log with it.

    LOG_DIR/events-000001.jsonl   {"format": "edgerec.events", "version": 1, "log_id": ..., "segment": 1, ...}
                                  {"seq": 1, "user": "42", "item": "1193", "event": "click", "ts": 1733..., ...}
                                  (an event may name the model "version" that produced what it is about)
    LOG_DIR/events-000002.jsonl   the next segment: a new one per writer start, and when a segment is too big or old

Every record is one line, written with a single write(), flushed and fsync'ed before the request is answered; a
segment is never rewritten. A writer killed mid-line leaves a torn last line without its newline: readers skip it
and count it; any other damage (a line that is not a record, a foreign file, a gap in the sequence numbers) is an
error naming the file and line. `seq` numbers every record of the log, 1, 2, 3, ...: an update records the last
one it consumed, so the next one reads each complete record exactly once.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT, VERSION = "edgerec.events", 1
EVENT_TYPES = ("impression", "click", "purchase")
SEGMENT = re.compile(r"^events-(\d{6})\.jsonl$")
MAX_ID = 128  # characters of an original user / item id
MAX_SHOWN = 1000  # items of one impression
FUTURE_SKEW_S = 300  # a timestamp this far ahead of the server's clock is refused


class EventError(ValueError):
    """A bad event (the request's error) or a damaged log (one line naming the file)."""


def check_event(
    user: str,
    item: str | None,
    event: str,
    ts: int,
    shown: list[str],
    types: tuple[str, ...],
    last_ts: int,
    max_lag_s: int,
    version: str | None = None,
) -> dict[str, Any]:
    """The record of a valid event, or EventError saying what is wrong with it. `version`: the model version that
    produced what the event is about (an impression's list; the list a clicked item was shown in), for experiments."""
    if event not in types:
        raise EventError(f"unknown event type {event[:40]!r}: one of {', '.join(types)}")
    named = [("user", user), ("item", item), ("version", version)]
    for name, value in [(n, v) for n, v in named if v is not None and (n != "version" or v)]:
        if not _good_id(value):
            raise EventError(f"malformed {name} id {value[:40]!r}: 1..{MAX_ID} printable characters, no spaces")
    if event == "impression":
        if not 1 <= len(shown) <= MAX_SHOWN:
            raise EventError(f"an impression lists the 1..{MAX_SHOWN} items shown; got {len(shown)}")
        bad = [s for s in shown if not _good_id(s)]
        if bad:
            raise EventError(f"malformed item id {bad[0][:40]!r} among the items shown")
    elif item is None:
        raise EventError(f"a {event} names the item")
    now = int(time.time())
    if ts > now + FUTURE_SKEW_S:
        raise EventError(f"timestamp {ts} is in the future (server time {now})")
    if ts < last_ts - max_lag_s:
        raise EventError(f"timestamp {ts} is out of order: more than {max_lag_s} s before the log's newest ({last_ts})")
    record: dict[str, Any] = {"user": user, "event": event, "ts": int(ts)}
    if item is not None:
        record["item"] = item
    if event == "impression":
        record["shown"] = shown
    if version:
        record["version"] = version
    return record


def _good_id(value: str) -> bool:
    return 0 < len(value) <= MAX_ID and value.isprintable() and not any(c.isspace() for c in value)


@dataclass
class Segment:
    path: Path
    header: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    torn: int = 0  # a last line without its newline (a killed writer), skipped


def _read_segment(path: Path) -> Segment:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise EventError(f"{path}: unreadable ({e.strerror})") from None
    lines = data.split(b"\n")
    torn = 0
    if lines and lines[-1] == b"":
        lines.pop()
    elif lines:  # the last line has no newline: torn by a kill mid-write
        lines.pop()
        torn = 1
    if not lines:  # created, killed before its header was complete: an empty segment
        return Segment(path, {}, torn=torn)
    try:
        header = json.loads(lines[0])
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise EventError(f"{path}: not an edgerec event segment (first line is not its header)")
    if header.get("version") != VERSION:
        raise EventError(f"{path}: event log version {header.get('version')!r}; this edgerec reads {VERSION}")
    seg = Segment(path, header, torn=torn)
    for n, line in enumerate(lines[1:], start=2):
        try:
            rec = json.loads(line)
        except ValueError:
            rec = None
        if not isinstance(rec, dict) or not isinstance(rec.get("seq"), int) or rec.get("event") not in EVENT_TYPES:
            raise EventError(f"{path}:{n}: damaged record (not a JSON event record)")
        seg.records.append(rec)
    return seg


def read_log(folder: str | Path) -> tuple[list[Segment], str]:
    """Every segment of the log in order, and the log's id; EventError for a foreign or damaged folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EventError(f"{folder}: no such event log folder")
    names = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    foreign = [n for n in names if not SEGMENT.match(n)]
    if foreign:
        raise EventError(f"{folder / foreign[0]}: not an event segment (a log folder holds events-NNNNNN.jsonl only)")
    segments = [_read_segment(folder / n) for n in names]
    if not segments:
        raise EventError(f"{folder}: the event log is empty (no segments)")
    ids = {s.header.get("log_id") for s in segments if s.header}
    if not ids:
        raise EventError(f"{folder}: the event log has no complete segment header")
    if len(ids) != 1:
        raise EventError(f"{folder}: segments of different logs (log ids {sorted(map(str, ids))})")
    expected = 1
    for s in segments:
        for r in s.records:
            if r["seq"] != expected:
                raise EventError(f"{s.path}: record seq {r['seq']} where {expected} was next (records are missing)")
            expected += 1
    return segments, str(ids.pop())


class EventLog:
    """The writer: one per log folder (an exclusive flock on LOG_DIR/.writer), a new segment per start."""

    def __init__(
        self,
        folder: str | Path,
        max_bytes: int = 16 << 20,
        max_age_s: int = 3600,
        types: tuple[str, ...] = EVENT_TYPES,
        max_lag_s: int = 3600,
    ) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.max_bytes, self.max_age_s, self.types, self.max_lag_s = max_bytes, max_age_s, types, max_lag_s
        self._lock = threading.Lock()
        self._flock = open(self.folder / ".writer", "a")  # noqa: SIM115 (held while this writer lives)
        try:
            import fcntl

            fcntl.flock(self._flock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._flock.close()
            raise EventError(f"{self.folder}: another writer holds this event log") from None
        names = sorted(p.name for p in self.folder.iterdir() if SEGMENT.match(p.name))
        if names:
            segments, self.log_id = read_log(self.folder)
            self.seq = sum(len(s.records) for s in segments)
            self.last_ts = max((r["ts"] for s in segments for r in s.records), default=0)
            self.torn_at_start = sum(s.torn for s in segments)
            self.index = int(SEGMENT.match(names[-1]).group(1))
        else:
            self.log_id, self.seq, self.last_ts, self.torn_at_start, self.index = secrets.token_hex(8), 0, 0, 0, 0
        self._fd = -1
        self._open_segment()

    def _open_segment(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        self.index += 1
        self.path = self.folder / f"events-{self.index:06d}.jsonl"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        self.opened = time.time()
        header = {"format": FORMAT, "version": VERSION, "log_id": self.log_id, "segment": self.index,
                  "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}  # fmt: skip
        self._write(header)
        dir_fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the new segment's name survives a crash too
        finally:
            os.close(dir_fd)

    def _write(self, obj: dict[str, Any]) -> None:
        data = (json.dumps(obj, separators=(",", ":")) + "\n").encode()
        os.write(self._fd, data)  # O_APPEND: one write per line, never interleaved
        os.fsync(self._fd)

    def append(
        self,
        user: str,
        item: str | None,
        event: str,
        ts: int,
        shown: list[str] | None = None,
        version: str | None = None,
    ) -> int:
        """Check and log one event; its seq once it is on disk."""
        with self._lock:
            record = check_event(user, item, event, ts, shown or [], self.types, self.last_ts, self.max_lag_s, version)
            if os.fstat(self._fd).st_size >= self.max_bytes or time.time() - self.opened >= self.max_age_s:
                self._open_segment()
            self.seq += 1
            self._write({"seq": self.seq, **record})
            self.last_ts = max(self.last_ts, record["ts"])
            return self.seq

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._flock.close()
