"""`edgerec recommend`: the top-K for a known user or a history (fold-in), each with its reasons. Torch-free."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

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
    p.add_argument("--user", default=None, help="a user id the model knows (original id)")
    p.add_argument("--history", default=None, help="comma-separated original item ids: a user the model never saw")
    p.add_argument(
        "--user-attributes",
        default=None,
        help="a new user's attributes for a model (or bundle) with user features: column=value pairs separated by "
        "commas (gender=F,age=25), or a JSON file holding one object; with --history the fold-in starts from "
        "their vectors",
    )
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


def attributes(text: str) -> dict[str, Any]:
    """--user-attributes: a JSON file holding one object, or column=value pairs separated by commas."""
    if text.endswith(".json") or Path(text).is_file():
        try:
            value = json.loads(Path(text).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise EdgerecError(f"--user-attributes {text}: not a readable JSON file ({type(e).__name__})") from None
        if not isinstance(value, dict):
            raise EdgerecError(f"--user-attributes {text}: expected one JSON object of column -> value")
        return value
    out: dict[str, Any] = {}
    for pair in (x.strip() for x in text.split(",")):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise EdgerecError(f"--user-attributes: expected column=value pairs separated by commas; got {pair!r}")
        out[key.strip()] = value.strip() or None
    return out


def run(args: argparse.Namespace) -> int:
    if (args.user is None) == (args.history is None and args.user_attributes is None):
        raise EdgerecError("give --user (a known user) or --history and / or --user-attributes (a new one)")
    history = None if args.history is None else [x.strip() for x in args.history.split(",") if x.strip()]
    if history is not None and not history:
        raise EdgerecError("--history: give at least one item id")
    attrs = None if args.user_attributes is None else attributes(args.user_attributes)
    explain = (
        ExplainConfig(method=args.explain, top=args.top, exact_candidates=args.exact_candidates)
        if args.explain
        else None
    )
    data = load_data(args) if args.data is not None else None
    recs = api.recommend(args.model, args.user, history, args.k, explain, data, attrs)
    rows = []
    for n, r in enumerate(recs.items):
        text = ", ".join(f"{item} ({weight:+.3f})" for item, weight in r.reasons)
        rows.append([str(n + 1), r.item, f"{r.logit:.3f}", *([text] if explain else [])])
    cols = ("rank", "item", "logit", *((f"because of ({args.explain})",) if explain else ()))
    table(f"top-{args.k} for {recs.who}", cols, rows, left=cols[-1:] if explain else ())
    if args.json:
        recs.save(args.json)
    return 0
