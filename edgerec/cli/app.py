"""`edgerec app web`: a static site that runs a phone bundle in the browser (LiteRT.js), and serving it locally."""

from __future__ import annotations

import argparse
import time

from edgerec import api
from edgerec.errors import EdgerecError


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("app", help="client apps that run a phone bundle on the device (web: in a browser)")
    apps = p.add_subparsers(dest="app", required=True, metavar="APP")
    w = apps.add_parser(
        "web",
        help="a static site that runs the bundle in the browser with LiteRT.js",
        description="Writes a static site (page, model.tflite, trimmed manifest, item ids, LiteRT.js and its WASM "
        "files) that recommends on the device: the picked items are folded in, then recommend and explain run by "
        "signature name; a bundle with user_features also gets a form of its user encoder's columns (the attributes "
        "encoded in the page, then user_features, with picks fold_in_from). LiteRT.js is installed with "
        "npm into edgerec's cache the first time.",
    )
    w.add_argument("bundle", metavar="BUNDLE", help="a phone bundle folder (edgerec export --target tflite-bundle)")
    w.add_argument("--out", required=True, help="the site folder to write (replaced atomically)")
    w.add_argument(
        "--items", default=None, help="a CSV / TSV file of item ids and titles (e.g. MovieLens movies) to show titles"
    )
    w.add_argument(
        "--demo-users",
        action="store_true",
        help="for a bundle without fold_in (exported without --explain): recommend for the known user who scores the "
        "picks highest (from the bundle's user_vectors.npy); needed unless the bundle has user_features",
    )
    w.add_argument("--serve", action="store_true", help="then serve the site on 127.0.0.1 until Ctrl-C")
    w.add_argument("--port", type=int, default=8080, help="the port --serve listens on (default 8080)")
    w.set_defaults(run=run_web)


def run_web(args: argparse.Namespace) -> int:
    if not 1 <= args.port <= 65535:
        raise EdgerecError(f"--port must lie in 1..65535; got {args.port}")
    site = api.app_web(args.bundle, args.out, args.items, args.demo_users)
    titles = f", {site.titles} titles" if site.titles else ""
    print(
        f"wrote {args.out}/ ({site.bytes / 2**20:.1f} MiB): {site.n_items} items{titles}, signatures "
        f"{', '.join(site.signatures)}; users from {site.user_from}, reasons: {site.reasons}; LiteRT.js {site.litertjs}"
    )
    if not args.serve:
        print(f"serve it with: python -m http.server --bind 127.0.0.1 {args.port} --directory {args.out}")
        print(f"then open http://127.0.0.1:{args.port}/ (Ctrl-C stops the server)")
        return 0
    with api.serve_site(args.out, args.port) as url:
        print(f"serving {url} ; Ctrl-C stops it", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopped")
    return 0
