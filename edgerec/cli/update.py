"""`edgerec update`: flags -> UpdateConfig -> edgerec.update -> the next version, the change / gate table, and the
optional re-export for a profile."""

from __future__ import annotations

import argparse

from edgerec import api
from edgerec.cli.common import columns, from_flags, load_data, print_profile_run, progress, table
from edgerec.errors import EdgerecError, GateFailed
from edgerec.gates import DropTolerance
from edgerec.updates.config import UpdateConfig


def add(sub: argparse._SubParsersAction) -> None:
    d = UpdateConfig()
    p = sub.add_parser("update", help="fine-tune a checkpoint on new interactions (new users / items), gated")
    p.add_argument("--model", required=True, help="the parent checkpoint folder (only read, never changed)")
    p.add_argument(
        "--new",
        required=True,
        help="new interactions: .csv / .parquet (columns user,item[,timestamp][,rating]), ratings.dat or u.data, "
        "or the event log folder of `edgerec serve --log-dir` (its --positive events not consumed yet); ids as in "
        "the parent's id_maps.json, unseen ids become new users / items",
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
    p.add_argument(
        "--repo", default=None, help="then roll the update out as the next version of this Triton repository"
    )
    p.add_argument(
        "--positive",
        default=",".join(d.positives),
        help=f"with an event log: the event types that are positives (default {','.join(d.positives)})",
    )
    g = p.add_argument_group("fine-tuning and gate")
    g.add_argument("--epochs", type=int, default=d.epochs, help=f"maximum fine-tuning epochs (default {d.epochs})")
    g.add_argument("--replay", type=float, default=d.replay, help=f"old interactions per new one (default {d.replay})")
    g.add_argument("--lr", type=float, default=d.lr, help=f"Adam learning rate (default {d.lr})")
    g.add_argument(
        "--tolerance-hr",
        type=float,
        default=d.tolerance.hr,
        help="reject the update if HR@10 on the parent's test protocol drops more than this "
        f"(default {d.tolerance.hr})",
    )
    g.add_argument(
        "--holdout-tolerance-hr",
        type=float,
        default=d.holdout_tolerance.hr,
        help="... or if HR@10 on the new data's holdout falls below the grown, un-tuned parent's by more than this "
        f"(default {d.holdout_tolerance.hr})",
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
    f = p.add_argument_group("a parent trained with features")
    for side in ("user", "item"):
        f.add_argument(
            f"--{side}-features",
            default=None,
            metavar="FILE",
            help=f"feature table of the new {side}s (CSV, TSV, Parquet or MovieLens .dat, keyed by original {side} "
            f"id), encoded by the parent's encoder; a new {side} it lacks has every feature missing",
        )
    p.add_argument("--columns", type=columns, default=None, help="CSV/Parquet column names, e.g. user=uid,item=iid")
    p.set_defaults(run=run)


def _table(report: dict) -> None:
    u = report["update"]
    title = f"update: +{u['interactions_added']:,} interactions, +{u['users_added']} users, +{u['items_added']} items"
    rows = [
        ("parent's test protocol", "parent", u["parent_protocol"]["parent"]),
        ("parent's test protocol", "updated", u["parent_protocol"]["child"]),
        ("new-data holdout", "grown parent, not tuned", u["holdout"]["grown_parent"]),
        ("new-data holdout", "updated", u["holdout"]["child"]),
    ]
    cells = [[p, m, f"{r['hr@10']:.4f}", f"{r['ndcg@10']:.4f}", str(r["test_users"])] for p, m, r in rows if r]
    table(title, ("protocol", "model", "HR@10", "NDCG@10", "test users"), cells, left=("protocol", "model"))


def run(args: argparse.Namespace) -> int:
    cfg = from_flags(
        UpdateConfig,
        args,
        tolerance=DropTolerance(hr=args.tolerance_hr),
        holdout_tolerance=DropTolerance(hr=args.holdout_tolerance_hr),
        positives=tuple(p.strip() for p in args.positive.split(",") if p.strip()),
    )
    data = load_data(args) if args.data else None
    try:
        with progress(args.terminal) as update:
            done = api.update_chain(
                args.model, args.new, args.out, cfg, data, args.columns, args.repo, args.profile, args.artifact,
                args.cache, update,
            )  # fmt: skip
    except GateFailed as e:
        _table(e.report.to_json())
        raise EdgerecError(f"{e}; nothing written, {args.model} unchanged") from None
    child = done.child
    _table(child.report)
    for note in child.report["update"]["gate"]["notes"]:
        print(f"note: {note}")
    lineage = child.report["lineage"]
    print(f"wrote {done.out}/ (version {lineage['version']}, parent version {lineage['parent_version']}); "
          f"calibration: {lineage['calibration']}")  # fmt: skip
    fb = child.report["update"].get("feedback")
    if fb:
        print(f"event log {fb['log']}: read seq {fb['from_seq']}..{fb['through_seq']} ({fb['events']} events, "
              f"{fb['interactions']} positives; {fb['torn_skipped']} torn line(s) skipped)")  # fmt: skip
    if done.served is not None:
        print(f"rolled out: {args.repo} now serves version {done.served.version} (versions {list(done.served.held)}; "
              f"roll back with `edgerec rollback {args.repo} --to V`)")  # fmt: skip
    if done.profile_run is not None:
        return print_profile_run(done.profile_run, done.profile_run.artifact)
    return 0
