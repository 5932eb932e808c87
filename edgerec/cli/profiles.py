"""`edgerec profiles`: the target profiles installed with edgerec (what `export --profile NAME` accepts)."""

from __future__ import annotations

import argparse

from edgerec.cli.common import table


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("profiles", help="list the shipped target profiles (names for `export --profile`)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from edgerec.profiles.schema import load_profile, shipped_dir, shipped_names

    rows = []
    for name in shipped_names():
        p = load_profile(name)
        rows.append([p.name, p.target, p.precision, p.package, p.device])
    columns = ("profile", "target", "precision", "runtime", "device")
    table(f"{len(rows)} profiles shipped with edgerec", columns, rows, left=columns)
    print(f"in {shipped_dir()}; use one with `edgerec export --profile NAME`, or pass a .yaml path")
    return 0
