"""A real Triton Inference Server process on a verified edgerec repository (`edgerec serve`, tests, benchmarks).

Before anything starts: every file is checked against the repository's manifest (a changed file refuses to serve),
each config.pbtxt is parsed back against its model file, the backend must be one this Triton has, and the ports
must be free: a server left behind by a killed owner on these ports is stopped first (`runs.py`). The server binds
127.0.0.1 by default, runs in its own process group with a unique shared-memory prefix, logs to a temporary folder,
and guards the model-repository API (load / unload) with a random access token (the `triton-access-token` header).
`stop()` (or leaving the `with` block) sends SIGINT, waits, then kills the group: no orphan processes, no temporary
folder and no shared-memory region are left.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgerec.errors import EdgerecError
from edgerec.manifest import read_manifest
from edgerec.serving import runs, triton_config
from edgerec.serving.env import ServeEnv, find

TOKEN_HEADER = "triton-access-token"
PORTS_WAIT_S = 10.0  # for the ports of a stopped server to be released


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """n distinct ports free right now (held together while chosen, so they differ)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(n)]
        for s in socks:
            s.bind((host, 0))
        return [int(s.getsockname()[1]) for s in socks]


def check_repository(repo: Path) -> dict[str, Any]:
    """The repository's manifest after checking every file's hash and every model's config against its ONNX."""
    manifest = read_manifest(repo)  # refuses a changed, missing or corrupt file
    if manifest.get("target") != "triton":
        raise EdgerecError(f"{repo}: a {manifest.get('target')} artifact, not a Triton repository (--target triton)")
    version = manifest["triton"]["version"]
    for model in triton_config.MODELS:
        triton_config.check(repo / model / triton_config.CONFIG, repo / model / str(version) / "model.onnx")
    if (repo / triton_config.FEEDBACK).is_dir():
        triton_config.check_feedback(repo / triton_config.FEEDBACK / triton_config.CONFIG)
    if (repo / triton_config.ROUTER).is_dir():
        triton_config.check_router(repo / triton_config.ROUTER / triton_config.CONFIG)
    return manifest


class TritonServer:
    def __init__(
        self,
        repo: str | Path,
        host: str = "127.0.0.1",
        http_port: int = 8000,
        grpc_port: int = 8001,
        env: ServeEnv | None = None,
        env_path: Path | None = None,  # where to find the server environment, when env is not given
        poll_seconds: int = 0,  # > 0: Triton re-reads the repository this often (new versions are served)
        log_dir: str | Path | None = None,  # the feedback model's event log (None: feedback is refused)
        say: Callable[[str], None] = print,  # progress lines (waiting for a previous server)
        shadow_log: str | Path | None = None,  # a shadow experiment's JSON-lines log (None: not logged)
    ) -> None:
        self.repo = Path(repo).resolve()
        self.host, self.http_port, self.grpc_port = host, http_port, grpc_port
        self.env, self.env_path = env, env_path
        self.poll_seconds = poll_seconds
        self.log_dir = Path(log_dir).resolve() if log_dir else None
        self.say = say
        self.shadow_log = Path(shadow_log).resolve() if shadow_log else None
        self.token = secrets.token_hex(16)
        self.shm_prefix = f"edgerec{os.getpid()}x{secrets.token_hex(4)}"
        self.proc: subprocess.Popen | None = None
        self.record: runs.Record | None = None
        self.workdir: Path | None = None
        self.manifest: dict[str, Any] = {}
        self.startup_s = 0.0

    @property
    def http_url(self) -> str:
        return f"{self.host}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    @property
    def log_path(self) -> Path | None:
        return self.workdir / "tritonserver.log" if self.workdir else None

    def _command(self, env: ServeEnv) -> list[str]:
        control = (
            ["--model-control-mode=poll", f"--repository-poll-secs={self.poll_seconds}"]
            if self.poll_seconds
            else ["--model-control-mode=explicit", "--load-model=*"]
        )
        restricted = f"model-repository,shared-memory:{TOKEN_HEADER}={self.token}"
        return [
            *die_with_parent(),
            str(env.tritonserver),
            f"--model-repository={self.repo}",
            f"--backend-directory={env.triton / 'backends'}",
            f"--cache-directory={env.triton / 'caches'}",
            f"--http-address={self.host}",
            f"--http-port={self.http_port}",
            f"--grpc-address={self.host}",
            f"--grpc-port={self.grpc_port}",
            "--allow-metrics=false",
            *control,
            "--strict-readiness=true",
            "--exit-on-error=true",
            "--exit-timeout-secs=10",
            f"--http-restricted-api={restricted}",
            f"--grpc-restricted-protocol={restricted}",
            f"--backend-config=python,shm-region-prefix-name={self.shm_prefix}",
        ]

    def start(self, timeout: float = 90.0) -> TritonServer:
        self.manifest = check_repository(self.repo)
        env = self.env or find(self.env_path)
        backends = {p.name for p in (env.triton / "backends").iterdir() if p.is_dir()}
        backend = self.manifest["triton"]["backend"]
        have = "python" if backend == "python" else {"onnxruntime": "onnxruntime", "tensorrt_plan": "tensorrt"}[backend]
        if have not in backends:
            raise EdgerecError(
                f"{self.repo}: uses Triton's {backend} backend; this Triton ({env.tritonserver}) has only "
                f"{', '.join(sorted(backends))}: serve it with a full Triton (NVIDIA's container) or export it with "
                "the python backend (profile triton-cpu-onnx)"
            )
        ports = (self.http_port, self.grpc_port)
        if runs.take_over(self.host, ports, str(self.log_dir) if self.log_dir else None, self.say):
            deadline = time.monotonic() + PORTS_WAIT_S
            while time.monotonic() < deadline and not all(port_free(self.host, p) for p in ports):
                time.sleep(0.1)
        for name, port in (("HTTP", self.http_port), ("gRPC", self.grpc_port)):
            if not port_free(self.host, port):
                raise EdgerecError(
                    f"{self.host}:{port} is in use{runs.holder(self.host, port)}: choose another --{name.lower()}-port"
                )
        self.workdir = Path(tempfile.mkdtemp(prefix="edgerec-serve-"))
        start = time.perf_counter()
        environ = env.environ()
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            environ["EDGEREC_FEEDBACK_LOG"] = str(self.log_dir)
        if self.shadow_log is not None:
            self.shadow_log.parent.mkdir(parents=True, exist_ok=True)
            environ["EDGEREC_SHADOW_LOG"] = str(self.shadow_log)
        log = open(self.log_path, "wb")  # noqa: SIM115 (handed to the server process)
        try:
            self.proc = subprocess.Popen(
                self._command(env),
                env=environ,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as e:
            log.close()
            self._cleanup()
            raise EdgerecError(f"cannot start {env.tritonserver}: {e.strerror}") from None
        finally:
            log.close()
        self._record()
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.perf_counter() - start
        return self

    def _record(self) -> None:
        assert self.proc is not None
        started, owner_started = runs.start_time(self.proc.pid), runs.start_time(os.getpid())
        if started is None or owner_started is None:  # no /proc, or the server already exited
            return
        self.record = runs.Record(
            self.proc.pid, started, os.getpid(), owner_started, self.host, self.http_port, self.grpc_port,
            str(self.repo), str(self.log_dir) if self.log_dir else None, str(self.workdir), self.shm_prefix,
        )  # fmt: skip
        runs.save(self.record)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        models = [*triton_config.MODELS, *[m for m in (triton_config.ROUTER,) if (self.repo / m).is_dir()]]
        urls = [f"http://{self.http_url}/v2/models/{m}/ready" for m in models]
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise EdgerecError(f"tritonserver exited with code {self.proc.returncode}: {self.last_error()}")
            if all(_get(u) == 200 for u in urls):
                return
            time.sleep(0.1)
        raise EdgerecError(f"tritonserver was not ready within {timeout:.0f} s: {self.last_error()}")

    def last_error(self) -> str:
        """The last error line of the server's log (or its last line)."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines() if self.log_path else []
        except OSError:
            return "no log"
        failed = [ln for ln in lines if "failed to load '" in ln]  # a model's own error says most
        errors = failed or [ln for ln in lines if ln.startswith("E") or "error" in ln.lower()]
        line = (errors or lines or ["no output"])[-1 if not failed else 0]
        return line.split("] ", 1)[-1].split("\\n")[0].strip().strip('"')[:300]

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> float:
        """SIGINT to the server's process group, then SIGKILL after `timeout`; the seconds it took."""
        start = time.perf_counter()
        if self.proc is not None and self.proc.poll() is None:
            for sig, wait in ((signal.SIGINT, timeout), (signal.SIGKILL, 10.0)):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):  # the backend's stubs share the group
                os.killpg(self.proc.pid, signal.SIGKILL)
            runs.remove_shm(self.shm_prefix)
        if self.record is not None:
            runs.forget(self.record)
            self.record = None
        self._cleanup()
        return time.perf_counter() - start

    def _cleanup(self) -> None:
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self) -> TritonServer:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def die_with_parent() -> list[str]:
    """A command prefix that makes the server get SIGTERM when the process that started it dies (a SIGKILLed owner
    runs no clean-up): util-linux's `setpriv --pdeathsig` (Linux's PR_SET_PDEATHSIG, kept across exec). Not a
    preexec_fn: that would fork a multi-threaded Python (JAX, onnxruntime) and run Python code in the child."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except (urllib.error.URLError, OSError):
        return 0
