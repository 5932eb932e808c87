"""The record of every tritonserver edgerec starts, so that a start after its owner was killed takes the ports back.

When `edgerec serve` is SIGKILLed (a supervisor's kill -9, the OOM killer), its tritonserver gets SIGTERM from its
parent-death signal and begins Triton's graceful exit, which waits up to --exit-timeout-secs for open HTTP
connections: under load the orphan held its ports for about 13 s, and a supervisor's immediate restart failed on
them. So each server is recorded in $EDGEREC_CACHE/run/tritonserver-PID.json (default ~/.cache/edgerec/run): its
pid and start time, its owner's pid and start time, host, ports, repository, event-log folder, temporary folder
and shared-memory prefix. A start first looks for records whose owner is gone and whose server holds one of its
ports (or its event log): that server is stopped (SIGTERM to its process group, SIGKILL after GRACE_S) and the
start goes on once the ports are free, saying so. A record is trusted only while its pid is the same process (the
start time in /proc) and that process is a tritonserver with the recorded repository and port on its command line;
a server whose owner lives is never touched. Records of servers that are gone are removed with what their server
left behind: its temporary folder; the python backend's shared-memory regions, which Triton leaves in /dev/shm when
it is killed or its exit timeout runs out; and backend stubs that outlived it (a stub whose server exited under load
was seen hanging for minutes, and the feedback model's stub holds the event log's writer lock).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from edgerec.errors import EdgerecError
from edgerec.io import cache_root, write_json

GRACE_S = 1.0  # in-flight requests finish well within this; Triton's own drain waits for idle keep-alive clients
SHM = Path("/dev/shm")
_SHM_PREFIX = re.compile(r"^edgerec\d+x[0-9a-f]+$")
_WORKDIR = re.compile(r"^edgerec-serve-[A-Za-z0-9_]+$")
_ANY_HOST = ("0.0.0.0", "::", "")


def run_dir() -> Path:
    return cache_root() / "run"


def start_time(pid: int) -> int | None:
    """The process's start time (clock ticks since boot, /proc/PID/stat), None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # after the command name, which may hold spaces
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


@dataclass(frozen=True)
class Record:
    pid: int  # the tritonserver (leader of its own process group, with the backend's stubs)
    started: int
    owner: int  # the process that started it and would stop it
    owner_started: int
    host: str
    http_port: int
    grpc_port: int
    repo: str
    log_dir: str | None
    workdir: str
    shm_prefix: str

    @property
    def path(self) -> Path:
        return run_dir() / f"tritonserver-{self.pid}.json"

    @property
    def ports(self) -> tuple[int, int]:
        return self.http_port, self.grpc_port

    def server_alive(self) -> bool:
        return start_time(self.pid) == self.started

    def owner_alive(self) -> bool:
        return start_time(self.owner) == self.owner_started

    def is_its_server(self) -> bool:
        """The pid is still the tritonserver that was recorded (never signal a reused pid)."""
        if not self.server_alive():
            return False
        try:
            argv = Path(f"/proc/{self.pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            return False
        return (
            Path(argv[0]).name == "tritonserver"
            and f"--model-repository={self.repo}" in argv
            and f"--http-port={self.http_port}" in argv
        )

    def holds(self, host: str, ports: tuple[int, ...], log_dir: str | None) -> bool:
        same_host = self.host == host or self.host in _ANY_HOST or host in _ANY_HOST
        return (same_host and bool(set(self.ports) & set(ports))) or (log_dir is not None and self.log_dir == log_dir)

    def describe(self) -> str:
        return f"tritonserver pid {self.pid} serving {self.repo} on {self.host}:{self.http_port}/{self.grpc_port}"


def save(record: Record) -> None:
    """Record a started server; best effort (a start does not fail because the record cannot be written)."""
    with contextlib.suppress(OSError):
        record.path.parent.mkdir(parents=True, exist_ok=True)
        write_json(record.path, asdict(record))


def records() -> list[Record]:
    out = []
    folder = run_dir()
    for path in sorted(folder.glob("tritonserver-*.json")) if folder.is_dir() else []:
        try:
            rec = Record(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue  # unreadable, or not a record of this edgerec: left alone
        if rec.path == path:
            out.append(rec)
    return out


def forget(record: Record) -> None:
    """Remove the record and what its (stopped) server left behind."""
    for pid in _stubs(record):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    remove_shm(record.shm_prefix)
    workdir = Path(record.workdir)
    if _WORKDIR.match(workdir.name):
        shutil.rmtree(workdir, ignore_errors=True)
    with contextlib.suppress(OSError):
        record.path.unlink()


def _stubs(record: Record) -> list[int]:
    """The live processes of the server's group that are its python-backend stubs (their command line names the
    server's shared-memory prefix)."""
    if not _SHM_PREFIX.match(record.shm_prefix) or not Path("/proc").is_dir():
        return []
    out = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            group = int((proc / "stat").read_text().rsplit(")", 1)[-1].split()[2])
            argv = [a.decode(errors="replace") for a in (proc / "cmdline").read_bytes().split(b"\0")]
        except (OSError, IndexError, ValueError):
            continue
        stub = Path(argv[0]).name == "triton_python_backend_stub"
        if group == record.pid and stub and any(a.startswith(record.shm_prefix) for a in argv[1:]):
            out.append(int(proc.name))
    return out


def remove_shm(prefix: str) -> None:
    """The python backend's shared-memory regions of a server that is gone (Triton removes them only on a clean
    exit within its exit timeout)."""
    if _SHM_PREFIX.match(prefix) and SHM.is_dir():
        for region in SHM.glob(f"{prefix}*"):
            with contextlib.suppress(OSError):
                region.unlink()


def take_over(host: str, ports: tuple[int, ...], log_dir: str | None, say: Callable[[str], None]) -> bool:
    """Stop the orphaned servers (owner gone) that hold one of `ports` or the event log `log_dir`, and forget the
    records of servers that are gone; whether a server was stopped (its ports may take a moment to free)."""
    stopped = False
    for rec in records():
        if rec.owner_alive() and rec.server_alive():
            continue
        if rec.is_its_server():
            if not rec.holds(host, ports, log_dir):
                continue  # an orphan elsewhere: its parent-death signal is stopping it
            say(f"waiting for the previous {rec.describe()} to stop (its owner, pid {rec.owner}, is gone)")
            took = _stop(rec)
            say(f"previous tritonserver pid {rec.pid} stopped in {took:.1f} s")
            stopped = True
        elif rec.owner_alive():
            continue  # its owner has yet to notice that its server is gone, and will clean up
        forget(rec)
    return stopped


def holder(host: str, port: int) -> str:
    """Who holds a port, as far as the records know: ' by tritonserver pid N ...' or ''."""
    for rec in records():
        if rec.server_alive() and rec.holds(host, (port,), None):
            return f" by {rec.describe()} (started by pid {rec.owner})"
    return ""


def _stop(rec: Record) -> float:
    start = time.perf_counter()
    for sig, wait in ((signal.SIGTERM, GRACE_S), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(rec.pid, sig)  # the server leads its group: its backend stubs go too
        except ProcessLookupError:
            break
        except PermissionError:
            raise EdgerecError(f"the previous {rec.describe()} is another user's: stop it, then retry") from None
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and rec.server_alive():
            time.sleep(0.05)
        if not rec.server_alive():
            break
    else:
        raise EdgerecError(f"the previous {rec.describe()} did not stop after SIGKILL")
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(rec.pid, signal.SIGKILL)  # stubs that outlived their server
    return time.perf_counter() - start
