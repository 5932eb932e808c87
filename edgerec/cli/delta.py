"""`edgerec delta` and `edgerec apply-delta`: the small update from one phone bundle to the next."""

from __future__ import annotations

import argparse

from edgerec import api


def add(sub: argparse._SubParsersAction) -> None:
    dm = sub.add_parser("delta", help="the small update from one phone bundle to the next (same layout)")
    dm.add_argument("--from", dest="parent", required=True, help="the bundle the phones have")
    dm.add_argument("--to", dest="child", required=True, help="the new bundle (exported from the updated model)")
    dm.add_argument("--out", required=True, help="delta folder to write")
    dm.set_defaults(run=run_delta)
    da = sub.add_parser(
        "apply-delta", help="apply a delta to a phone bundle, checking the hash chain (as the app does)"
    )
    da.add_argument("--bundle", required=True, help="the bundle folder to update")
    da.add_argument("--delta", required=True, help="the delta folder (from `edgerec delta`)")
    da.add_argument("--out", required=True, help="where the updated bundle goes (may be --bundle: replaced atomically)")
    da.set_defaults(run=run_apply)


def run_delta(args: argparse.Namespace) -> int:
    d = api.delta(args.parent, args.child, args.out)
    share = d["patch_bytes"] / d["model_bytes"]
    sizes = f"{d['patch_bytes']:,} of {d['model_bytes']:,} model bytes ({share:.1%})"
    how = f"{len(d['ranges'])} byte ranges" if "ranges" in d else "a zstd patch against the parent (new layout)"
    print(f"wrote {args.out}/: {how}, {sizes}; version {d['parent']['version']} -> {d['child']['version']}")
    return 0


def run_apply(args: argparse.Namespace) -> int:
    m = api.apply_delta(args.bundle, args.delta, args.out)
    print(f"wrote {args.out}/: bundle version {m.get('version')} (model sha256 checked against the delta)")
    return 0
