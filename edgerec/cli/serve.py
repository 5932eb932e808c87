"""`edgerec serve REPO`: a real Triton Inference Server on a Triton repository, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import signal
import time
from types import FrameType

from edgerec import api
from edgerec.errors import EdgerecError


def add(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("serve", help="serve a Triton repository (export --target triton) on Triton Inference Server")
    s.add_argument("repo", nargs="?", help="the repository folder (from `edgerec export --target triton`)")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    s.add_argument("--http-port", type=int, default=8000, help="HTTP/REST port (default 8000)")
    s.add_argument("--grpc-port", type=int, default=8001, help="gRPC port (default 8001)")
    s.add_argument(
        "--log-dir", default=None, help="the feedback model's event log folder (default: feedback is refused)"
    )
    s.add_argument(
        "--poll",
        type=int,
        default=2,
        help="re-read the repository every this many seconds, so a rolled-out version or a rollback is served "
        "(default 2; 0 = load once)",
    )
    s.add_argument(
        "--shadow-log", default=None, help="the JSON-lines file a shadow experiment logs to (default: not logged)"
    )
    s.add_argument("--setup", action="store_true", help="create the server environment (nvidia-pytriton, numpy<2)")
    s.add_argument("--env", default=None, help="server environment folder (default ~/.cache/edgerec/serve-env)")
    s.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for readiness (default 90)")
    s.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.setup:
        api.setup_server(args.env)
        if not args.repo:
            return 0
    if not args.repo:
        raise EdgerecError("give a repository folder (edgerec export --target triton), or --setup")

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    server = None
    try:
        server = api.serve(args.repo, args.host, args.http_port, args.grpc_port, args.log_dir, args.poll, args.env,
                           args.timeout, args.shadow_log)  # fmt: skip
        m = server.manifest
        size = f"{m['n_users']:,} users x {m['n_items']:,} items"
        print(f"serving {args.repo}: models recommend and score, version {m['triton']['version']}, {m['precision']}, "
              f"{size} (started in {server.startup_s:.1f} s)")  # fmt: skip
        print(f"  HTTP  http://{server.http_url}/v2/models/recommend/infer")
        print(f"  gRPC  {server.grpc_url}")
        if server.log_dir:
            print(f"  feedback events -> {server.log_dir} (edgerec update --new {server.log_dir})")
        if m.get("experiment"):
            e = m["experiment"]
            print(f"  experiment ({e['mode']}): version {e['candidate']} beside {e['control']}, model `experiment`")
        if server.shadow_log:
            print(f"  shadow log -> {server.shadow_log} (edgerec experiment shadow-report {server.shadow_log})")
        print("  Ctrl-C or SIGTERM stops it", flush=True)
        while server.alive():
            time.sleep(0.5)
        raise EdgerecError(f"tritonserver stopped on its own (exit {server.proc.returncode}): {server.last_error()}")
    except KeyboardInterrupt:
        if server is None:  # interrupted while starting: api.serve stopped what it had started
            print("stopped while starting")
            return 0
        print(f"stopped in {server.stop():.1f} s")
        return 0
    finally:
        if server is not None:
            server.stop()
        signal.signal(signal.SIGTERM, previous)
