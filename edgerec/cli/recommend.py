"""`edgerec recommend`: the top-K for a known user or a history (fold-in), each with its reasons. Torch-free."""

from __future__ import annotations

import argparse


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
    p.add_argument("--k", type=int, default=10, help="recommendations (default 10)")
    p.add_argument(
        "--explain",
        default=None,
        choices=["similarity", "exact"],
        help="reasons per recommendation: similarity (cheap: item-item in the model's item spaces) or exact "
        "(the logit drop when the history item is left out and the user is fitted again)",
    )
    p.add_argument("--top", type=int, default=3, help="reasons per recommendation (default 3)")
    p.add_argument("--json", default=None, help="also write the recommendations to this JSON file")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from edgerec.cli.common import table
    from edgerec.errors import EdgerecError
    from edgerec.io import write_json
    from edgerec.runtime.explain import ExplainConfig, Explainer, NumpyModel
    from edgerec.runtime.foldin import fold_in

    m = NumpyModel.load(args.model)
    if args.history is not None:
        history = m.index([x.strip() for x in args.history.split(",") if x.strip()], "item")
        if history.size == 0:
            raise EdgerecError("--history: give at least one item id")
        p, q = (v.astype(np.float64) for v in fold_in(m.side, history))
        who = f"a new user with {len(np.unique(history))} items (folded in)"
    else:
        u = int(m.index([args.user], "user")[0])
        p, q = m.user_gmf[u], m.user_mlp[u]
        history = np.zeros(0, dtype=np.int64)
        if args.data is not None:
            from edgerec.data import load_dataset

            ds = load_dataset(args.data)
            from edgerec.data.align import index_of

            row = int(index_of(ds.train.user_ids, [args.user])[0])
            if row < 0:
                raise EdgerecError(f"--data has no user {args.user!r}")
            mine = ds.train.items[ds.train.users == row]
            history = m.index([str(x) for x in ds.train.item_ids[mine]], "item")
        elif args.explain:
            raise EdgerecError("--explain with --user needs --data (the user's history)")
        who = f"user {args.user}"
    history = np.unique(history)
    top, scores = m.top_k(p, q, args.k, history)
    reasons = None
    if args.explain:
        cfg = ExplainConfig(method=args.explain, top=args.top)
        reasons = Explainer(m.side).explain(history, top, cfg)
    rows, record = [], []
    for n, (i, s) in enumerate(zip(top, scores, strict=True)):
        why = reasons[n] if reasons else []
        text = ", ".join(f"{m.item_ids[r.item]} ({r.weight:+.3f})" for r in why)
        rows.append([str(n + 1), str(m.item_ids[i]), f"{s:.3f}", *([text] if reasons else [])])
        record.append(
            {
                "item": str(m.item_ids[i]),
                "logit": float(s),
                "reasons": [[str(m.item_ids[r.item]), r.weight] for r in why],
            }
        )
    cols = ("rank", "item", "logit", *((f"because of ({args.explain})",) if reasons else ()))
    table(f"top-{args.k} for {who}", cols, rows, left=cols[-1:] if reasons else ())
    if args.json:
        write_json(args.json, {"who": who, "explain": args.explain, "recommendations": record})
    return 0
