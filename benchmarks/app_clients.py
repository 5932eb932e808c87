"""The phone bundle in three real clients: Python's LiteRT, a C program on the LiteRT C API, and the web page in
headless Chromium (LiteRT.js). Same bundle, same seeded histories, same run.

    python benchmarks/app_clients.py --model CKPT [--data ../shared/data/ml-1m-ncf] [--users 100] [--rounds 3]
    python benchmarks/app_clients.py --bundle BUNDLE --data ...     (an int8 bundle exported with --explain)

For --users seeded test users of the data, each user's training items (at most the bundle's max_history: a seeded
subset beyond that) are the history. Every client runs the chain fold_in -> recommend -> explain by signature name,
each input of a later call an output of an earlier one (explain's items: recommend's in-graph top_items): Python's
ai-edge-litert signature runners, examples/c/bundle_client (built here with gcc, run with an empty environment), and
the page of `edgerec app web` (window.edgerec.chain). The C and web results are compared with Python's: top-10 items
and reasons identical, scores, reason weights and user vectors within 1e-4.

Latency: each signature on the first user's chain, one thread, in each client, as each client's own harness times a
call (Python: edgerec's BenchConfig loop over the signature runner, pinned to one core; C: --bench; web: the page's
bench, the same loop in JavaScript); the clients take turns for --rounds rounds, the table gives the median over rounds
of each percentile. Also the page's load time and the bytes a first visit downloads, and a screenshot of the page
with titles (--items, default the data's ml-1m.items.tsv). Writes benchmarks/results/app_clients.{md,json} and
benchmarks/results/web_demo.png.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
TOL = 1e-4
DEMO_PICKS = ("Toy Story", "Star Wars: Episode IV", "Fargo", "Princess Bride")


def histories(bundle: Path, manifest: dict, data: str, users: int, seed: int) -> tuple[list[np.ndarray], list[int]]:
    """Seeded test users' training items as dense indices of the bundle (at most max_history, a seeded subset)."""
    import edgerec
    from edgerec.data.align import align
    from edgerec.data.interactions import load_id_maps

    ds = align(edgerec.dataset(data), *load_id_maps(bundle / "id_maps.json"), str(bundle))[0]
    rng = np.random.default_rng(seed)
    h = int(manifest["max_history"])
    order = np.argsort(ds.train.users, kind="stable")
    starts = np.searchsorted(ds.train.users[order], np.arange(ds.n_users + 1))
    chosen = np.sort(rng.choice(ds.n_users, size=users, replace=False))
    out = []
    for u in chosen:
        items = np.unique(ds.train.items[order[starts[u] : starts[u + 1]]])
        if len(items) > h:
            items = np.sort(rng.choice(items, size=h, replace=False))
        out.append(items.astype(np.int32))
    return out, [int(u) for u in chosen]


def padded(items: np.ndarray, h: int) -> dict[str, np.ndarray]:
    history, mask = np.zeros(h, np.int32), np.zeros(h, np.float32)
    history[: len(items)], mask[: len(items)] = items, 1.0
    return {"history": history, "history_mask": mask}


def python_chain(runners: dict, names: dict, hist: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    f = runners["fold_in"](**hist)
    vec = {"user_gmf": f[names["user_gmf"]], "user_mlp": f[names["user_mlp"]]}
    r = runners["recommend"](**vec)
    e = runners["explain"](**vec, **hist, items=r[names["top_items"]])
    return {
        "user_gmf": vec["user_gmf"],
        "user_mlp": vec["user_mlp"],
        "top_items": r[names["top_items"]],
        "top_scores": r[names["top_scores"]],
        "reasons": e[names["reasons"]],
        "reason_weights": e[names["reason_weights"]],
    }


def chain_requests(hists: list[dict[str, np.ndarray]], sigs: dict, names: dict) -> list:
    from edgerec.apps.native import Tensor

    requests: list = []
    for hist in hists:
        base = len(requests)
        requests.append(("fold_in", {k: Tensor(v) for k, v in hist.items()}, list(sigs["fold_in"]["outputs"])))
        vec = {v: Tensor(request=base, name=names[v], dtype="float32") for v in ("user_gmf", "user_mlp")}
        requests.append(("recommend", vec, list(sigs["recommend"]["outputs"])))
        items = Tensor(request=base + 1, name=names["top_items"], dtype="int32")
        explain_in = {**vec, **{k: Tensor(v) for k, v in hist.items()}, "items": items}
        requests.append(("explain", explain_in, list(sigs["explain"]["outputs"])))
    return requests


def c_results(outs: list[dict[str, np.ndarray]], names: dict) -> list[dict[str, np.ndarray]]:
    res = []
    for i in range(0, len(outs), 3):
        f, r, e = outs[i : i + 3]
        res.append(
            {
                "user_gmf": f[names["user_gmf"]],
                "user_mlp": f[names["user_mlp"]],
                "top_items": r[names["top_items"]],
                "top_scores": r[names["top_scores"]],
                "reasons": e[names["reasons"]],
                "reason_weights": e[names["reason_weights"]],
            }
        )
    return res


def compare(ref: list[dict], got: list[dict]) -> dict[str, Any]:
    """How far `got` is from the Python reference, per history."""
    same_items = same_reasons = 0
    worst = {"scores": 0.0, "weights": 0.0, "vectors": 0.0}
    for a, b in zip(ref, got, strict=True):
        same_items += bool(np.array_equal(np.ravel(a["top_items"]), np.ravel(b["top_items"])))
        same_reasons += bool(np.array_equal(np.ravel(a["reasons"]), np.ravel(b["reasons"])))
        for key, names in (
            ("scores", ("top_scores",)),
            ("weights", ("reason_weights",)),
            ("vectors", ("user_gmf", "user_mlp")),
        ):
            for n in names:
                d = np.max(np.abs(np.ravel(a[n]).astype(np.float64) - np.ravel(b[n]).astype(np.float64)))
                worst[key] = max(worst[key], float(d))
    return {
        "histories": len(ref),
        "identical_top_items": same_items,
        "identical_reasons": same_reasons,
        "max_abs": worst,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="a checkpoint: exported here to an int8 bundle with --explain")
    ap.add_argument("--bundle", default=None, help="an int8 phone bundle exported with --explain")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "ml-1m-ncf"))
    ap.add_argument("--items", default=None, help="titles for the screenshot (default: the data's ml-1m.items.tsv)")
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=1.0, help="seconds measured per signature per round")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(RESULTS / "app_clients.md"))
    ap.add_argument("--screenshot", default=str(RESULTS / "web_demo.png"))
    args = ap.parse_args()
    if (args.model is None) == (args.bundle is None):
        raise SystemExit("give --model CKPT (exported here) or --bundle BUNDLE")
    tmp = Path(tempfile.mkdtemp(prefix="app-clients-"))
    try:
        run(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace, tmp: Path) -> None:
    import edgerec
    from edgerec.apps.browser import SitePage, chromium_executable, headless_chromium, serve_site
    from edgerec.apps.native import bench_lines, build_client, decode, encode, run_client
    from edgerec.benchmarking.config import BenchConfig
    from edgerec.benchmarking.latency import one_core, page_options, summary, timed
    from edgerec.runtime import load_bundle
    from edgerec.sysinfo import machine, provenance

    export_s = None
    if args.bundle:
        bundle = Path(args.bundle)
    else:
        t0 = time.perf_counter()
        cfg = edgerec.ExportConfig(target="tflite-bundle", precision="int8", options={"explain": True})
        bundle = edgerec.export(args.model, cfg, data=args.data, out=tmp / "bundle").folder
        export_s = time.perf_counter() - t0
    manifest = json.loads((bundle / "manifest.json").read_text())
    sigs = manifest["signatures"]
    if not {"fold_in", "explain"} <= set(sigs):
        raise SystemExit(f"{bundle}: no fold_in / explain signatures; export it with --explain")
    names = {n: n for s in ("fold_in", "recommend", "explain") for n in sigs[s]["outputs"]}
    items_file = args.items or str(Path(args.data) / "ml-1m.items.tsv")
    hist_items, users = histories(bundle, manifest, args.data, args.users, args.seed)
    h = int(manifest["max_history"])
    hists = [padded(x, h) for x in hist_items]

    # Python's LiteRT: the reference
    scorer = load_bundle(bundle, threads=1)
    runners = {s: scorer.interp.get_signature_runner(s) for s in ("fold_in", "recommend", "explain")}
    ref = [python_chain(runners, names, x) for x in hists]

    # the C client, built here
    client = build_client(ROOT / "examples" / "c", tmp / "c")
    (tmp / "chain.bin").write_bytes(encode(chain_requests(hists, sigs, names)))
    run_client(client, bundle / "model.tflite", tmp / "chain.bin", tmp / "out.bin")
    c_got = c_results(decode((tmp / "out.bin").read_bytes()), names)
    (tmp / "first.bin").write_bytes(encode(chain_requests(hists[:1], sigs, names)))

    # the web client
    site = edgerec.app_web(bundle, tmp / "site", items_file)
    cfg = BenchConfig(warmup=50, min_time_s=args.min_time, min_calls=50)
    js_options = page_options(cfg, hist_items[0])
    rounds: dict[str, list[dict[str, dict[str, float]]]] = {"python": [], "c": [], "web": []}
    with serve_site(site.folder) as url, headless_chromium(chromium_executable(), ("--window-size=1280,1100",)) as b:
        page = SitePage(b, url, site.folder)
        p = page.page
        web_got = p.evaluate("(hs) => window.edgerec.chain(hs)", [[int(i) for i in x] for x in hist_items])
        load = p.evaluate("() => window.edgerec.loadMs")
        isolated = p.evaluate("() => self.crossOriginIsolated")
        downloaded = page.downloaded_bytes()
        first = hists[0]
        f = runners["fold_in"](**first)
        vec = {"user_gmf": f[names["user_gmf"]], "user_mlp": f[names["user_mlp"]]}
        top = runners["recommend"](**vec)[names["top_items"]]
        py_calls = {
            "fold_in": lambda: runners["fold_in"](**first),
            "recommend": lambda: runners["recommend"](**vec),
            "explain": lambda: runners["explain"](**vec, **first, items=top),
        }
        for _ in range(args.rounds):
            with one_core(True):
                rounds["python"].append({s: timed(fn, cfg) for s, fn in py_calls.items()})
            calls = max(200, int(cfg.min_calls))
            out = run_client(client, bundle / "model.tflite", tmp / "first.bin", "--bench", str(calls))
            rounds["c"].append(bench_lines(out))
            web = p.evaluate("(o) => window.edgerec.bench(o)", js_options)
            rounds["web"].append({s: summary(ms) for s, ms in web.items()})
        errors = page.console_errors()
        page.close()
        screenshot(b, url, site.folder, Path(args.screenshot))
        chromium_version = b.version
    if errors:
        raise SystemExit(f"the page logged errors: {errors}")
    t0 = time.perf_counter()
    load_bundle(bundle, threads=1)
    py_load_ms = (time.perf_counter() - t0) * 1e3
    web_res = [{k: np.asarray(v) for k, v in r.items()} for r in web_got]
    result = {
        "provenance": provenance(),
        "machine": machine(),
        "bundle": {
            "precision": manifest["precision"],
            "n_items": manifest["n_items"],
            "model_bytes": manifest["files"]["model.tflite"]["bytes"],
            "max_history": h,
            "data": manifest["data"]["name"],
            "export_s": export_s,
        },
        "users": users,
        "history_lengths": [len(x) for x in hist_items],
        "agreement": {"c": compare(ref, c_got), "web": compare(ref, web_res)},
        "latency_rounds": rounds,
        "web": {
            "chromium": chromium_version,
            "load_ms": load,
            "downloaded_bytes": downloaded,
            "site_bytes": site.bytes,
            "cross_origin_isolated": isolated,
        },
        "python_load_ms": py_load_ms,
        "versions": manifest.get("versions", {}),
    }
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    write(result, out, Path(args.screenshot).name)


def screenshot(browser: Any, url: str, site: Path, path: Path) -> None:
    """The page after a visitor picks a few titles and presses Recommend."""
    from edgerec.apps.browser import SitePage

    page = SitePage(browser, url, site)
    p = page.page
    p.set_viewport_size({"width": 1280, "height": 1100})
    for title in DEMO_PICKS:
        p.fill("#search", title)
        buttons = p.query_selector_all("#catalog button")
        if buttons:
            buttons[0].click()
    p.fill("#search", "")
    p.click("#recommend")
    p.wait_for_selector('body[data-runs="1"]', timeout=30_000)
    p.evaluate("() => window.scrollTo(0, 0)")
    path.parent.mkdir(parents=True, exist_ok=True)
    p.screenshot(path=str(path), full_page=True)
    page.close()


def write(r: dict, out: Path, shot: str) -> None:
    b, w = r["bundle"], r["web"]

    def med(client: str, sig: str, key: str) -> float:
        return statistics.median(x[sig][key] for x in r["latency_rounds"][client])

    lengths = np.asarray(r["history_lengths"])
    lines = [
        "# The phone bundle in three clients: Python LiteRT, the LiteRT C API, LiteRT.js in Chromium",
        "",
        f"Produced by {r['provenance']}. Machine: {r['machine']}.",
        f"Bundle: {b['precision']} phone bundle with fold_in / recommend / explain of NeuMF-8 on {b['data']}, "
        f"{b['n_items']:,} items, model.tflite {b['model_bytes']:,} bytes, max_history {b['max_history']}. "
        f"ai-edge-litert {r['versions'].get('ai-edge-litert', '?')} (Python, and its libLiteRt.so for the C "
        f"client); LiteRT.js 2.5.3 in headless Chromium {w['chromium']}.",
        "",
        f"## Same answers: fold_in -> recommend -> explain for {len(lengths)} seeded ML-1M users",
        "",
        f"Histories: each user's training items (median {int(np.median(lengths))}, {int(lengths.min())} to "
        f"{int(lengths.max())}; at most {b['max_history']}). Compared with Python's LiteRT on the same bundle:",
        "",
        "| client | identical top-10 items | identical reasons | max abs top-10 score diff | max abs reason "
        "weight diff | max abs user vector diff |",
        "|---|---|---|---|---|---|",
    ]
    for client, label in (("c", "C program (LiteRT C API)"), ("web", "web page (LiteRT.js, Chromium)")):
        a = r["agreement"][client]
        n = a["histories"]
        lines.append(
            f"| {label} | {a['identical_top_items']}/{n} | {a['identical_reasons']}/{n} | "
            f"{a['max_abs']['scores']:.1e} | {a['max_abs']['weights']:.1e} | {a['max_abs']['vectors']:.1e} |"
        )
    rounds = len(r["latency_rounds"]["python"])
    lines += [
        "",
        "## Latency of each signature per client (same machine, same run)",
        "",
        f"The first user's chain (history of {r['history_lengths'][0]} items), one thread; each client's own "
        f"harness ({rounds} rounds, clients taking turns; median over rounds of each percentile), ms per call "
        "including making the inputs and reading the outputs.",
        "",
        "| signature | Python p50 | Python p99 | C p50 | C p99 | web p50 | web p99 | web / C (p50) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for sig in ("fold_in", "recommend", "explain"):
        cells = [f"{med(c, sig, k):.3f}" for c in ("python", "c", "web") for k in ("p50", "p99")]
        lines.append(f"| {sig} | {' | '.join(cells)} | {med('web', sig, 'p50') / med('c', sig, 'p50'):.1f}x |")
    load = w["load_ms"]
    lines += [
        "",
        f"Load: the page {sum(load.values()):.0f} ms from its first fetch to a compiled model that ran once (files "
        f"and sha256 {load['files']:.0f} ms, LiteRT.js WASM {load['litert']:.0f} ms, model {load['model']:.0f} ms; "
        f"cross-origin isolated: {w['cross_origin_isolated']}); Python's load_bundle {r['python_load_ms']:.0f} ms. "
        f"A first visit downloads {w['downloaded_bytes']:,} bytes (the site holds {w['site_bytes']:,}: LiteRT.js "
        "ships a second WASM build for browsers without relaxed SIMD, fetched only there).",
        "",
        f"Screenshot of the page (ML-1M titles, four picks): `{shot}`.",
    ]
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
