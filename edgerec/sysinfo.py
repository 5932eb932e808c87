"""Which machine produced a number: every benchmark table names it."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{cpu}, {os.cpu_count()} cores"
    torch = sys.modules.get("torch")  # reported when in use; never imported here (runtimes run without it)
    if torch is not None:
        n = torch.get_num_threads()
        text += f", torch {torch.__version__}, {n} thread{'s' if n != 1 else ''}"
    return text
