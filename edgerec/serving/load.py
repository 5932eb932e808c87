"""A bounded closed-loop load generator: `concurrency` workers, each sending its next request as soon as the last
one is answered, until a fixed number of requests is spent. Used for the served repository (one tritonclient
client per worker, HTTP or gRPC) and, on the same request stream, for in-process scorers to compare against.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgerec.errors import EdgerecError
from edgerec.io import SavesJson
from edgerec.serving.config import LoadConfig

Call = Callable[[int], Any]  # one request: recommendations for one user


@dataclass
class LoadResult:
    name: str
    concurrency: int
    latencies_ms: np.ndarray  # per request (NaN where it failed)
    wall_s: float
    errors: int
    first_error: str | None = None
    server: dict[str, Any] = field(default_factory=dict)  # Triton's statistics over the run

    @property
    def requests(self) -> int:
        return len(self.latencies_ms)

    @property
    def per_second(self) -> float:
        return (self.requests - self.errors) / self.wall_s if self.wall_s > 0 else 0.0

    def percentile(self, q: float) -> float:
        ok = self.latencies_ms[~np.isnan(self.latencies_ms)]
        return float(np.percentile(ok, q)) if ok.size else float("nan")

    def row(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "concurrency": self.concurrency,
            "requests": self.requests,
            "p50_ms": self.percentile(50),
            "p90_ms": self.percentile(90),
            "p99_ms": self.percentile(99),
            "recs_per_s": self.per_second,
            "errors": self.errors,
            **({"first_error": self.first_error} if self.first_error else {}),
            **({"server_batch_mean": self.server.get("batch_mean")} if self.server else {}),
            **({"server_batches": self.server.get("batches")} if self.server else {}),
        }


def closed_loop(name: str, make_call: Callable[[], Call], users: np.ndarray, concurrency: int) -> LoadResult:
    """Send every user of `users` once, `concurrency` at a time; each worker makes its own call with make_call(),
    in its own thread (tritonclient's HTTP client is bound to the thread that made it)."""
    if concurrency < 1 or len(users) < 1:
        raise EdgerecError(f"the load needs concurrency >= 1 and at least one request; got {concurrency}, {len(users)}")
    lat = np.full(len(users), np.nan)
    state: dict[str, Any] = {"next": 0, "errors": 0, "first": None, "setup": None}
    lock = threading.Lock()
    gate = threading.Barrier(concurrency + 1)

    def worker() -> None:
        try:
            call = make_call()
        except Exception as e:  # reported after the run: a worker that cannot connect sends nothing
            state["setup"] = state["setup"] or e
            gate.wait()
            return
        gate.wait()
        while True:
            with lock:
                i = state["next"]
                state["next"] = i + 1
            if i >= len(users):
                return
            t0 = time.perf_counter()
            try:
                call(int(users[i]))
            except Exception as e:  # a failed request is counted, never fatal to the run
                with lock:
                    state["errors"] += 1
                    state["first"] = state["first"] or str(e)
                continue
            lat[i] = (time.perf_counter() - t0) * 1e3

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    gate.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if state["setup"] is not None:
        raise EdgerecError(f"{name}: a load worker could not start: {state['setup']}")
    return LoadResult(name, concurrency, lat, wall, int(state["errors"]), state["first"])


def server_load(url: str, protocol: str, users: np.ndarray, concurrency: int) -> LoadResult:
    """The served `recommend` model under load, with Triton's batch statistics of the run."""
    from edgerec.serving.client import Client

    clients: list[Client] = []

    def make_call() -> Call:
        c = Client(url, protocol)
        clients.append(c)  # list.append is atomic: workers add theirs concurrently
        return lambda user: c.recommend([user])

    probe = Client(url, protocol)
    try:
        before = probe.stats()
        result = closed_loop(f"triton {protocol}", make_call, users, concurrency)
        after = probe.stats()
    finally:
        for c in [*clients, probe]:
            c.close()
    executions = after["execution_count"] - before["execution_count"]
    inferences = after["inference_count"] - before["inference_count"]
    batches = {b: n - before["batches"].get(b, 0) for b, n in sorted(after["batches"].items())}
    result.server = {
        "executions": executions,
        "batch_mean": inferences / executions if executions else float("nan"),
        "batches": {b: n for b, n in batches.items() if n},
    }
    return result


@dataclass(frozen=True)
class LoadReport(SavesJson):
    """Every (protocol, concurrency) measured against one served repository."""

    server: str  # its HTTP host:port
    results: tuple[LoadResult, ...]

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.results)

    @property
    def first_error(self) -> str | None:
        return next((r.first_error for r in self.results if r.errors), None)

    def to_json(self) -> dict[str, Any]:
        return {"server": self.server, "results": [r.row() for r in self.results]}


def bench_server(url: str, cfg: LoadConfig, n_users: int, grpc_url: str | None = None) -> list[LoadResult]:
    """Every (protocol, concurrency) of cfg against the served repository at url (HTTP; gRPC at grpc_url, default
    the same host with the HTTP port + 1), on one seeded request stream of users 0..n_users-1 (the served
    version's users: its manifest's n_users)."""
    if n_users < 1:
        raise EdgerecError(f"the request stream needs at least one user; got n_users={n_users}")
    host, _, port = url.removeprefix("http://").rpartition(":")
    urls = {"http": url, "grpc": grpc_url or f"{host}:{int(port) + 1 if port.isdigit() else port}"}
    users = cfg.stream(n_users)
    return [server_load(urls[p], p, users, c) for p in cfg.protocols for c in cfg.concurrency]


class BackgroundLoad:
    """A closed-loop load on the served `recommend` model that runs until stopped (e.g. across a roll-out):
    rounds of `len(users)` requests at `concurrency`, repeated; `.results` holds every round's LoadResult.

        with BackgroundLoad(server.grpc_url, "grpc", users, 8) as load:
            edgerec.rollout(repo, child)
        assert load.failed == 0
    """

    def __init__(self, url: str, protocol: str, users: np.ndarray, concurrency: int) -> None:
        self.url, self.protocol, self.users, self.concurrency = url, protocol, users, concurrency
        self.results: list[LoadResult] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _call(self) -> Call:
        from edgerec.serving.client import Client

        c = Client(self.url, self.protocol)
        return lambda user: c.recommend([user])

    def _run(self) -> None:
        while not self._stop.is_set():
            self.results.append(closed_loop("background", self._call, self.users, self.concurrency))

    @property
    def answered(self) -> int:
        return sum(r.requests - r.errors for r in self.results)

    @property
    def failed(self) -> int:
        return sum(r.errors for r in self.results)

    @property
    def first_error(self) -> str | None:
        return next((r.first_error for r in self.results if r.errors), None)

    def __enter__(self) -> BackgroundLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(120)
