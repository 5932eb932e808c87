"""Which arm a user is in: a seeded hash of the user id, so the assignment is sticky across requests, restarts and
roll-outs of other models, and independent between experiments with different salts. The standard library only:
the served router model imports this very file, copied into the repository."""

from __future__ import annotations

import hashlib

ARMS = ("A", "B")  # A: the live version (control), B: the candidate


def bucket(user: str, salt: str) -> float:
    """A uniform number in [0, 1) fixed by (salt, user id)."""
    digest = hashlib.sha256(f"{salt}\x00{user}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def arm(user: str, salt: str, traffic: float) -> str:
    """ "B" for the share `traffic` of users, "A" for the others."""
    return "B" if bucket(user, salt) < traffic else "A"
