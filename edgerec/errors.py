"""The exceptions edgerec raises for expected failures, and the one-line form the CLI prints.

API users catch `EdgerecError` (or one of its kinds below) and read its attributes; the CLI prints `one_line(e)`
and exits 2. Internal invariants raise ordinary exceptions, so a bug keeps its traceback.
"""

from __future__ import annotations

from typing import Any, Protocol

INTERRUPTED = "edgerec: interrupted; no partial output was left in place"


class EdgerecError(Exception):
    """An expected failure caused by the user's input or environment (bad file, bad flag, missing backend)."""


def one_line(e: BaseException) -> str:
    """The message as the CLI prints it: one line, whitespace collapsed."""
    return " ".join(str(e).split())


class ConfigError(EdgerecError):
    """A config value out of range, of the wrong type, or unknown, found when the config is constructed."""


class Report(Protocol):
    """What every typed report is: attributes in memory, `to_json()` for the file on disk."""

    def to_json(self) -> Any: ...


class Verdict(Protocol):
    """What a gate decided (edgerec.gates.GateResult is the one implementation)."""

    @property
    def passed(self) -> bool: ...

    failures: tuple[str, ...]


class GateFailed(EdgerecError):
    """A quality gate (compression step, export verification, update) refused a result: `gate` is its GateResult,
    `report` the typed report it read (a StepReport or SearchReport for compression, a Verification for export,
    an UpdateReport for an update)."""

    def __init__(self, message: str, report: Report, gate: Verdict | None = None) -> None:
        super().__init__(message)
        self.report = report
        self.gate = gate


def shown(value: object, limit: int = 60) -> str:
    """repr(value) cut to `limit` characters, for echoing untrusted values inside one-line errors."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
