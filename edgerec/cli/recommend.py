"""`edgerec recommend`: the top-K for a known user or a history (fold-in), each with its reasons. Torch-free."""

from __future__ import annotations

import argparse

from edgerec import api
from edgerec.cli.common import columns, load_data, table
from edgerec.errors import EdgerecError
from edgerec.runtime.config import ExplainConfig

DEFAULT = ExplainConfig()


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "recommend",
        help="top-K recommendations for a user or a history of items, with 'because you liked X' reasons",
        description="Scores the catalog with the checkpoint's NeuMF (numpy, no torch). --user: a known user's trained "
        "vectors, their history read from --data; --history: a new user folded in from those items.",
    )
    p.add_argument(
        "--model", required=True, help="a checkpoint folder (a NeuMF), or a phone bundle exported with --explain"
    )
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", default=None, help="a user id the model knows (original id)")
    who.add_argument("--history", default=None, help="comma-separated original item ids: a user the model never saw")
    p.add_argument("--data", default=None, help="with --user: the data whose training items are the user's history")
    p.add_argument("--columns", type=columns, default=None, help=argparse.SUPPRESS)
    p.add_argument("--split-seed", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--k", type=int, default=10, help="recommendations (default 10)")
    p.add_argument(
        "--explain",
        default=None,
        choices=["similarity", "exact"],
        help="reasons per recommendation: similarity (cheap: item-item in the model's item spaces) or exact "
        "(the logit drop when the history item is left out and the user is fitted again, for the candidates a "
        "first-order estimate ranks highest)",
    )
    p.add_argument("--top", type=int, default=DEFAULT.top, help=f"reasons per recommendation (default {DEFAULT.top})")
    p.add_argument(
        "--exact-candidates",
        type=int,
        default=DEFAULT.exact_candidates,
        help="exact: history items re-fitted per recommendation, those a first-order estimate ranks highest "
        f"(default {DEFAULT.exact_candidates}); a longer history's other items rank after them, by the estimate",
    )
    p.add_argument("--json", default=None, help="also write the recommendations to this JSON file")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    history = None if args.history is None else [x.strip() for x in args.history.split(",") if x.strip()]
    if history is not None and not history:
        raise EdgerecError("--history: give at least one item id")
    explain = (
        ExplainConfig(method=args.explain, top=args.top, exact_candidates=args.exact_candidates)
        if args.explain
        else None
    )
    data = load_data(args) if args.data is not None else None
    recs = api.recommend(args.model, args.user, history, args.k, explain, data)
    rows = []
    for n, r in enumerate(recs.items):
        text = ", ".join(f"{item} ({weight:+.3f})" for item, weight in r.reasons)
        rows.append([str(n + 1), r.item, f"{r.logit:.3f}", *([text] if explain else [])])
    cols = ("rank", "item", "logit", *((f"because of ({args.explain})",) if explain else ()))
    table(f"top-{args.k} for {recs.who}", cols, rows, left=cols[-1:] if explain else ())
    if args.json:
        recs.save(args.json)
    return 0
