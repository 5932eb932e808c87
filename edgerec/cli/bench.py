"""`edgerec bench ARTIFACT` (latency table of one artifact), `edgerec compare PROFILES` (every profile of a folder,
one comparison table) and `edgerec bench-server HOST:PORT` (closed-loop load on a served repository)."""

from __future__ import annotations

import argparse

from edgerec import api
from edgerec.benchmarking.config import BenchConfig
from edgerec.cli.common import columns, data_args, load_data, profile_table, table
from edgerec.errors import EdgerecError
from edgerec.serving.config import LoadConfig

BENCH = BenchConfig()
LOAD = LoadConfig()


def add(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser("bench", help="latency, throughput, memory and accuracy of an artifact in its runtime")
    b.add_argument("artifact", help="artifact folder (from `edgerec export`)")
    b.add_argument("--data", default=None, help="also measure HR@10 / NDCG@10 through the runtime on this data")
    b.add_argument("--columns", type=columns, default=None, help=argparse.SUPPRESS)
    b.add_argument("--split-seed", type=int, default=0, help=argparse.SUPPRESS)
    b.add_argument("--json", default=None, help="write the bench record to this JSON file")
    b.add_argument(
        "--client",
        choices=["python", "web"],
        default=BENCH.client,
        help="python: the artifact's runtime here; web: a phone bundle in LiteRT.js in headless Chromium (the page of "
        f"`edgerec app web`: its signatures, load time, bytes downloaded) (default {BENCH.client})",
    )
    b.add_argument("--threads", type=int, default=BENCH.threads, help=f"runtime threads (default {BENCH.threads})")
    b.add_argument("--min-time", type=float, default=BENCH.min_time_s,
                   help=f"seconds measured per case (default {BENCH.min_time_s})")  # fmt: skip
    b.set_defaults(run=run)

    c = sub.add_parser("compare", help="export and bench every profile of a folder; one comparison table")
    c.add_argument("profiles", help="a folder of profile .yaml files (e.g. export_profiles/)")
    data_args(c, required=False, default_note=" (default synthetic)")
    c.add_argument("--model", default=None, help="the source checkpoint (default: train on --data)")
    c.add_argument("--out", default="runs/profiles", help="artifact folders (default runs/profiles)")
    c.add_argument("--results", default=None, help="folder for profiles.{json,md,png} (default --out)")
    c.add_argument("--cache", default=None, help="step cache (default ~/.cache/edgerec/steps)")
    c.add_argument("--threads", type=int, default=None, help="runtime threads for every profile (default: their own)")
    c.add_argument("--min-time", type=float, default=None, help="seconds measured per case (default: the profile's)")
    c.set_defaults(run=run_compare)

    s = sub.add_parser("bench-server", help="closed-loop load on a served Triton repository over HTTP and gRPC")
    s.add_argument("server", help="the server's HTTP host:port, e.g. 127.0.0.1:8000")
    s.add_argument("--grpc", default=None, help="its gRPC host:port (default: the HTTP port + 1)")
    s.add_argument("--protocols", default=",".join(LOAD.protocols),
                   help=f"http, grpc or both (default {','.join(LOAD.protocols)})")  # fmt: skip
    s.add_argument("--concurrency", default=",".join(map(str, LOAD.concurrency)),
                   help=f"closed-loop clients (default {','.join(map(str, LOAD.concurrency))})")  # fmt: skip
    s.add_argument("--requests", type=int, default=LOAD.requests,
                   help=f"requests per protocol and concurrency (default {LOAD.requests})")  # fmt: skip
    s.add_argument("--repo", default=None, help="the served repository folder (its users make the stream)")
    s.add_argument("--users", type=int, default=None, help="instead of --repo, draw users 0..N-1")
    s.add_argument("--json", default=None, help="write the results to this JSON file")
    s.set_defaults(run=run_server)


def run(args: argparse.Namespace) -> int:
    cfg = BenchConfig(client=args.client, threads=args.threads, min_time_s=args.min_time)
    data = None if args.data is None else load_data(args)
    report = api.bench(args.artifact, cfg, data)
    record = report.record
    rows = []
    for key, lat in record["latency_ms"].items():
        name = {"catalog_top10": "catalog + top-10", "two_stage_top10": "two-stage top-10", "fold_in": "fold_in",
                "explain": "explain (top-K)"}.get(key, key)  # fmt: skip
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
    if record.get("client") == "web":
        print(f"{record['bytes']:,} bytes downloaded by the page (model {record['model_bytes']:,}), page load "
              f"{record['load_ms']:.0f} ms (first fetch to a compiled model that ran once)")  # fmt: skip
    else:
        print(f"{record['bytes']:,} bytes, load {record['load_ms']:.1f} ms, peak RSS {record['peak_rss_mb']:.0f} MB"
              f"{extra}")  # fmt: skip
    if args.json:
        report.save(args.json)
    return 0


def run_compare(args: argparse.Namespace) -> int:
    ds = load_data(args)
    runs = api.compare_profiles(
        args.profiles, args.out, ds, args.model, args.cache, args.results, args.min_time, args.threads, args.argv
    )
    profile_table(f"profiles on {ds.name}", runs)
    results = args.results or args.out
    print(f"wrote {results}/profiles.json, profiles.md, profiles.png")
    failed = [r.profile for r in runs if r.outcome == "failed"]
    if failed:
        raise EdgerecError(f"{len(failed)} profile(s) failed: {', '.join(failed)} (see {results}/profiles.md)")
    return 0


def run_server(args: argparse.Namespace) -> int:
    try:
        conc = tuple(int(c) for c in args.concurrency.split(","))
    except ValueError:
        raise EdgerecError(f"--concurrency must be numbers separated by commas; got {args.concurrency!r}") from None
    if (args.repo is None) == (args.users is None):
        raise EdgerecError("give the served repository (--repo REPO) or the number of users (--users N)")
    cfg = LoadConfig(protocols=tuple(p.strip() for p in args.protocols.split(",")), concurrency=conc,
                     requests=args.requests)  # fmt: skip
    report = api.bench_server(args.server, args.repo if args.users is None else args.users, cfg, args.grpc)
    rows = [
        [r.name, str(r.concurrency), str(r.requests), f"{r.percentile(50):.3f}", f"{r.percentile(90):.3f}",
         f"{r.percentile(99):.3f}", f"{r.per_second:,.0f}", str(r.errors), f"{r.server.get('batch_mean', 0):.2f}"]
        for r in report.results
    ]  # fmt: skip
    header = ("server", "clients", "requests", "p50 ms", "p90 ms", "p99 ms", "recs/s", "errors", "batch")
    table(f"{args.server}: recommend (one user per request, top-K)", header, rows, left=("server",))
    if args.json:
        report.save(args.json)
    if report.errors:
        raise EdgerecError(f"{report.errors} request(s) failed; the first: {report.first_error}")
    return 0
