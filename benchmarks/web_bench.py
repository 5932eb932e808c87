"""The web client's `recommend` in LiteRT.js (WebAssembly) in headless Chromium, beside Python's LiteRT
(ai-edge-litert) on the same bundle and the same user, on this machine; and a screenshot of the page with results.

    python benchmarks/web_bench.py [--bundle FOLDER] [--items FILE] [--calls 2000] [--rounds 3]

Without --bundle an int8 bundle is trained and exported on synthetic data (2,000 users, 800 items). The site is
built by `edgerec app web` (api.app_web) and served on 127.0.0.1 with COOP / COEP headers, so the page is
cross-origin isolated and performance.now() has 5 us steps (100 us otherwise). One call, both sides: the two input
tensors made, the signature run, the three outputs copied out (LiteRT.js: call() of the page, Tensor -> run ->
toTypedArray; Python: the signature runner, one thread, pinned to one core). The two are interleaved over --rounds
rounds of --calls calls each (after 50 warm-up calls); the table gives the median over rounds of each percentile.
Writes benchmarks/results/web_bench.md and benchmarks/results/web_demo.png.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import json
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

import edgerec
from edgerec import api
from edgerec.apps.web import headless_chromium
from edgerec.benchmarking.config import BenchConfig
from edgerec.benchmarking.latency import one_core, timed
from edgerec.runtime import load_bundle
from edgerec.sysinfo import machine, provenance

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DATA = "synthetic:users=2000,items=800,seed=1"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


class Isolated(http.server.SimpleHTTPRequestHandler):
    """The site with the headers that make a page cross-origin isolated (finer timers), quietly."""

    def end_headers(self) -> None:
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()

    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def served(site: Path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Isolated, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def chromium():
    """Headless Chromium started here with Playwright attached (edgerec.apps.web.headless_chromium)."""
    return headless_chromium(CHROMIUM, ("--window-size=1280,1000",))


def percentiles(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms, dtype=np.float64)
    return {"p50": float(np.percentile(a, 50)), "p90": float(np.percentile(a, 90)),
            "p99": float(np.percentile(a, 99)), "mean": float(a.mean()), "calls": len(a)}  # fmt: skip


def make_bundle(folder: Path) -> Path:
    ck = edgerec.train(DATA, edgerec.TrainConfig(epochs=4))
    cfg = edgerec.ExportConfig(target="tflite-bundle", precision="int8", options={"explain": True})
    edgerec.export(ck, cfg, data=DATA, out=folder / "bundle")
    return folder / "bundle"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", default=None, help="a phone bundle folder (default: one exported on synthetic data)")
    ap.add_argument("--items", default=None, help="titles for the page (CSV / TSV), as `edgerec app web --items`")
    ap.add_argument("--picks", default=None, help="original item ids the screenshot picks (default: dense 3, 17, 40)")
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=str(RESULTS / "web_bench.md"))
    ap.add_argument("--screenshot", default=str(RESULTS / "web_demo.png"))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="web-bench-"))
    try:
        bundle = Path(args.bundle) if args.bundle else make_bundle(tmp)
        site = api.app_web(bundle, tmp / "site", args.items)
        run(args, bundle, site.folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace, bundle: Path, site: Path) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    demo = json.loads((site / "site.json").read_text())["demo_users"]
    scorer = load_bundle(bundle, threads=1)
    if demo:
        ug, um = np.float32([demo[0]["user_gmf"]]), np.float32([demo[0]["user_mlp"]])
    else:
        ug, um = np.zeros((1, scorer.g), np.float32), np.zeros((1, scorer.d), np.float32)
    cfg = BenchConfig(warmup=50, min_time_s=0.0, min_calls=args.calls, max_calls=args.calls)
    js_rounds, py_rounds = [], []
    with served(site) as url, chromium() as browser:
        page = browser.contexts[0].new_page()
        page.set_viewport_size({"width": 1280, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(url)
        page.wait_for_selector('#status[data-state="ready"], #status[data-state="error"]', timeout=60_000)
        if page.get_attribute("#status", "data-state") != "ready":
            raise SystemExit(f"the page did not load: {page.inner_text('#status')}")
        isolated = page.evaluate("() => self.crossOriginIsolated")
        load_ms = page.evaluate("() => window.edgerec.loadMs")
        if args.picks:
            page.fill("#ids", args.picks)
        else:
            for i in (3, 17, 40):
                page.click(f"#catalog button[data-index='{i}']")
        page.click("#recommend")
        page.wait_for_selector('body[data-runs="1"]', timeout=30_000)
        page.evaluate("() => window.scrollTo(0, 0)")
        Path(args.screenshot).parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=args.screenshot, full_page=True)
        for _ in range(args.rounds):
            js_rounds.append(percentiles(page.evaluate(f"() => window.edgerec.bench({args.calls})")))
            with one_core(True):
                py_rounds.append(timed(lambda: scorer.runner(user_gmf=ug, user_mlp=um), cfg))
        version = browser.version
        if errors:
            raise SystemExit(f"the page logged errors: {errors}")
    t0 = time.perf_counter()
    load_bundle(bundle, threads=1)
    py_load = (time.perf_counter() - t0) * 1000
    write(args, manifest, version, isolated, load_ms, py_load, js_rounds, py_rounds, site)


def write(args, manifest, chromium_version, isolated, load_ms, py_load, js_rounds, py_rounds, site: Path) -> None:
    def med(rows: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    lit = manifest["versions"].get("ai-edge-litert", "?")
    js_load = sum(load_ms.values())
    lines = [
        "# The web client: `recommend` in LiteRT.js beside Python LiteRT",
        "",
        f"Produced by {provenance()}. Machine: {machine()}.",
        f"Bundle: {manifest['precision']} phone bundle, {manifest['n_items']:,} items "
        f"({manifest['data']['name']}), model.tflite {manifest['files']['model.tflite']['bytes']:,} bytes.",
        f"Browser: headless Chromium {chromium_version} (`--disable-gpu`), LiteRT.js "
        f"{json.loads((site / 'site.json').read_text())['litertjs']} WebAssembly (non-threaded build, XNNPACK), "
        f"page cross-origin isolated: {isolated} (timer steps {'5 us' if isolated else '100 us'}). "
        f"Python: ai-edge-litert {lit}, 1 thread, pinned to one core.",
        "",
        f"One user's `recommend` over the whole catalog (top-10 in the graph), {args.calls:,} calls per round after "
        f"50 warm-up calls, {args.rounds} rounds interleaved; median over rounds of each percentile, in ms. One call "
        "= inputs made, signature run, the three outputs copied out.",
        "",
        "| runtime | p50 ms | p90 ms | p99 ms | mean ms |",
        "|---|---|---|---|---|",
        f"| LiteRT.js in Chromium | {med(js_rounds, 'p50'):.3f} | {med(js_rounds, 'p90'):.3f} | "
        f"{med(js_rounds, 'p99'):.3f} | {med(js_rounds, 'mean'):.3f} |",
        f"| Python ai-edge-litert | {med(py_rounds, 'p50'):.3f} | {med(py_rounds, 'p90'):.3f} | "
        f"{med(py_rounds, 'p99'):.3f} | {med(py_rounds, 'mean'):.3f} |",
        "",
        f"Load: the page {js_load:.0f} ms from its first fetch to a compiled model (files and sha256 check "
        f"{load_ms['files']:.0f} ms, LiteRT.js WASM {load_ms['litert']:.0f} ms, model compiled and run once "
        f"{load_ms['model']:.0f} ms); "
        f"Python's load_bundle (hashes checked, interpreter built) {py_load:.0f} ms.",
        "",
        "Per round (p50 / p99 ms): "
        + "; ".join(
            f"JS {j['p50']:.3f} / {j['p99']:.3f}, Python {p['p50']:.3f} / {p['p99']:.3f}"
            for j, p in zip(js_rounds, py_rounds, strict=True)
        )
        + ".",
        "",
        f"Screenshot of the page after three picks: `{Path(args.screenshot).name}`.",
    ]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
