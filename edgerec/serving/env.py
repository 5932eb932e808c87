"""The server's own environment: a venv with nvidia-pytriton (whose wheel carries a real `tritonserver` binary with
the python backend), numpy < 2 and onnxruntime, created and checked by edgerec (`edgerec serve --setup`).

Why its own: nvidia-pytriton pins numpy 1.26, which would downgrade numpy under litert-torch in the export
environment; and Triton's python backend run against numpy 2 loaded a model READY but answered with empty outputs.
Why LD_LIBRARY_PATH: the python-backend stub links libpython3.11; a venv of another Python 3.11 build than the
system's fails to load models (`'_thread.RLock' object has no attribute '_recursion_count'`) unless the stub finds
the venv interpreter's own libpython (its sysconfig LIBDIR) first.

The requirements are the `serve` extra of edgerec's own metadata (pyproject.toml), read with importlib.metadata.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgerec.errors import EdgerecError
from edgerec.io import atomic_dir, build_lock, cache_root, write_json

STAMP = "edgerec-serve-env.json"
SETUP_HINT = (
    "run `edgerec serve --setup` (a venv under ~/.cache/edgerec/serve-env: nvidia-pytriton, numpy<2, onnxruntime; "
    "~450 MB, ~3 min)"
)
_CHECK = (
    "import json, sys, sysconfig, numpy, onnxruntime, pytriton, pathlib; "
    "print(json.dumps({'python': sys.version.split()[0], 'numpy': numpy.__version__, "
    "'onnxruntime': onnxruntime.__version__, 'libdir': sysconfig.get_config_var('LIBDIR'), "
    "'pytriton': str(pathlib.Path(pytriton.__file__).parent)}))"
)


def requirements() -> list[str]:
    """The `serve` extra of the installed edgerec, e.g. ['nvidia-pytriton>=0.7,<0.8', 'numpy>=1.26,<2', ...]."""
    from importlib.metadata import requires

    from packaging.requirements import Requirement

    out = []
    for line in requires("edgerec") or []:
        req = Requirement(line)
        if (
            req.marker is not None
            and req.marker.evaluate({"extra": "serve"})
            and not req.marker.evaluate({"extra": ""})
        ):
            req.marker = None
            out.append(str(req))
    if not out:
        raise EdgerecError("edgerec's metadata has no `serve` extra: reinstall edgerec")
    return out


def default_path() -> Path:
    return Path(os.environ.get("EDGEREC_SERVE_ENV", cache_root() / "serve-env"))


@dataclass(frozen=True)
class ServeEnv:
    root: Path
    info: dict

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def triton(self) -> Path:
        return self.root / "triton"  # pytriton's tritonserver tree with the stub for this Python in place

    @property
    def tritonserver(self) -> Path:
        return self.triton / "bin" / "tritonserver"

    def environ(self) -> dict[str, str]:
        """The server's environment: Triton's bundled libraries and this interpreter's libpython first, the venv's
        bin on PATH (the python backend's stub imports numpy and onnxruntime from it)."""
        env = dict(os.environ)
        libs = [str(Path(self.info["pytriton"]).parent / "nvidia_pytriton.libs"), str(self.info["libdir"])]
        env["LD_LIBRARY_PATH"] = ":".join([*libs, *filter(None, [env.get("LD_LIBRARY_PATH")])])
        env["PATH"] = f"{self.root / 'bin'}:{env.get('PATH', '')}"
        env.pop("PYTHONPATH", None)  # nothing of the export environment (numpy 2) may reach the stub
        env.pop("PYTHONHOME", None)
        return env


def find(path: Path | None = None) -> ServeEnv:
    """The set-up environment, or a one-line error saying how to create it."""
    root = Path(path) if path else default_path()
    stamp = root / STAMP
    if not stamp.is_file():
        raise EdgerecError(f"Triton is not installed for edgerec ({root} has no server environment): {SETUP_HINT}")
    try:
        info = json.loads(stamp.read_text())
    except (OSError, ValueError):
        raise EdgerecError(f"{stamp}: unreadable; {SETUP_HINT}") from None
    env = ServeEnv(root, info)
    if not env.tritonserver.is_file() or not env.python.exists():
        raise EdgerecError(f"{root}: the server environment is incomplete; {SETUP_HINT}")
    return env


def setup(path: Path | None = None, say: Callable[[str], None] = print, python: str = sys.executable) -> ServeEnv:
    """Create (or re-create) the server environment: venv + the serve extra, Triton's tree, a check."""
    root = Path(path) if path else default_path()
    reqs = requirements()
    start = time.perf_counter()
    with build_lock(root), atomic_dir(root) as tmp:
        say(f"server environment: creating a venv at {root}")
        _run([python, "-m", "venv", str(tmp)], "creating the venv")
        say(f"server environment: pip install {' '.join(reqs)}")
        _run([str(tmp / "bin" / "python"), "-m", "pip", "install", "-q", *reqs], "installing the serve extra")
        info = json.loads(_run([str(tmp / "bin" / "python"), "-c", _CHECK], "checking the environment"))
        if int(info["numpy"].split(".")[0]) >= 2:
            raise EdgerecError(f"the server environment got numpy {info['numpy']}; Triton's python backend needs < 2")
        dist = Path(info["pytriton"]) / "tritonserver"
        stub = dist / "python_backend_stubs" / ".".join(info["python"].split(".")[:2]) / "triton_python_backend_stub"
        if not stub.is_file():
            raise EdgerecError(f"nvidia-pytriton has no python-backend stub for Python {info['python']}")
        shutil.copytree(dist, tmp / "triton", ignore=shutil.ignore_patterns("python_backend_stubs", "__pycache__"))
        shutil.copy2(stub, tmp / "triton" / "backends" / "python" / "triton_python_backend_stub")
        info["pytriton"] = str(root / Path(info["pytriton"]).relative_to(tmp))  # where it is after the rename
        info |= {"requirements": reqs, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        write_json(tmp / STAMP, info)
    say(f"server environment ready in {time.perf_counter() - start:.0f} s: numpy {info['numpy']}, "
        f"onnxruntime {info['onnxruntime']}, Python {info['python']}")  # fmt: skip
    return find(root)


def _run(cmd: list[str], what: str) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as e:
        raise EdgerecError(f"{what}: cannot run {cmd[0]} ({e.strerror})") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise EdgerecError(f"{what} failed (exit {done.returncode}): {last}")
    return done.stdout
