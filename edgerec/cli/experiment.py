"""`edgerec experiment report LOG`: an A/B test read from the feedback event log (per arm, the difference, the
sample-ratio check and the sequential decision)."""

from __future__ import annotations

import argparse

from edgerec import api
from edgerec.cli.common import table
from edgerec.errors import EdgerecError
from edgerec.experiments.config import ExperimentConfig

EXP = ExperimentConfig()


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("experiment", help="experiments on live traffic: A/B tests and their reports")
    cmds = p.add_subparsers(dest="experiment", required=True, metavar="COMMAND")
    r = cmds.add_parser(
        "report",
        help="an A/B test's report from the feedback event log",
        description="Per arm: users, impressions, clicks, purchases, CTR and conversion with intervals; the "
        "difference with its fixed-horizon and always-valid intervals; the sample-ratio check; the decision of the "
        "mSPRT sequential test (valid however often the report is read); the sample size for --mde.",
    )
    r.add_argument("log", metavar="LOG", help="the event log folder (edgerec serve --log-dir)")
    r.add_argument("--versions", required=True, help="the versions of arm A (live) and arm B (candidate): A,B")
    r.add_argument("--metric", choices=["ctr", "conversion"], default=EXP.metric, help=f"(default {EXP.metric})")
    r.add_argument("--traffic", type=float, default=EXP.traffic,
                   help=f"the configured share of users in arm B (default {EXP.traffic})")  # fmt: skip
    r.add_argument("--alpha", type=float, default=EXP.alpha, help=f"(default {EXP.alpha})")
    r.add_argument("--mde", type=float, default=EXP.mde,
                   help=f"minimum detectable effect, relative (default {EXP.mde})")  # fmt: skip
    r.add_argument("--look", type=int, default=EXP.look_s,
                   help=f"seconds between the sequential test's looks (default {EXP.look_s})")  # fmt: skip
    r.add_argument("--json", default=None, help="write the report to this JSON file")
    r.set_defaults(run=run_report)


def run_report(args: argparse.Namespace) -> int:
    versions = tuple(v.strip() for v in args.versions.split(","))
    if len(versions) != 2 or not all(versions):
        raise EdgerecError(f"--versions takes two versions, A,B (e.g. 1,2); got {args.versions!r}")
    cfg = ExperimentConfig(metric=args.metric, traffic=args.traffic, alpha=args.alpha, mde=args.mde,
                           look_s=args.look)  # fmt: skip
    rep = api.experiment_report(args.log, (versions[0], versions[1]), cfg)
    level = f"{1 - cfg.alpha:.0%}"
    rows = [
        [a.arm, a.version, f"{a.users:,}", f"{a.impressions:,}", f"{a.clicks:,}", f"{a.purchases:,}",
         f"{a.ctr:.4f} [{a.ctr_interval[0]:.4f}, {a.ctr_interval[1]:.4f}]",
         f"{a.conversion:.4f} [{a.conversion_interval[0]:.4f}, {a.conversion_interval[1]:.4f}]"]
        for a in rep.arms
    ]  # fmt: skip
    cols = ("arm", "version", "users", "impressions", "clicks", "purchases", f"CTR [{level}]",
            f"conversion [{level}]")  # fmt: skip
    table(f"{args.log}: experiment, {len(rep.looks)} look(s)", cols, rows)
    lo, hi = rep.interval
    alo, ahi = rep.always_valid_interval
    print(f"{rep.metric} B - A: {rep.difference:+.4f} ({rep.relative:+.1%}); {level} interval [{lo:+.4f}, {hi:+.4f}] "
          f"(one look), always valid [{alo:+.4f}, {ahi:+.4f}]")  # fmt: skip
    print(f"sample ratio: chi-square {rep.srm_chi2:.2f}, p = {rep.srm_p:.3g} against {1 - cfg.traffic:g} / "
          f"{cfg.traffic:g}{' (FLAGGED)' if rep.srm_flagged else ''}")  # fmt: skip
    if rep.unattributed:
        print(f"{rep.unattributed:,} event(s) of other versions or types left out")
    print(f"decision: {rep.message}")
    if args.json:
        rep.save(args.json)
    return 0
