"""`edgerec update`: arguments, the change / gate table, and the optional re-export (the work is edgerec.update)."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgerec.errors import EdgerecError


def add_arguments(p: argparse.ArgumentParser) -> None:
    from edgerec.model.config import UpdateConfig

    d = UpdateConfig()
    p.add_argument("--model", required=True, help="the parent checkpoint folder (only read, never changed)")
    p.add_argument(
        "--new",
        required=True,
        help="new interactions: .csv / .parquet (columns user,item[,timestamp][,rating]), ratings.dat or u.data; "
        "ids as in the parent's id_maps.json, unseen ids become new users / items",
    )
    p.add_argument("--out", required=True, help="folder for the updated checkpoint (must differ from --model)")
    p.add_argument(
        "--data",
        default=None,
        help="the data the parent was trained on, when the parent came from `edgerec train` (an updated checkpoint "
        "stores its own)",
    )
    p.add_argument("--split-seed", type=int, default=0, help="--split-seed the parent was trained with (default 0)")
    p.add_argument("--profile", default=None, help="then re-export and re-verify for this target profile")
    p.add_argument("--artifact", default=None, help="with --profile: the artifact folder (default OUT-PROFILE)")
    p.add_argument("--cache", default=None, help="with --profile: step cache (default ~/.cache/edgerec/steps)")
    g = p.add_argument_group("fine-tuning and gate")
    g.add_argument("--epochs", type=int, default=d.epochs, help=f"maximum fine-tuning epochs (default {d.epochs})")
    g.add_argument("--replay", type=float, default=d.replay, help=f"old interactions per new one (default {d.replay})")
    g.add_argument("--lr", type=float, default=d.lr, help=f"Adam learning rate (default {d.lr})")
    g.add_argument(
        "--tolerance-hr",
        type=float,
        default=d.tolerance_hr,
        help="reject the update if HR@10 on the parent's test protocol drops more than this "
        f"(default {d.tolerance_hr})",
    )
    g.add_argument(
        "--holdout-tolerance-hr",
        type=float,
        default=d.holdout_tolerance_hr,
        help="... or if HR@10 on the new data's holdout falls below the grown, un-tuned parent's by more than this "
        f"(default {d.holdout_tolerance_hr})",
    )
    g.add_argument(
        "--min-holdout-lift",
        type=float,
        default=d.min_holdout_lift,
        help="... or if HR@10 on the new data's holdout is below this multiple of chance (0.1 with 99 negatives): "
        f"interactions that cannot be predicted look corrupt (default {d.min_holdout_lift})",
    )
    g.add_argument(
        "--scope",
        default=d.scope,
        choices=["all", "rows"],
        help="all: fine-tune every weight (default); rows: freeze the MLP and output layer and train only the rows of "
        "users and items in the new data, so that phones can take a small delta (`edgerec delta`)",
    )
    g.add_argument("--seed", type=int, default=d.seed, help="seed of holdout, replay sample and fine-tuning")


def _table(report: dict) -> None:
    from rich.table import Table

    from edgerec.io import console

    u = report["update"]
    table = Table(title=f"update: +{u['interactions_added']:,} interactions, +{u['users_added']} users, "
                  f"+{u['items_added']} items")  # fmt: skip
    for col in ("protocol", "model", "HR@10", "NDCG@10", "test users"):
        table.add_column(col, justify="left" if col in ("protocol", "model") else "right")
    rows = [
        ("parent's test protocol", "parent", u["parent_protocol"]["parent"]),
        ("parent's test protocol", "updated", u["parent_protocol"]["child"]),
        ("new-data holdout", "grown parent, not tuned", u["holdout"]["grown_parent"]),
        ("new-data holdout", "updated", u["holdout"]["child"]),
    ]
    for protocol, model, m in rows:
        if m:
            table.add_row(protocol, model, f"{m['hr@10']:.4f}", f"{m['ndcg@10']:.4f}", str(m["test_users"]))
    console().print(table)


def run(args: argparse.Namespace, progress=None) -> int:
    from edgerec.data import Columns, load_dataset, load_interactions
    from edgerec.export.cli import run_profile
    from edgerec.model.config import UpdateConfig, from_flags
    from edgerec.update import run_update, save_update

    out, parent = Path(args.out), Path(args.model)
    if out.resolve() == parent.resolve():
        raise EdgerecError("an update never overwrites its parent: choose another --out")
    cfg = from_flags(UpdateConfig, args)
    cfg.check()
    columns = args.columns or Columns()
    new = load_interactions(Path(args.new), columns, strict=True)
    data = load_dataset(args.data, seed=args.split_seed, columns=columns) if args.data else None
    result = run_update(parent, new, data, cfg, progress)
    _table(result.report)
    gate = result.report["update"]["gate"]
    for note in gate["notes"]:
        print(f"note: {note}")
    if not gate["passed"]:
        raise EdgerecError(
            "update rejected by the regression gate: " + "; ".join(gate["failures"]) + f"; nothing written, "
            f"{parent} unchanged"
        )
    save_update(result, out)
    lineage = result.report["lineage"]
    print(f"wrote {out}/ (version {lineage['version']}, parent version {lineage['parent_version']}); "
          f"calibration: {lineage['calibration']}")  # fmt: skip
    if args.profile:
        artifact = args.artifact or f"{out}-{Path(args.profile).stem}"
        ns = argparse.Namespace(profile=args.profile, out=artifact, model=str(out), cache=args.cache, dry_run=False)
        return run_profile(ns, result.data)
    return 0
