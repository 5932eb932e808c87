"""`edgerec add-items --model CKPT --items FILE --out CKPT2`: new items into a feature model without retraining."""

from __future__ import annotations

import argparse

from edgerec import api


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "add-items",
        help="add new items to a model trained with item features, scored by their features (no retraining)",
        description="The items of FILE that the model does not know get rows computed from their features by the "
        "training encoder; the id maps grow and the checkpoint is written to --out. Export, delta and rollout then "
        "carry them as any other item.",
    )
    p.add_argument("--model", required=True, help="a checkpoint trained with --item-features")
    p.add_argument("--items", required=True, help="the new items' feature table (CSV / TSV / Parquet / movies.dat)")
    p.add_argument("--out", required=True, help="the new checkpoint folder (written atomically)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    res = api.add_items(args.model, args.items, args.out)
    known = f"; {res.already_known:,} already known, left as they are" if res.already_known else ""
    print(f"added {res.added:,} item(s) by their features{known}: {res.n_items:,} items in {res.folder}")
    return 0
