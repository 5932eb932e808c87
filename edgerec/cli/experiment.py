"""`edgerec experiment start | shadow | status | stop | promote REPO`: experiments served by Triton (a candidate
version beside the served one, A/B or shadow); `edgerec experiment report LOG`: an A/B test read from the feedback
event log (per arm, the difference, the sample-ratio check and the sequential decision); `edgerec experiment
shadow-report FILE`: a shadow experiment's log."""

from __future__ import annotations

import argparse

from edgerec import api
from edgerec.cli.common import data_args, load_data, table
from edgerec.errors import EdgerecError
from edgerec.experiments.config import ExperimentConfig

EXP = ExperimentConfig()


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("experiment", help="experiments on live traffic: A/B tests and their reports")
    cmds = p.add_subparsers(dest="experiment", required=True, metavar="COMMAND")
    for name, mode, text in (
        ("start", "ab", "an A/B test: each user answered by the arm of a seeded hash of their id"),
        ("shadow", "shadow", "a shadow: the served version answers, the candidate is measured on the same requests"),
    ):
        s = cmds.add_parser(
            name,
            help=f"serve a candidate checkpoint beside the served version: {text}",
            description=f"The candidate is exported with the repository's settings, verified (the roll-out's parity "
            f"gate) and added as the next version; both versions are loaded and the `experiment` router model "
            f"answers ({text}). A running `edgerec serve` picks it up.",
        )
        s.add_argument("repo", help="the Triton repository folder (edgerec export --target triton)")
        s.add_argument("--model", required=True, help="the candidate checkpoint folder")
        if mode == "ab":
            s.add_argument("--traffic", type=float, default=EXP.traffic,
                           help=f"the share of users answered by the candidate (default {EXP.traffic})")  # fmt: skip
        s.add_argument("--salt", default=EXP.salt, help=f"the assignment hash's key (default {EXP.salt})")
        if mode == "shadow":
            s.add_argument("--queue", type=int, default=EXP.shadow_queue,
                           help=f"batches waiting for the candidate before requests go unshadowed (default "
                           f"{EXP.shadow_queue})")  # fmt: skip
        data_args(s, required=False, default_note=" (default: the data the checkpoint stores)")
        s.set_defaults(run=run_start, mode=mode)
    st = cmds.add_parser("status", help="the repository's running experiment and the ended ones")
    st.add_argument("repo", help="the Triton repository folder")
    st.set_defaults(run=run_status)
    sp = cmds.add_parser("stop", help="end the running experiment: the served version alone again")
    sp.add_argument("repo", help="the Triton repository folder")
    sp.set_defaults(run=run_stop)
    pr = cmds.add_parser(
        "promote",
        help="end the running experiment by serving the candidate alone",
        description="With --log, the A/B report of that feedback event log is the gate: it must decide for the "
        "candidate (arm B) with the sample ratio intact, else nothing changes (exit 2).",
    )
    pr.add_argument("repo", help="the Triton repository folder")
    pr.add_argument("--log", default=None, help="the feedback event log whose report must decide for the candidate")
    pr.add_argument("--metric", choices=["ctr", "conversion"], default=EXP.metric, help=f"(default {EXP.metric})")
    pr.add_argument("--alpha", type=float, default=EXP.alpha, help=f"(default {EXP.alpha})")
    pr.set_defaults(run=run_promote)
    sr = cmds.add_parser("shadow-report", help="a shadow experiment's report from its log (serve --shadow-log)")
    sr.add_argument("log", metavar="FILE", help="the shadow log")
    sr.add_argument("--json", default=None, help="write the report to this JSON file")
    sr.set_defaults(run=run_shadow_report)
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


def run_start(args: argparse.Namespace) -> int:
    values = {"mode": args.mode, "salt": args.salt}
    values |= {"traffic": args.traffic} if args.mode == "ab" else {"shadow_queue": args.queue}
    cfg = ExperimentConfig(**values)
    data = load_data(args) if args.data else None
    state = api.experiment_start(args.repo, args.model, cfg, data)
    _print(args.repo, state)
    return 0


def run_status(args: argparse.Namespace) -> int:
    state = api.experiment_status(args.repo)
    _print(args.repo, state)
    for ended in state.ended:
        print(f"  ended {ended['ended']}: {ended['mode']} of version {ended['candidate']} beside {ended['control']} "
              f"from {ended['started']}, {ended['outcome']}")  # fmt: skip
    return 0


def run_stop(args: argparse.Namespace) -> int:
    state = api.experiment_stop(args.repo)
    print(f"{args.repo}: experiment stopped; version {state.served} is served alone (versions held: "
          f"{list(state.held)})")  # fmt: skip
    return 0


def run_promote(args: argparse.Namespace) -> int:
    cfg = ExperimentConfig(metric=args.metric, alpha=args.alpha)
    state = api.experiment_promote(args.repo, args.log, cfg)
    gate = " (the report decided for it)" if args.log else ""
    print(f"{args.repo}: version {state.served} promoted{gate}: served alone (versions held: {list(state.held)})")
    return 0


def _print(repo: str, state) -> None:  # state: edgerec.experiments.repository.ExperimentState
    r = state.running
    if not r:
        print(f"{repo}: no experiment running; version {state.served} is served (versions held: {list(state.held)})")
        return
    split = f"{r['traffic']:.0%} of users on the candidate" if r["mode"] == "ab" else "the live version answers"
    print(f"{repo}: {'A/B test' if r['mode'] == 'ab' else 'shadow'} since {r['started']}: version "
          f"{r['candidate']} beside {r['control']} ({split}, salt {r['salt']}); model `experiment` answers with the "
          "version")  # fmt: skip


def run_shadow_report(args: argparse.Namespace) -> int:
    rep = api.shadow_report(args.log)
    lat = rep.latency_ms
    print(f"{args.log}: shadow of version {rep.versions[1]} beside {rep.versions[0]}: {rep.users:,} users shadowed, "
          f"{rep.answered:,} answered, {rep.errors:,} errors, {rep.dropped:,} not shadowed (queue full)")  # fmt: skip
    if rep.answered:
        print(f"top-K overlap with the live answer: mean {rep.overlap:.3f}, identical lists "
              f"{rep.overlap_share_identical:.1%}")  # fmt: skip
    print(f"candidate latency per call: p50 {lat['p50']:.2f} ms, p90 {lat['p90']:.2f} ms, p99 {lat['p99']:.2f} ms, "
          f"max {lat['max']:.2f} ms")  # fmt: skip
    if rep.first_error:
        print(f"first error: {rep.first_error}")
    if args.json:
        rep.save(args.json)
    return 0
