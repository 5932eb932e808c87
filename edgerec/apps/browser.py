"""The web client run by a machine: a site of `edgerec app web` served on 127.0.0.1 and driven in headless Chromium.

    headless_chromium(executable)   Chromium started here, Playwright attached over the DevTools protocol
    serve_site(folder)              the site on a loopback port, cross-origin isolated (finer timers in the page)
    SitePage                        one page of it: ready or failed, its console errors, what it downloaded
    PageTimings.run(bundle, opts)   the bundle's signatures timed in the page (`edgerec bench --client web`)

Chromium is the system's (`chromium`, or EDGEREC_CHROMIUM); Playwright for Python drives it (its own browser
download is never used). The browser reaches 127.0.0.1 only (CHROMIUM_FLAGS). numpy only, never torch.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from edgerec.errors import EdgerecError, one_line

# headless Chromium on a machine with no network but itself (root: no sandbox): no background connections, and only
# 127.0.0.1 resolves, so a page that reached for anything else would fail before a packet left
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
)
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
PAGE_TIMEOUT_MS = 60_000  # from opening the page to a loaded model (LiteRT.js compiles its WASM on first load)


def chromium_executable() -> str:
    """EDGEREC_CHROMIUM, else the first of chromium / chromium-browser / google-chrome on PATH."""
    given = os.environ.get("EDGEREC_CHROMIUM")
    if given:
        if not (Path(given).is_file() and os.access(given, os.X_OK)):
            raise EdgerecError(
                f"EDGEREC_CHROMIUM={given}: not an executable file; point it at Chromium (e.g. /usr/bin/chromium "
                "after `apt-get install -y chromium`) or unset it"
            )
        return given
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise EdgerecError(
        "Chromium not found: the web client's benchmark runs the page in headless Chromium; install it "
        "(e.g. `apt-get install -y chromium`) or set EDGEREC_CHROMIUM to its executable"
    )


def _playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise EdgerecError(
            "Playwright for Python is not installed: `pip install playwright` (it drives the system's Chromium; "
            "its own browser download is not needed)"
        ) from None
    return sync_playwright


@contextlib.contextmanager
def headless_chromium(executable: str, extra_flags: tuple[str, ...] = ()) -> Iterator[Any]:
    """Headless Chromium started here (CHROMIUM_FLAGS, its own user-data-dir, DevTools on a loopback port) with
    Playwright for Python attached over the DevTools protocol; yields the Playwright Browser. The browser is stopped
    by its pid (SIGTERM, then SIGKILL) and its profile removed, however the block ends."""
    sync_playwright = _playwright()
    profile = Path(tempfile.mkdtemp(prefix="edgerec-chromium-"))
    cmd = [executable, *CHROMIUM_FLAGS, *extra_flags, f"--user-data-dir={profile}", "--remote-debugging-port=0"]
    proc = subprocess.Popen([*cmd, "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        for _ in range(300):
            if port_file.is_file() and port_file.read_text().strip():
                break
            if proc.poll() is not None:
                raise EdgerecError(f"{executable} exited with status {proc.returncode} before opening DevTools")
            time.sleep(0.1)
        else:
            raise EdgerecError(f"{executable} did not open its DevTools port in 30 s")
        port = int(port_file.read_text().split()[0])
        with sync_playwright() as pw:
            browser = pw.chromium.connect_over_cdp(f"http://127.0.0.1:{port}")
            try:
                yield browser
            finally:
                browser.close()
    finally:
        stop_process(proc)
        shutil.rmtree(profile, ignore_errors=True)


def stop_process(proc: subprocess.Popen) -> None:
    """Stop a process started here, by its pid: SIGTERM, then SIGKILL if it lingers past 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


class _Isolated(http.server.SimpleHTTPRequestHandler):
    """The site's files with the headers that make the page cross-origin isolated (performance.now() in 5 us steps
    instead of 100 us), quietly."""

    def end_headers(self) -> None:
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve_site(folder: str | Path, port: int = 0) -> Iterator[str]:
    """The site served from 127.0.0.1 (port 0: a free one) in a thread of this process; yields its URL."""
    handler = functools.partial(_Isolated, directory=str(folder))
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as e:
        raise EdgerecError(f"port {port}: cannot listen on 127.0.0.1 ({e.strerror}); choose another") from None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class SitePage:
    """One page of a served site, opened and waited for until the model is loaded (or the page says why not).
    Records uncaught exceptions, console errors and every response (URL, bytes of the body)."""

    def __init__(self, browser: Any, url: str, site: Path) -> None:
        self.url, self.site = url, site
        self.page = browser.contexts[0].new_page()
        self.errors: list[str] = []
        self.console: list[tuple[str, str]] = []
        self.fetched: list[str] = []  # the site-relative paths the page downloaded
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.console.append((m.type, m.text)))
        self.page.on("requestfinished", lambda r: self.fetched.append(r.url))
        self.page.goto(url)
        self.page.wait_for_selector('#status[data-state="ready"], #status[data-state="error"]', timeout=PAGE_TIMEOUT_MS)
        if self.page.get_attribute("#status", "data-state") != "ready":
            raise EdgerecError(f"the page did not load the model: {one_line(self.page.inner_text('#status'))}")

    def console_errors(self) -> list[str]:
        return self.errors + [text for kind, text in self.console if kind == "error"]

    def downloaded_bytes(self) -> int:
        """Bytes of the site's files the page fetched (each once: what a first visit downloads)."""
        paths = {urlparse(u).path.lstrip("/") or "index.html" for u in self.fetched if u.startswith(self.url)}
        return sum((self.site / p).stat().st_size for p in paths if (self.site / p).is_file())

    def close(self) -> None:
        self.page.close()


@dataclass(frozen=True)
class PageTimings:
    """What the page measured of itself (PageTimings.run): each signature's call times, its load and downloads."""

    ms: dict[str, list[float]]  # {signature: each timed call's milliseconds}
    load_ms: dict[str, float]  # {"files", "litert", "model"}: first fetch to a compiled model that ran once
    downloaded_bytes: int  # the site's files a first visit fetched
    site_bytes: int
    cross_origin_isolated: bool
    chromium: str

    @classmethod
    def run(cls, bundle: Path, options: dict[str, Any]) -> PageTimings:
        """Build the site of `bundle` (demo users allowed) in a temporary folder, serve it on 127.0.0.1, open it in
        headless Chromium and run the page's bench with `options` (its loop settings and the history)."""
        from edgerec.apps.web import build_site

        chromium = chromium_executable()
        _playwright()
        with tempfile.TemporaryDirectory(prefix="edgerec-web-bench-") as tmp:
            site = build_site(bundle, Path(tmp) / "site", demo_users=True)
            with serve_site(site.folder) as url, headless_chromium(chromium) as browser:
                page = SitePage(browser, url, site.folder)
                load = page.page.evaluate("() => window.edgerec.loadMs")
                isolated = page.page.evaluate("() => self.crossOriginIsolated")
                ms = page.page.evaluate("(o) => window.edgerec.bench(o)", options)
                errors = page.console_errors()
                timings = cls(ms, load, page.downloaded_bytes(), site.bytes, bool(isolated), browser.version)
                page.close()
        if errors:
            raise EdgerecError(f"the page logged errors while benchmarking: {one_line(errors[0])}")
        return timings
