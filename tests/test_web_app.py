"""The web client (`edgerec app web`): the site built from a small int8 bundle, served on 127.0.0.1 and driven in
headless Chromium (Playwright over the DevTools protocol, the browser started here and stopped by its pid), gives
the same top-10 and reasons as Python's LiteRT on the same bundle; bad input shows a message; the console shows no
error and no request leaves the site's origin.

Needs Chromium (/usr/bin/chromium), npm (LiteRT.js is installed from npm when the site is built) and Playwright for
Python; without them the tests skip, except under CI (CI=true), where .ci/run installs them and a missing one fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from edgerec.apps.browser import headless_chromium, stop_process
from edgerec.cli.main import main

from .conftest import SMALL

CI = os.environ.get("CI") == "true"
CHROMIUM = os.environ.get("EDGEREC_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
PICKS = (3, 17, 40)  # dense indices the test clicks


def require(ok: bool, what: str) -> None:
    """Skip without `what` on a developer's machine; under CI, where .ci/run installs it, fail."""
    if ok:
        return
    if CI:
        pytest.fail(f"{what} is missing under CI (CI=true): .ci/run installs it")
    pytest.skip(f"{what} not found: the web client's browser test needs it (CI installs it; see .ci/run)")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, ckpt) -> Path:
    """An int8 phone bundle exported with explain (the item side the page's reasons come from)."""
    import edgerec

    out = tmp_path_factory.mktemp("web") / "bundle"
    cfg = edgerec.ExportConfig(target="tflite-bundle", precision="int8", options={"explain": True})
    edgerec.export(edgerec.load(ckpt), cfg, data=SMALL, out=out)
    return out


def titles_file(folder: Path, item_ids: list[str]) -> Path:
    """A CSV of titles for the bundle's items (not all: an item without one shows its id)."""
    rows = [f'{x},"Title {x}, the film",{1990 + int(x) % 20}' for x in item_ids if int(x) % 7]
    path = folder / "items.csv"
    path.write_text("movie_id,title,year\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def site(bundle, tmp_path_factory) -> Path:
    require(shutil.which("npm") is not None, "npm")
    out = tmp_path_factory.mktemp("web") / "site"
    ids = [str(x) for x in json.loads((bundle / "id_maps.json").read_text())["items"]]
    rc = main(["-q", "app", "web", str(bundle), "--out", str(out), "--items", str(titles_file(out.parent, ids))])
    assert rc == 0
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def url(site) -> Iterator[str]:
    with served(site) as base:
        yield base


@contextlib.contextmanager
def served(site: Path) -> Iterator[str]:
    """The site served as the CLI says to serve it: python -m http.server bound to 127.0.0.1."""
    port = free_port()
    cmd = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port), "--directory", str(site)]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}/"
        for _ in range(100):
            with contextlib.suppress(OSError):
                urllib.request.urlopen(base, timeout=2).close()
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"the site's server did not answer on {base}")
        yield base
    finally:
        stop_process(server)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Headless Chromium started here (own user-data-dir, DevTools on a loopback port), Playwright attached to it."""
    require(Path(CHROMIUM).is_file(), f"Chromium ({CHROMIUM})")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        require(False, "Playwright for Python (pip install playwright; its own browser download is not needed)")
    with headless_chromium(CHROMIUM) as b:
        yield b


class Page:
    """A fresh page of the site with everything it logs and requests recorded."""

    def __init__(self, browser, url: str) -> None:
        self.url = url
        self.page = browser.contexts[0].new_page()
        self.console: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.console.append((m.type, m.text)))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(url)
        self.page.wait_for_selector('#status[data-state="ready"], #status[data-state="error"]', timeout=60_000)
        assert self.page.get_attribute("#status", "data-state") == "ready", self.page.inner_text("#status")
        self.runs = 0

    def recommend(self) -> None:
        self.runs += 1
        self.page.click("#recommend")
        self.page.wait_for_selector(f'body[data-runs="{self.runs}"]', timeout=30_000)

    def check_clean(self) -> None:
        """No uncaught exception, no console error, no request to anything but the site."""
        assert self.errors == [], f"uncaught exceptions in the page: {self.errors}"
        bad = [text for kind, text in self.console if kind == "error"]
        assert bad == [], f"console errors: {bad}"
        assert self.requests and all(r.startswith(self.url) for r in self.requests), self.requests

    def close(self) -> None:
        self.page.close()


def catalog(scorer, ug: np.ndarray, um: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """recommend's (top items, their scores, every item's score); a shortlist bundle's items off its shortlist
    score -inf (the page ranks the shortlist only)."""
    top_items, top_scores, scores = scorer.recommend(ug, um)
    if scorer.shortlist:
        items, values = scorer.shortlisted(ug, um)
        scores = np.full(scorer.n_items, -np.inf, dtype=np.float32)
        scores[items] = values
    return top_items, top_scores, scores


def python_reference(bundle: Path, site: Path, picks: list[int]) -> dict:
    """What the page should show, computed with Python's LiteRT on the same bundle: with fold_in (the bundle's
    on-device functions), the picks folded in, the top-K without the picks (ties to the lower index), and the
    `explain` signature's reasons; without, the demo user who scores the picks highest and edgerec's similarity
    reasons."""
    from edgerec.runtime import load_bundle
    from edgerec.runtime.config import ExplainConfig
    from edgerec.runtime.explain import Explainer, NumpyModel

    scorer = load_bundle(bundle)
    if scorer.fold_in_runner is not None:
        ug, um = scorer.fold_in(picks)
        top_items, top_scores, scores = catalog(scorer, ug, um)
        masked = scores.astype(np.float64)
        masked[picks] = -np.inf
        top = np.argsort(-masked, kind="stable")[: scorer.k]
        reasons, weights = scorer.explain(ug, um, picks, top)
        return {
            "user": None,
            "graph_top": top_items.tolist(),
            "graph_scores": top_scores,
            "top": top.tolist(),
            "scores": scores[top],
            "reasons": [list(zip(r.tolist(), w.tolist(), strict=True)) for r, w in zip(reasons, weights, strict=True)],
        }
    demo = json.loads((site / "site.json").read_text())["demo_users"]
    vectors = np.load(bundle / "user_vectors.npy")
    g = scorer.g
    means = []
    for u in demo:
        row = vectors[u["index"]]
        np.testing.assert_array_equal(np.float32(u["user_gmf"] + u["user_mlp"]), row)  # the site's copy is exact
        if scorer.shortlist:  # the page scores the picks by `score`
            picked = scorer.score_items(row[:g], row[g:], picks)
        else:
            picked = scorer.recommend(row[:g], row[g:])[2][picks]
        means.append(float(np.sum(picked.astype(np.float64))) / len(picks))
    best = demo[int(np.argmax(means))]
    row = vectors[best["index"]]
    top_items, top_scores, scores = catalog(scorer, row[:g], row[g:])
    masked = scores.astype(np.float64)
    masked[picks] = -np.inf
    top = np.argsort(-masked, kind="stable")[: scorer.k]
    reasons = [[] for _ in top]
    if json.loads((site / "site.json").read_text())["reasons"]["method"] == "similarity":
        side = NumpyModel.from_bundle(bundle).side
        reasons = Explainer(side).explain(picks, top, ExplainConfig(method="similarity", top=3))
    return {
        "user": best["id"],
        "graph_top": top_items.tolist(),
        "graph_scores": top_scores,
        "top": top.tolist(),
        "scores": scores[top],
        "reasons": [[(r.item, r.weight) for r in row] for row in reasons],
    }


def same_reasons(shown: list, reasons: list) -> None:
    """The page shows the reasons of positive weight, strongest first; one within 1e-4 of 0 may go either way."""
    keep = [(i, w) for i, w in reasons if w > 0]
    near = {i for i, w in reasons if abs(w) < 1e-4}
    assert [i for i, _ in shown if i not in near] == [i for i, _ in keep if i not in near], (shown, reasons)
    by_item = dict(reasons)
    np.testing.assert_allclose([w for _, w in shown], [by_item[i] for i, _ in shown], atol=1e-4, rtol=0)


def test_the_page_recommends_what_python_litert_does(browser, url, site, bundle) -> None:
    page = Page(browser, url)
    p = page.page
    ids = json.loads((site / "id_maps.json").read_text())["items"]
    for i in PICKS:  # find each by its title in the search box, then click it
        p.fill("#search", f"Title {ids[i]},")
        p.click(f"#catalog button[data-index='{i}']")
    p.fill("#search", "")
    assert [int(x) for x in p.eval_on_selector_all("#picked li", "els => els.map(e => e.dataset.index)")] == [*PICKS]
    page.recommend()
    assert p.is_hidden("#message"), p.inner_text("#message")
    shown = p.eval_on_selector_all(
        "#results li.rec",
        """els => els.map(e => ({index: +e.dataset.index, item: e.dataset.item, score: +e.dataset.score,
             title: e.querySelector('.title').textContent,
             reasons: [...e.querySelectorAll('.reason')].map(r => [+r.dataset.index, +r.dataset.weight])}))""",
    )
    want = python_reference(bundle, site, list(PICKS))
    assert [r["index"] for r in shown] == want["top"]
    assert [r["item"] for r in shown] == [str(ids[i]) for i in want["top"]]
    np.testing.assert_allclose([r["score"] for r in shown], want["scores"], atol=1e-4, rtol=0)
    for r, reasons in zip(shown, want["reasons"], strict=True):
        same_reasons(r["reasons"], reasons)
    assert any(r["reasons"] for r in shown)
    assert shown[0]["title"] in (f"Title {ids[want['top'][0]]}, the film ({1990 + int(ids[want['top'][0]]) % 20})",
                                 f"item {ids[want['top'][0]]}")  # fmt: skip
    if want["user"] is None:  # folded in on the device by the bundle's own fold_in
        assert "folded in on this device" in p.inner_text("#who")
        assert {"fold_in", "recommend", "explain"} <= {name for name, _ in p.eval_on_selector_all(
            "#timings tbody tr", "els => els.map(e => [e.dataset.call, +e.dataset.ms])")}  # fmt: skip
    else:
        assert f"demo user {want['user']}," in p.inner_text("#who")
    last = p.evaluate("() => window.edgerec.last")  # the in-graph top-K of the same call
    assert last["graph_top_items"] == want["graph_top"]
    np.testing.assert_allclose(last["graph_top_scores"], want["graph_scores"], atol=1e-4, rtol=0)
    calls = p.eval_on_selector_all("#timings tbody tr", "els => els.map(e => [e.dataset.call, +e.dataset.ms])")
    assert "recommend" in dict(calls) and all(0 <= ms < 10_000 for _, ms in calls)
    page.check_clean()
    page.close()


def test_bad_input_shows_a_message(browser, url) -> None:
    page = Page(browser, url)
    p = page.page
    page.recommend()  # nothing picked
    assert p.is_visible("#message")
    assert "Pick at least one item" in p.inner_text("#message")
    assert p.eval_on_selector_all("#results li", "els => els.length") == 0
    p.fill("#ids", "3, no-such-item")  # a known id and an unknown one
    page.recommend()
    assert "Unknown item id: no-such-item" in p.inner_text("#message")
    assert p.eval_on_selector_all("#results li", "els => els.length") == 0
    p.fill("#ids", "3")  # fixed: the message goes, the results come
    page.recommend()
    assert p.is_hidden("#message")
    assert p.eval_on_selector_all("#results li", "els => els.length") == 10
    page.check_clean()
    page.close()


def test_cli_errors_are_one_line(bundle, ckpt, tmp_path, capsys) -> None:
    cases = [
        (["app", "web", str(ckpt), "--out", str(tmp_path / "a")], "not a phone bundle"),
        (["app", "web", str(tmp_path / "nowhere"), "--out", str(tmp_path / "b")], "BUNDLE"),
        (["app", "web", str(bundle), "--out", str(tmp_path / "c"), "--items", str(tmp_path / "none.csv")], "none.csv"),
        (["app", "web", str(bundle), "--out", str(tmp_path / "d"), "--port", "0", "--serve"], "--port"),
        (["bench", str(bundle), "--client", "web", "--threads", "2"], "threads must be 1"),
        (["bench", str(bundle), "--client", "web", "--data", SMALL], "python client"),
    ]
    (tmp_path / "mismatch.csv").write_text("item,title\nx1,Nothing here\n")
    cases.append((["app", "web", str(bundle), "--out", str(tmp_path / "e"), "--items", str(tmp_path / "mismatch.csv")],
                  "no item id"))  # fmt: skip
    for args, words in cases:
        assert main(["-q", *args]) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("edgerec: error: ") and words in err[0], (args, err)
        assert not any((tmp_path / x).exists() for x in "abcde")
    with pytest.MonkeyPatch.context() as mp:  # the benchmark's browser missing: say what to install
        mp.setenv("EDGEREC_CHROMIUM", str(tmp_path / "no-chromium"))
        assert main(["-q", "bench", str(bundle), "--client", "web"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "EDGEREC_CHROMIUM" in err[0] and "not an executable" in err[0], err


def test_the_site_is_what_the_bundle_holds(site, bundle) -> None:
    from edgerec.io import sha256_file

    manifest = json.loads((bundle / "manifest.json").read_text())
    trimmed = json.loads((site / "manifest.json").read_text())
    assert sha256_file(site / "model.tflite") == manifest["files"]["model.tflite"]["sha256"] == trimmed["model_sha256"]
    assert trimmed["signatures"] == manifest["signatures"] and trimmed["n_items"] == manifest["n_items"]
    assert "files" not in trimmed and "user_vectors" not in trimmed
    assert json.loads((site / "id_maps.json").read_text()) == {"items": [str(x) for x in manifest_items(bundle)]}
    titles = json.loads((site / "site.json").read_text())["titles"]
    assert titles[1] == "Title 1, the film (1991)" and titles[7] is None  # the CSV left out multiples of 7
    assert not (site / "user_vectors.npy").exists()


def manifest_items(bundle: Path) -> list:
    return json.loads((bundle / "id_maps.json").read_text())["items"]


def test_the_chain_hook_equals_python_litert(browser, url, bundle) -> None:
    """window.edgerec.chain (what benchmarks/app_clients.py compares on ML-1M): fold_in -> recommend -> explain for
    seeded histories, explain's items the in-graph top-K, equal to Python's LiteRT signature runners."""
    check_chain(browser, url, bundle)


@pytest.mark.parametrize("table", ["int4", "pq", "pq+32"])
def test_compressed_item_tables_run_in_litert_js(browser, ckpt, tmp_path, table) -> None:
    """Each item-table format edgerec.runtime.config.TABLE_FORMATS lists for LiteRT.js (pq+32: with 32 exact head
    rows) gives the page the same fold_in, recommend and explain as Python's LiteRT."""
    import edgerec
    from edgerec.gates import ParityBound
    from edgerec.runtime.config import TABLE_FORMATS

    require(shutil.which("npm") is not None, "npm")
    fmt, _, head = table.partition("+")
    assert fmt in TABLE_FORMATS["LiteRT.js"]
    options = {"explain": True, "item_table": fmt, "pq_head": int(head or 0), "table_recall": 0.0}
    # the parity gate is not what this test is about: the page must compute what Python's LiteRT does
    cfg = edgerec.ExportConfig(
        target="tflite-bundle", precision="int8", options=options, tolerance=ParityBound(hr=1.0, agreement=None)
    )
    bundle = tmp_path / "bundle"
    edgerec.export(edgerec.load(ckpt), cfg, data=SMALL, out=bundle)
    assert main(["-q", "app", "web", str(bundle), "--out", str(tmp_path / "site")]) == 0
    with served(tmp_path / "site") as base:
        check_chain(browser, base, bundle)


def check_chain(browser, url: str, bundle: Path) -> None:
    from edgerec.runtime import load_bundle

    scorer = load_bundle(bundle)
    runners = {s: scorer.interp.get_signature_runner(s) for s in ("fold_in", "recommend", "explain")}
    rng = np.random.default_rng(5)
    h = scorer.max_history
    lengths = (1, 2, 7, 30, h)
    histories = [np.sort(rng.choice(scorer.n_items, size=n, replace=False)).astype(np.int32) for n in lengths]
    page = Page(browser, url)
    got = page.page.evaluate("(hs) => window.edgerec.chain(hs)", [x.tolist() for x in histories])
    for items, out in zip(histories, got, strict=True):
        history, mask = np.zeros(h, np.int32), np.zeros(h, np.float32)
        history[: len(items)], mask[: len(items)] = items, 1
        f = runners["fold_in"](history=history, history_mask=mask)
        r = runners["recommend"](**f)
        e = runners["explain"](**f, history=history, history_mask=mask, items=r["top_items"])
        for name in ("user_gmf", "user_mlp"):
            np.testing.assert_allclose(np.ravel(out[name]), np.ravel(f[name]), atol=1e-4, rtol=0)
        assert out["top_items"] == r["top_items"].ravel().tolist()
        np.testing.assert_allclose(out["top_scores"], r["top_scores"].ravel(), atol=1e-4, rtol=0)
        assert out["reasons"] == e["reasons"].ravel().tolist()
        np.testing.assert_allclose(out["reason_weights"], e["reason_weights"].ravel(), atol=1e-4, rtol=0)
    page.check_clean()
    page.close()


def test_a_shortlist_bundle_recommends_what_python_litert_does(browser, ckpt, tmp_path) -> None:
    """A bundle whose recommend ranks a shortlist: the page leaves the picks out of the shortlist and shows what
    Python's LiteRT gives (fold_in, recommend and explain chained as the other clients chain them)."""
    import edgerec

    require(shutil.which("npm") is not None, "npm")
    options = {"explain": True, "shortlist": 40, "table_recall": 0.0}
    cfg = edgerec.ExportConfig(target="tflite-bundle", precision="int8", options=options)
    bundle = edgerec.export(edgerec.load(ckpt), cfg, data=SMALL, out=tmp_path / "bundle").folder
    assert main(["-q", "app", "web", str(bundle), "--out", str(tmp_path / "site")]) == 0
    with served(tmp_path / "site") as base:
        page = Page(browser, base)
        p = page.page
        for i in PICKS:
            p.click(f"#catalog button[data-index='{i}']")
        page.recommend()
        assert p.is_hidden("#message"), p.inner_text("#message")
        shown = p.eval_on_selector_all(
            "#results li.rec", "els => els.map(e => ({index: +e.dataset.index, score: +e.dataset.score}))"
        )
        want = python_reference(bundle, tmp_path / "site", list(PICKS))
        assert [r["index"] for r in shown] == want["top"] and not set(want["top"]) & set(PICKS)
        np.testing.assert_allclose([r["score"] for r in shown], want["scores"], atol=1e-4, rtol=0)
        page.check_clean()
        page.close()
        check_chain(browser, base, bundle)


def test_an_over_long_history_shows_a_message(browser, url, site) -> None:
    page = Page(browser, url)
    p = page.page
    manifest = json.loads((site / "manifest.json").read_text())
    ids = json.loads((site / "id_maps.json").read_text())["items"]
    h = int(manifest["max_history"])
    p.fill("#ids", " ".join(str(x) for x in ids[: h + 1]))
    page.recommend()
    assert f"Pick at most {h} items" in p.inner_text("#message")
    assert p.eval_on_selector_all("#results li", "els => els.length") == 0
    page.check_clean()
    page.close()


def test_bench_client_web_times_every_signature_in_the_page(bundle, tmp_path) -> None:
    """`edgerec bench BUNDLE --client web` (the console script's process: it starts its own Chromium): the page's
    fold_in, recommend and explain timed in headless Chromium, the bytes a first visit downloads (the model and
    LiteRT.js's WASM among them), checked by a web budget."""
    require(Path(CHROMIUM).is_file(), f"Chromium ({CHROMIUM})")
    require(shutil.which("npm") is not None, "npm")
    from edgerec.profiles.schema import Budget

    out = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "edgerec.entry", "-q", "bench", str(bundle), "--client", "web", "--min-time", "0.1",
           "--json", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, env={**os.environ, "EDGEREC_CHROMIUM": CHROMIUM}, capture_output=True, text=True,
                          timeout=300, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    printed = proc.stdout
    assert "LiteRT.js" in printed and "fold_in" in printed and "bytes downloaded by the page" in printed
    record = json.loads(out.read_text())
    assert record["client"] == "web" and set(record["latency_ms"]) == {"fold_in", "catalog_top10", "explain"}
    for lat in record["latency_ms"].values():
        assert 0 < lat["p50"] <= lat["p99"] < 10_000 and lat["calls"] >= 50
    model = json.loads((bundle / "manifest.json").read_text())["files"]["model.tflite"]["bytes"]
    assert record["model_bytes"] == model and record["bytes"] > model + 5_000_000  # the WASM runtime is fetched
    assert record["bytes"] < record["site_bytes"]  # the second WASM build is not
    assert Budget(bytes=record["bytes"]).failures(record) == []
    assert Budget(bytes=model).failures(record) == [f"bytes {record['bytes']:,} > budget {model:,}"]


@pytest.fixture(scope="module")
def plain_bundle(tmp_path_factory, ckpt) -> Path:
    """An int8 phone bundle without --explain: recommend only, no fold_in."""
    import edgerec

    out = tmp_path_factory.mktemp("web") / "plain"
    cfg = edgerec.ExportConfig(target="tflite-bundle", precision="int8")
    edgerec.export(edgerec.load(ckpt), cfg, data=SMALL, out=out)
    return out


def test_a_bundle_without_fold_in_needs_demo_users(plain_bundle, browser, tmp_path, capsys) -> None:
    """Refused with one line naming --explain; with --demo-users the page recommends for the demo user who scores
    the picks highest, as Python's LiteRT does."""
    require(shutil.which("npm") is not None, "npm")
    assert main(["-q", "app", "web", str(plain_bundle), "--out", str(tmp_path / "refused")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--explain" in err[0] and "--demo-users" in err[0], err
    assert not (tmp_path / "refused").exists()
    site = tmp_path / "demo"
    assert main(["-q", "app", "web", str(plain_bundle), "--out", str(site), "--demo-users"]) == 0
    from edgerec.apps.browser import serve_site

    with serve_site(site) as base:
        page = Page(browser, base)
        p = page.page
        for i in PICKS:
            p.click(f"#catalog button[data-index='{i}']")
        page.recommend()
        want = python_reference(plain_bundle, site, list(PICKS))
        assert want["user"] is not None and f"demo user {want['user']}," in p.inner_text("#who")
        shown = p.eval_on_selector_all("#results li.rec", "els => els.map(e => +e.dataset.index)")
        assert shown == want["top"]
        assert "this bundle has no explanations" in p.inner_text("#results")
        page.check_clean()
        page.close()


# -- a new user by their attributes (a bundle of a model with user features) ----------------------------------------

EVERY_KIND = {  # an encoder of every kind, for the page's port of Encoder.encode_attributes
    "format": "edgerec.features",
    "format_version": 1,
    "side": "user",
    "id_column": "user",
    "size": 115,
    "columns": [
        {"name": "cat", "kind": "categorical", "offset": 1, "vocab": ["b", "a", "3"]},
        {"name": "multi", "kind": "multi", "offset": 5, "vocab": ["x", "y", "z"], "separator": ";"},
        {"name": "num", "kind": "numeric", "offset": 9, "edges": [-1.0, 0.0, 2.5, 1000.0]},
        {"name": "z", "kind": "scaled", "offset": 15, "mean": 3.2, "scale": 1.7},
        {"name": "bio", "kind": "text", "offset": 17, "buckets": 97, "max_tokens": 5, "hash": "crc32"},
    ],
}
ROWS = [  # as typed in the page's form: text
    {"cat": "b", "multi": "x;y", "num": "2.5", "z": "3.2", "bio": "a quiet reader"},
    {"cat": " a ", "multi": "y; y ;zz;;x", "num": "-0", "z": "1e9", "bio": "Quiet READER, quiet reader; Ünïcode"},
    {"cat": "B", "multi": ";", "num": "1_000", "z": "+.5", "bio": "Straße İstanbul ΣΑΣ naïve café_au_lait x² 🎬 a b"},
    {"cat": "3", "multi": "", "num": "5.", "z": "-1E-3", "bio": "   "},
    {"cat": "", "num": "1e3", "z": "-2_5.0_1", "bio": "one two one two one two three"},
    {},
]
BAD_NUMBERS = ["3x", "inf", "nan", "1__0", "0x10", "_1", "1e", "١٢"]  # Python's encoder counts each invalid


def export_feature_model(root: Path, options: dict) -> Path:
    """A tiny model with user features (categorical, numeric, multi-valued and text columns, as
    tests/test_cold_users.py builds it) exported as an fp32 bundle with `options`."""
    import torch

    import edgerec
    from edgerec.model.config import FeaturesConfig, TrainConfig

    from .test_cold_users import TINY, user_table

    torch.set_num_threads(1)
    ds = edgerec.dataset(TINY)
    users = user_table(root / "users.tsv", ds.train.user_ids)
    ck = edgerec.train(ds, TrainConfig(factors=4, epochs=1, features=FeaturesConfig(user=str(users))))
    cfg = edgerec.ExportConfig(target="tflite-bundle", precision="fp32", options=options)
    return edgerec.export(ck, cfg, ds, out=root / "bundle").folder


@pytest.fixture(scope="module")
def feature_bundle(tmp_path_factory) -> Path:
    """Without --explain: recommend and user_features, no fold_in (the page ranks a new user by their attributes
    alone)."""
    return export_feature_model(tmp_path_factory.mktemp("features"), {})


def fill_attributes(p, attributes: dict[str, str]) -> None:
    for name in p.eval_on_selector_all("#attr-fields input", "els => els.map(e => e.dataset.column)"):
        p.fill(f"#attr-fields input[data-column='{name}']", attributes.get(name, ""))


def test_a_new_user_by_attributes_gets_what_python_litert_gives(browser, feature_bundle, tmp_path) -> None:
    """The page's form encodes the attributes exactly as the bundle's Encoder does (the same indices and float32
    weights: categories, an unknown one, a missing value, multi-valued, hashed text), runs user_features and ranks the
    catalog for those vectors as Python's BundleScorer does; the encoder port agrees on every kind; a malformed
    number is a one-line message; a changed user_encoder.json stops the page."""
    require(shutil.which("npm") is not None, "npm")
    from edgerec.apps.browser import serve_site
    from edgerec.data.features import Encoder
    from edgerec.io import sha256_file
    from edgerec.runtime import load_bundle

    site = tmp_path / "site"
    assert main(["-q", "app", "web", str(feature_bundle), "--out", str(site)]) == 0  # no --demo-users needed
    manifest = json.loads((feature_bundle / "manifest.json").read_text())
    assert sha256_file(site / "user_encoder.json") == manifest["files"]["user_encoder.json"]["sha256"]
    assert json.loads((site / "manifest.json").read_text())["user_features"]["sha256"] == sha256_file(
        site / "user_encoder.json"
    )
    b = load_bundle(feature_bundle)
    with serve_site(site) as base:
        page = Page(browser, base)
        p = page.page
        assert p.is_visible("#attrs") and p.is_hidden("#pick-items")  # nothing to fold picks into
        cases = [
            {"group": "never seen", "hobbies": "golf| golf |knitting", "bio": "Quiet reader, quiet READER; ça va"},
            {"group": "b", "age": " 33.5 ", "hobbies": "chess|films"},
        ]
        for n, attributes in enumerate(cases):
            fill_attributes(p, attributes)
            page.recommend()
            last = p.evaluate("() => window.edgerec.last")
            indices, weights, counts = b.encode_user(attributes)
            assert last["attributes"]["feature_indices"] == indices.tolist()
            np.testing.assert_array_equal(np.float32(last["attributes"]["feature_weights"]), weights)
            ug, um = b.user_from_features(attributes)
            np.testing.assert_allclose(last["vectors"]["user_gmf"], ug, atol=1e-4, rtol=0)
            np.testing.assert_allclose(last["vectors"]["user_mlp"], um, atol=1e-4, rtol=0)
            scores = b.recommend(ug, um)[2]
            top = np.argsort(-scores.astype(np.float64), kind="stable")[: b.k]
            shown = p.eval_on_selector_all(
                "#results li.rec", "els => els.map(e => [+e.dataset.index, +e.dataset.score])"
            )
            assert [i for i, _ in shown] == top.tolist()
            np.testing.assert_allclose([s for _, s in shown], scores[top], atol=1e-4, rtol=0)
            assert "alone" in p.inner_text("#who") and "user_features" in p.inner_text("#who")
            if n == 0:  # an unknown category and an unknown value of a multi-valued field, age missing
                assert counts == {"unknown": 2, "missing": 1}
                assert last["attributes"]["missing"] == ["age"]
                note = p.inner_text("#message")
                assert p.is_visible("#message") and "\n" not in note
                assert 'group "never seen"' in note and 'hobbies "knitting"' in note
            else:
                assert counts == {"missing": 1} and p.is_hidden("#message")  # bio not given: no note
        fill_attributes(p, {"group": "b", "age": "3x"})  # a malformed number: refused, one line, no results
        page.recommend()
        message = p.inner_text("#message")
        assert message.startswith('age: "3x" is not a number') and "\n" not in message
        assert p.eval_on_selector_all("#results li", "els => els.length") == 0
        fill_attributes(p, {})  # nothing typed: said so
        page.recommend()
        assert "at least one field" in p.inner_text("#message")
        # the encoder port on every kind, against Python's Encoder
        got = p.evaluate(
            """async ([d, rows]) => {
                 const {FeatureEncoder} = await import('./features.js');
                 const e = new FeatureEncoder(d, 12);
                 return rows.map((r) => { const x = e.encode(r);
                   return [Array.from(x.indices), Array.from(x.weights), x.invalid.length]; });
               }""",
            [EVERY_KIND, ROWS + [{"num": v} for v in BAD_NUMBERS]],
        )
        encoder = Encoder.from_json(EVERY_KIND)
        assert encoder.width == 12
        for row, (idx, w, invalid) in zip(ROWS, got, strict=False):
            encoded, counts = encoder.encode_attributes(row)
            assert idx == encoded.indices[0].tolist(), row
            np.testing.assert_array_equal(np.float32(w), encoded.weights[0], err_msg=str(row))
            assert invalid == counts["invalid"] == 0
        assert [invalid for _, _, invalid in got[len(ROWS) :]] == [1] * len(BAD_NUMBERS)
        python_invalid = [encoder.encode_attributes({"num": v})[1]["invalid"] for v in BAD_NUMBERS]
        assert python_invalid == [1] * (len(BAD_NUMBERS) - 1) + [
            0
        ]  # Python reads Arabic-Indic digits; the page refuses
        page.check_clean()
        page.close()
        (site / "user_encoder.json").write_text((site / "user_encoder.json").read_text().replace('"b"', '"B"'))
        tampered = browser.contexts[0].new_page()
        tampered.goto(base)
        tampered.wait_for_selector('#status[data-state="error"]', timeout=60_000)
        assert "user_encoder.json: sha256" in tampered.inner_text("#status")
        tampered.close()


def test_the_page_bench_times_user_features(feature_bundle, tmp_path) -> None:
    """`edgerec bench --client web` (its own process and Chromium) on a bundle with user features times the page's
    user_features beside recommend (with --explain also fold_in_from: the slow test below)."""
    require(Path(CHROMIUM).is_file(), f"Chromium ({CHROMIUM})")
    require(shutil.which("npm") is not None, "npm")
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "edgerec.entry", "-q", "bench", str(feature_bundle), "--client", "web",
           "--min-time", "0.05", "--json", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, env={**os.environ, "EDGEREC_CHROMIUM": CHROMIUM}, capture_output=True, text=True,
                          timeout=300, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    record = json.loads(out.read_text())
    assert set(record["latency_ms"]) == {"catalog_top10", "user_features"} and "user_features" in proc.stdout
    lat = record["latency_ms"]["user_features"]
    assert 0 < lat["p50"] <= lat["p99"] and lat["calls"] >= 20


@pytest.mark.slow  # the unrolled fold-in's conversion takes ~35 s
def test_attributes_and_picks_fold_in_from_the_attributes_vectors(browser, tmp_path) -> None:
    """With --explain the form and the picks go together: user_features, then fold_in_from on the picks, then
    recommend (the picks left out) and explain, as Python's BundleScorer runs them; without attributes the page's
    fold_in flow is the id-only one."""
    require(shutil.which("npm") is not None, "npm")
    from edgerec.apps.browser import serve_site
    from edgerec.runtime import load_bundle

    bundle = export_feature_model(tmp_path, {"explain": True, "fold_in": {"steps": 4, "lr": 0.05, "pull": 0.1}})
    site = tmp_path / "site"
    assert main(["-q", "app", "web", str(bundle), "--out", str(site)]) == 0
    b = load_bundle(bundle)
    picks = list(PICKS)
    attributes = {"group": "c", "age": "41", "bio": "night owl"}
    with serve_site(site) as base:
        page = Page(browser, base)
        p = page.page
        assert p.is_visible("#attrs") and p.is_visible("#pick-items")
        for i in picks:
            p.click(f"#catalog button[data-index='{i}']")
        for vectors, typed in (
            (b.fold_in(picks, start=b.user_from_features(attributes)), attributes),
            (b.fold_in(picks), {}),
        ):
            fill_attributes(p, typed)
            page.recommend()
            assert p.is_hidden("#message"), p.inner_text("#message")
            last = p.evaluate("() => window.edgerec.last")
            calls = [name for name, _ in last["timings"]]
            if typed:
                assert calls == ["user_features", "fold_in_from", "recommend", "explain"]
                assert "starting from what your 3 attributes" in p.inner_text("#who")
            else:
                assert calls == ["fold_in", "recommend", "explain"]
                assert p.inner_text("#who") == "A new user folded in on this device from your 3 items."
            ug, um = vectors
            np.testing.assert_allclose(last["vectors"]["user_gmf"], ug, atol=1e-4, rtol=0)
            np.testing.assert_allclose(last["vectors"]["user_mlp"], um, atol=1e-4, rtol=0)
            scores = b.recommend(ug, um)[2].astype(np.float64)
            scores[picks] = -np.inf
            top = np.argsort(-scores, kind="stable")[: b.k]
            assert [x["index"] for x in last["shown"]] == top.tolist()
            reasons, weights = b.explain(ug, um, picks, top)
            for shown, r, w in zip(last["reasons"], reasons, weights, strict=True):
                same_reasons([(x["index"], x["weight"]) for x in shown], list(zip(r.tolist(), w.tolist(), strict=True)))
        timed = p.evaluate("() => window.edgerec.bench({warmup: 5, warmupMs: 0, minCalls: 20, minMs: 50})")
        assert set(timed) == {"fold_in", "recommend", "user_features", "fold_in_from", "explain"}  # the bench's calls
        assert all(len(ms) >= 20 and min(ms) > 0 for ms in timed.values())
        page.check_clean()
        page.close()
