"""Sizes checked before anything is allocated: what an array would need against the memory the machine has free."""

from __future__ import annotations

import os

from edgerec.errors import EdgerecError

# the largest batch any config accepts (training batches, export buckets, benchmarked batches): 2^24 rows of ids and
# scores are a few hundred MB; anything beyond is a typo, refused when the config is built
MAX_BATCH = 1 << 24


def available_bytes() -> int:
    """MemAvailable from /proc/meminfo (what can be allocated without swapping); elsewhere free physical pages."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # unknown: do not refuse


def gib(n: float) -> str:
    """Bytes in the largest binary unit that keeps the number at least 1 (MiB to EiB)."""
    for unit, shift in (("EiB", 60), ("PiB", 50), ("TiB", 40), ("GiB", 30)):
        if n >= 2**shift:
            return f"{n / 2**shift:.1f} {unit}"
    return f"{n / 2**20:.0f} MiB"


def require(nbytes: float, what: str, hint: str) -> None:
    """Refuse, before allocating, a step that would need more than the available memory."""
    free = available_bytes()
    if nbytes > free:
        raise EdgerecError(f"{what} needs about {gib(nbytes)} of memory and {gib(free)} is available: {hint}")
