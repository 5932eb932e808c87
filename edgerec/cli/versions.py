"""`edgerec rollout REPO --model CKPT` and `edgerec rollback REPO --to V`: the versions a Triton repository serves."""

from __future__ import annotations

import argparse

from edgerec.cli.common import data_args


def add(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("rollout", help="add a checkpoint as the next version of a Triton repository (served at once)")
    r.add_argument("repo", help="the Triton repository folder (edgerec export --target triton)")
    r.add_argument("--model", required=True, help="the checkpoint folder to roll out (from `edgerec update`)")
    data_args(r, required=False, default_note=" (default: the data the checkpoint stores)")
    r.set_defaults(run=run_rollout)
    b = sub.add_parser("rollback", help="serve an earlier version of a Triton repository again")
    b.add_argument("repo", help="the Triton repository folder")
    b.add_argument("--to", type=int, required=True, help="the version to serve (one the repository holds)")
    b.set_defaults(run=run_rollback)


def _print(state) -> None:  # state: edgerec.serving.versions.ServedState
    hr = state.metrics["hr@10"]
    print(f"{state.version} is served (HR@10 {hr:.4f} at export); versions held: {list(state.held)}")


def run_rollout(args: argparse.Namespace) -> int:
    from edgerec import api
    from edgerec.cli.common import load_data

    data = load_data(args) if args.data else None
    _print(api.rollout(args.repo, args.model, data))
    return 0


def run_rollback(args: argparse.Namespace) -> int:
    from edgerec import api

    _print(api.rollback(args.repo, args.to))
    return 0
