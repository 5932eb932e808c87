"""What `edgerec verify --arch` runs on the other machine: an artifact's scores for given (user, items) rows and its
top-10 per user, through edgerec's own torch-free runtime.

    python -m edgerec.runtime.probe ARTIFACT IN.npz OUT.npz

IN.npz: users [U] int64, items [U, M] int64. OUT.npz: scores [U, M] float32, top10 [U, 10] int64, machine.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import numpy as np


def compute(folder: str | Path, users: np.ndarray, items: np.ndarray) -> dict[str, np.ndarray]:
    from edgerec.runtime import load_scorer

    scorer = load_scorer(folder, threads=1)
    u = np.repeat(users, items.shape[1])
    scores = np.asarray(scorer.score(u, items.ravel()), dtype=np.float32).reshape(items.shape)
    top = np.stack([np.asarray(scorer.top_k(int(x), 10)[0], dtype=np.int64) for x in users])
    return {"scores": scores, "top10": top}


def cpu_features() -> str:
    """The ARM64 features the kernels can use (from the auxiliary vector), e.g. "asimddp,i8mm"; "" elsewhere."""
    if platform.machine() != "aarch64":
        return ""
    import ctypes

    libc = ctypes.CDLL(None)
    libc.getauxval.restype = ctypes.c_ulong
    hwcap, hwcap2 = libc.getauxval(16), libc.getauxval(26)  # AT_HWCAP, AT_HWCAP2
    bits = {"asimddp": hwcap >> 20 & 1, "sve": hwcap >> 22 & 1, "i8mm": hwcap2 >> 13 & 1, "bf16": hwcap2 >> 14 & 1}
    return ",".join(name for name, on in bits.items() if on) or "neon only"


def main(argv: list[str]) -> int:
    from edgerec.errors import EdgerecError, one_line

    if len(argv) != 3:
        print("usage: python -m edgerec.runtime.probe ARTIFACT IN.npz OUT.npz", file=sys.stderr)
        return 2
    folder, src, dst = argv
    try:
        with np.load(src, allow_pickle=False) as f:
            out = compute(folder, f["users"], f["items"])
    except EdgerecError as e:
        print(f"edgerec: error: {one_line(e)}", file=sys.stderr)
        return 2
    np.savez(dst, **out, machine=np.asarray(platform.machine()), features=np.asarray(cpu_features()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
