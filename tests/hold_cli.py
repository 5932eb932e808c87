"""`edgerec` with one fault injected, for the kill and lock tests: `atomic_dir` holds its finished temporary folder
(every file written, nothing renamed into place yet) until a release file exists, so a test acts on a process that
is certainly inside a write. Everything else is the real command.

usage: python tests/hold_cli.py RELEASE_FILE EDGEREC_ARGS...   (RELEASE_FILE.held appears while it holds)
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import edgerec.io

_atomic_dir = edgerec.io.atomic_dir


@contextlib.contextmanager
def holding_atomic_dir(dest: str | Path) -> Iterator[Path]:
    release = Path(sys.argv[1])
    with _atomic_dir(dest) as tmp:
        yield tmp
        Path(f"{release}.held").touch()
        deadline = time.time() + 300
        while not release.exists() and time.time() < deadline:
            time.sleep(0.02)


if __name__ == "__main__":
    edgerec.io.atomic_dir = holding_atomic_dir  # before the commands import it (they do so lazily)
    from edgerec.cli.main import main

    sys.exit(main(sys.argv[2:]))
