"""`edgerec bench`: one artifact (latency table, JSON) or every profile of a folder (comparison table)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgerec.errors import EdgerecError


def _data(args: argparse.Namespace):
    if args.data is None:
        return None
    from edgerec.data import Columns, load_dataset

    return load_dataset(args.data, seed=args.split_seed, columns=args.columns or Columns())


def run(args: argparse.Namespace) -> int:
    if args.profiles:
        return run_profiles(args)
    if not args.artifact:
        raise EdgerecError("give an artifact folder, or --profiles DIR")
    from rich.table import Table

    from edgerec.bench.latency import BenchConfig, bench_artifact
    from edgerec.io import console

    record = bench_artifact(
        args.artifact, BenchConfig(threads=args.threads or 1, min_time_s=args.min_time), _data(args)
    )
    table = Table(title=f"{args.artifact}: {record['target']} {record['precision']} on {record['runtime']}, "
                  f"{record['config']['threads']} thread(s)")  # fmt: skip
    for col in ("batch", "p50 ms", "p90 ms", "p99 ms", "mean ms", "items/s", "calls"):
        table.add_column(col, justify="right")
    for key, lat in record["latency_ms"].items():
        name = "catalog + top-10" if key == "catalog_top10" else key
        cells = (f"{lat[k]:.3f}" for k in ("p50", "p90", "p99", "mean"))
        table.add_row(name, *cells, f"{record['items_per_s'][key]:,.0f}", str(lat["calls"]))
    console().print(table)
    extra = (
        f", HR@10 {record['metrics']['hr@10']:.4f}, NDCG@10 {record['metrics']['ndcg@10']:.4f}"
        if "metrics" in record
        else ""
    )
    print(f"{record['bytes']:,} bytes, load {record['load_ms']:.1f} ms, peak RSS {record['peak_rss_mb']:.0f} MB{extra}")
    if args.json:
        path = Path(args.json)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(record, indent=2) + "\n")
        tmp.replace(path)
    return 0


def run_profiles(args: argparse.Namespace) -> int:
    from rich.table import Table

    from edgerec.bench.compare import COLUMNS, compare, table_rows, write_reports
    from edgerec.data import load_dataset
    from edgerec.io import console
    from edgerec.profiles import load_profiles

    profiles = load_profiles(args.profiles)
    if args.threads:
        profiles = [
            p.model_copy(update={"runtime": p.runtime.model_copy(update={"threads": args.threads})}) for p in profiles
        ]
    ds = _data(args) or load_dataset("synthetic")
    out = Path(args.out)
    rows = compare(
        profiles,
        ds,
        out,
        Path(args.model) if args.model else None,
        Path(args.cache) if args.cache else None,
        args.min_time,
    )
    table = Table(title=f"profiles on {ds.name}")
    for col in COLUMNS:
        table.add_column(col, justify="left" if col in ("profile", "status") else "right")
    for r in table_rows(rows):
        table.add_row(*r)
    console().print(table)
    results = Path(args.results) if args.results else out
    write_reports(rows, results, f"Target profiles on {ds.name}")
    print(f"wrote {results}/profiles.json, profiles.md, profiles.png")
    failed = [r["profile"] for r in rows if str(r["status"]).startswith("failed")]
    if failed:
        raise EdgerecError(f"{len(failed)} profile(s) failed: {', '.join(failed)} (see {results}/profiles.md)")
    return 0
