"""What the CLI shows: edgerec's own progress, tables and errors; third-party warnings and native log lines only
with -v/--verbose.

Third-party libraries (TensorFlow/absl and LiteRT in C++, torchao, torch's logging, litert-quantizer) write to the
process's stderr file descriptor and through Python's warnings and logging. Quiet (the default), warnings are
ignored, loggers other than edgerec's show errors only, and file descriptor 2 is pointed at a temporary file for
the command's duration while edgerec writes to a duplicate of the real stderr; the descriptor is restored before
the command returns, so a bug's traceback still reaches the terminal.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from typing import TextIO

log = logging.getLogger("edgerec")


def _is_fd2(stream: TextIO) -> bool:
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):  # a test's capture buffer, a closed stream
        return False


@contextlib.contextmanager
def command_output(verbose: bool, quiet: bool) -> Iterator[TextIO]:
    """For one command: yields the stream edgerec's own lines go to (its log lines at INFO, or WARNING with -q)."""
    level = logging.WARNING if quiet else logging.INFO
    if verbose:
        logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr, force=True)
        yield sys.stderr
        return
    redirect = _is_fd2(sys.stderr)
    saved = terminal = capture = None
    if redirect:
        sys.stderr.flush()
        saved = os.dup(2)
        terminal = os.fdopen(os.dup(saved), "w", buffering=1)
        capture = tempfile.TemporaryFile()  # noqa: SIM115 (closed in the finally below)
        os.dup2(capture.fileno(), 2)
    stream = terminal or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False
    root_level = logging.root.level
    logging.root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield stream
    finally:
        log.removeHandler(handler)
        log.propagate = True
        logging.root.setLevel(root_level)
        if redirect:
            assert saved is not None and terminal is not None and capture is not None
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            terminal.close()
            capture.close()


def console():  # -> rich.console.Console
    """A rich console that does not squeeze tables when output goes to a file or pipe (CI logs, benchmarks)."""
    import sys

    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=160)
