"""The console script's entry point: imports the CLI inside a Ctrl-C guard.

`edgerec.cli` imports argparse, logging and edgerec's data modules (tens of milliseconds); an interrupt while they load
exits 130 with one line instead of a KeyboardInterrupt traceback. This module itself imports nothing but sys.
"""

from __future__ import annotations

import sys

INTERRUPTED = "edgerec: interrupted; no partial output was left in place"


def main() -> int:
    try:
        from edgerec.cli import main as cli_main
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return 130
    return cli_main()
