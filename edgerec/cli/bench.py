"""`edgerec bench`: one artifact (latency table, JSON) or every profile of a folder (comparison table)."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgerec.cli.common import columns, load_data, table
from edgerec.errors import EdgerecError


def add(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser("bench", help="latency, throughput, memory and accuracy of an artifact in its runtime")
    b.add_argument("artifact", nargs="?", help="artifact folder (from `edgerec export`)")
    b.add_argument("--profiles", default=None, help="instead: export and bench every profile in this folder")
    b.add_argument("--data", default=None, help="also measure HR@10 / NDCG@10 through the runtime on this data")
    b.add_argument("--columns", type=columns, default=None, help=argparse.SUPPRESS)
    b.add_argument("--split-seed", type=int, default=0, help=argparse.SUPPRESS)
    b.add_argument("--json", default=None, help="write the bench record to this JSON file")
    b.add_argument("--threads", type=int, default=None, help="runtime threads (default 1; profiles: their own)")
    b.add_argument("--min-time", type=float, default=1.0, help="seconds measured per case (default 1.0)")
    b.add_argument("--model", default=None, help="--profiles: the source checkpoint (default: train on --data)")
    b.add_argument("--out", default="runs/profiles", help="--profiles: artifact folders (default runs/profiles)")
    b.add_argument("--results", default=None, help="--profiles: folder for profiles.{json,md,png} (default --out)")
    b.add_argument("--cache", default=None, help="--profiles: step cache (default ~/.cache/edgerec/steps)")
    b.add_argument("--server", default=None, help="instead: load-test a served repository at this HTTP host:port")
    b.add_argument("--grpc", default=None, help="--server: its gRPC host:port (default: the HTTP port + 1)")
    b.add_argument("--protocols", default="http,grpc", help="--server: http, grpc or both (default http,grpc)")
    b.add_argument("--concurrency", default="1,8,32", help="--server: closed-loop clients, e.g. 1,8,32 (default)")
    b.add_argument("--requests", type=int, default=2000, help="--server: requests per protocol and concurrency")
    b.add_argument("--repo", default=None, help="--server: the served repository folder (its users make the stream)")
    b.add_argument("--users", type=int, default=None, help="--server: instead of --repo, draw users 0..N-1")
    b.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.server:
        return run_server(args)
    if args.profiles:
        return run_profiles(args)
    if not args.artifact:
        raise EdgerecError("give an artifact folder, or --profiles DIR")
    from edgerec import api
    from edgerec.benchmarking.latency import BenchConfig

    cfg = BenchConfig(threads=args.threads or 1, min_time_s=args.min_time)
    data = None if args.data is None else load_data(args)
    report = api.bench(args.artifact, cfg, data)
    record = report.record
    rows = []
    for key, lat in record["latency_ms"].items():
        name = {"catalog_top10": "catalog + top-10", "two_stage_top10": "two-stage top-10"}.get(key, key)
        cells = [f"{lat[k]:.3f}" for k in ("p50", "p90", "p99", "mean")]
        per_s = record["items_per_s"].get(key)  # retrieve / two-stage: calls, not a batch of scored items
        rows.append([name, *cells, "-" if per_s is None else f"{per_s:,.0f}", str(lat["calls"])])
    if "two_stage" in record:
        two = record["two_stage"]
        print(f"two-stage top-{two['k']} (retrieve {two['candidates']:,}, then score): recall@{two['k']} "
              f"{two['recall@k']:.3f} against the exhaustive top-{two['k']} over {two['users']} users")  # fmt: skip
    title = (f"{args.artifact}: {record['target']} {record['precision']} on {record['runtime']}, "
             f"{record['config']['threads']} thread(s)")  # fmt: skip
    table(title, ("batch", "p50 ms", "p90 ms", "p99 ms", "mean ms", "items/s", "calls"), rows)
    m = report.metrics
    extra = f", HR@10 {m['hr@10']:.4f}, NDCG@10 {m['ndcg@10']:.4f}" if m else ""
    print(f"{record['bytes']:,} bytes, load {record['load_ms']:.1f} ms, peak RSS {record['peak_rss_mb']:.0f} MB{extra}")
    if args.json:
        report.save(args.json)
    return 0


def run_profiles(args: argparse.Namespace) -> int:
    from edgerec.profiles.compare import COLUMNS, compare, table_rows, write_reports
    from edgerec.profiles.schema import load_profiles

    profiles = load_profiles(args.profiles)
    if args.threads:
        profiles = [
            p.model_copy(update={"runtime": p.runtime.model_copy(update={"threads": args.threads})}) for p in profiles
        ]
    ds = load_data(args)
    out = Path(args.out)
    cache = Path(args.cache) if args.cache else None
    rows = compare(profiles, ds, out, Path(args.model) if args.model else None, cache, args.min_time)
    table(f"profiles on {ds.name}", COLUMNS, table_rows(rows), left=("profile", "status"))
    results = Path(args.results) if args.results else out
    write_reports(rows, results, f"Target profiles on {ds.name}", args.argv)
    print(f"wrote {results}/profiles.json, profiles.md, profiles.png")
    failed = [r["profile"] for r in rows if str(r["status"]).startswith("failed")]
    if failed:
        raise EdgerecError(f"{len(failed)} profile(s) failed: {', '.join(failed)} (see {results}/profiles.md)")
    return 0


def run_server(args: argparse.Namespace) -> int:
    from edgerec import api
    from edgerec.io import write_json
    from edgerec.serving.load import LoadConfig

    try:
        conc = tuple(int(c) for c in args.concurrency.split(","))
    except ValueError:
        raise EdgerecError(f"--concurrency must be numbers separated by commas; got {args.concurrency!r}") from None
    cfg = LoadConfig(protocols=tuple(p.strip() for p in args.protocols.split(",")), concurrency=conc,
                     requests=args.requests)  # fmt: skip
    if (args.repo is None) == (args.users is None):
        raise EdgerecError("--server needs the served repository (--repo REPO) or the number of users (--users N)")
    results = api.bench_server(args.server, args.repo if args.users is None else args.users, cfg, args.grpc)
    rows = [
        [r.name, str(r.concurrency), str(r.requests), f"{r.percentile(50):.3f}", f"{r.percentile(90):.3f}",
         f"{r.percentile(99):.3f}", f"{r.per_second:,.0f}", str(r.errors), f"{r.server.get('batch_mean', 0):.2f}"]
        for r in results
    ]  # fmt: skip
    header = ("server", "clients", "requests", "p50 ms", "p90 ms", "p99 ms", "recs/s", "errors", "batch")
    table(f"{args.server}: recommend (one user per request, top-K)", header, rows, left=("server",))
    if args.json:
        write_json(Path(args.json), {"server": args.server, "results": [r.row() for r in results]})
    failed = sum(r.errors for r in results)
    if failed:
        first = next(r.first_error for r in results if r.errors)
        raise EdgerecError(f"{failed} request(s) failed; the first: {first}")
    return 0
