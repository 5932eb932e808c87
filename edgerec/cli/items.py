"""`edgerec add-items` / `edgerec add-users --model CKPT --items|--users FILE --out CKPT2`: new items (scored by their
features) or new users (vectors from their features) into a feature model without retraining."""

from __future__ import annotations

import argparse

from edgerec import api


def add(sub: argparse._SubParsersAction) -> None:
    sides = (("item", "add-items", "scored by their features"),
             ("user", "add-users", "their vectors from their features, no history needed"))  # fmt: skip
    for side, verb, what in sides:
        p = sub.add_parser(
            verb,
            help=f"add new {side}s to a model trained with {side} features, {what} (no retraining)",
            description=f"The {side}s of FILE that the model does not know get rows computed from their features by "
            "the training encoder; the id maps grow and the checkpoint is written to --out. Export, delta and rollout "
            f"then carry them as any other {side}.",
        )
        p.add_argument("--model", required=True, help=f"a checkpoint trained with --{side}-features")
        p.add_argument(f"--{side}s", dest="table", required=True,
                       help=f"the new {side}s' feature table (CSV / TSV / Parquet / MovieLens .dat)")  # fmt: skip
        p.add_argument("--out", required=True, help="the new checkpoint folder (written atomically)")
        p.set_defaults(run=run, side=side)


def run(args: argparse.Namespace) -> int:
    verb = api.add_items if args.side == "item" else api.add_users
    res = verb(args.model, args.table, args.out)
    known = f"; {res.already_known:,} already known, left as they are" if res.already_known else ""
    where = f"{res.size:,} {args.side}s in {res.folder} (version {res.version})"
    how = f", each placed by its {res.neighbours} nearest known {args.side}s" if res.neighbours else ""
    print(f"added {res.added:,} {args.side}(s) by their features{how}{known}: {where}")
    return 0
