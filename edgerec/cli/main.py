"""The `edgerec` command: builds the parser from one module per command and runs the chosen one.

Each command parses its flags into a config, calls the public verb (edgerec.api) and prints the result. Expected
failures (EdgerecError) print one line and exit 2; Ctrl-C exits 130. Building the parser imports no torch.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from edgerec.cli import (
    app,
    bench,
    compress,
    delta,
    experiment,
    export,
    importing,
    items,
    profiles,
    recommend,
    serve,
    train,
    update,
    verify,
    versions,
)
from edgerec.cli.common import check_inputs, check_outputs
from edgerec.cli.output import command_output
from edgerec.errors import INTERRUPTED, EdgerecError, one_line

# each adds its subparsers (train: + evaluate)
COMMANDS = (train, items, importing, compress, export, bench, serve, recommend, verify, update, versions, delta,
            profiles, app, experiment)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="edgerec", description="Train, compress, export and benchmark NCF recommenders.")
    ap.add_argument("-q", "--quiet", action="store_true", help="only print results and errors")
    ap.add_argument("-v", "--verbose", action="store_true", help="also show third-party warnings and native log lines")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.add(sub)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    err = sys.stderr
    try:  # Ctrl-C while the parser is built (it imports the commands' modules) is an interruption too
        argv = list(sys.argv[1:] if argv is None else argv)
        args = build_parser().parse_args(argv)
        args.argv = ["edgerec", *argv]  # the command line, as results files name it
        with command_output(args.verbose, args.quiet) as err:
            args.terminal = err
            check_inputs(args)
            check_outputs(args)
            return int(args.run(args))
    except EdgerecError as e:
        print(f"edgerec: error: {one_line(e)}", file=err if not err.closed else sys.stderr)
        return 2
    except MemoryError:  # an allocation no size check foresaw: one line, naming the step
        print(f"edgerec: error: {_step(argv)}: out of memory; use smaller data or sizes", file=sys.stderr)
        return 2
    except OSError as e:  # disk full, permissions, a vanished file: what the system said, and where
        where = f"{e.filename}: " if e.filename else ""
        print(f"edgerec: error: {_step(argv)}: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return 130


def _step(argv: Sequence[str] | None) -> str:
    words = [a for a in (argv or []) if not a.startswith("-")][:1]
    return f"edgerec {words[0]}" if words else "edgerec"


if __name__ == "__main__":
    sys.exit(main())
