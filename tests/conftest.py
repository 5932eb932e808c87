"""Shared fixtures: tiny data files written per test, the real ML-1M split when ../shared/data is present."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("EDGEREC_DATA_DIR", REPO.parent / "shared" / "data"))
ML1M = DATA_DIR / "ml-1m-ncf"
SMALL = "synthetic:users=300,items=180,seed=3"  # the exporters' test data: a few seconds to train
HOLD_CLI = REPO / "tests" / "hold_cli.py"  # edgerec held inside its write (fault injection)
# benchmarks/robustness.py raises these: N times the fuzz examples (random, seeded by --hypothesis-seed instead of
# derandomized) and N kills per interruption test; CI runs the defaults
FUZZ_SCALE = int(os.environ.get("EDGEREC_FUZZ_SCALE", "1"))
INTERRUPT_REPEATS = int(os.environ.get("EDGEREC_INTERRUPT_REPEATS", "1"))


@pytest.fixture
def default_sigint() -> Iterator[None]:
    """Ctrl-C reaches the processes the test starts as in a terminal. Where the tests run with SIGINT ignored (a
    background job of a non-interactive shell), children inherit the ignore and never raise KeyboardInterrupt; a
    handler installed here instead is reset to the default in them at exec (no preexec_fn: JAX's threads are here)."""
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def fuzz(examples: int):  # -> hypothesis.settings
    """Settings of a fuzz test: `examples` derandomized examples in CI (the same ones every run), or FUZZ_SCALE times
    as many random ones; no example database either way, so a run depends on nothing but its seed."""
    from hypothesis import HealthCheck, settings

    return settings(
        max_examples=examples * FUZZ_SCALE,
        deadline=None,
        derandomize=FUZZ_SCALE == 1,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


@pytest.fixture
def ml1m_dir() -> Path:
    if not (ML1M / "ml-1m.test.negative").is_file():
        pytest.skip(
            f"MovieLens-1M NCF split not found at {ML1M} (set EDGEREC_DATA_DIR to the folder holding ml-1m-ncf)"
        )
    return ML1M


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture(scope="session")
def ds():
    from edgerec.data import load_dataset

    return load_dataset(SMALL)


@pytest.fixture(scope="session")
def ckpt(tmp_path_factory, ds) -> Path:
    """The folder of a NeuMF-8 checkpoint trained for 4 epochs on SMALL."""
    import edgerec

    return edgerec.train(ds, edgerec.TrainConfig(epochs=4, seed=0)).save(tmp_path_factory.mktemp("ck") / "neumf")


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """An edgerec wheel built from a clean copy of this checkout (no build/ or egg-info leftovers can leak in)."""
    src = tmp_path_factory.mktemp("src") / "edgerec"
    junk = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "runs")
    shutil.copytree(REPO, src, symlinks=True, ignore=junk)
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(src), "-w", str(out)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (built,) = out.glob("edgerec-*.whl")
    return built


@pytest.fixture(scope="session")
def wheel_env(wheel) -> Path:
    """A device-like environment: edgerec installed from the wheel (not editable) with ai-edge-litert, and no torch.

    The environment (its dependencies from the package index) is cached under $EDGEREC_CACHE (default
    ~/.cache/edgerec) per pyproject.toml; this session's wheel is reinstalled into it every time."""
    from edgerec.io import cache_root

    stamp = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()[:12]
    env = cache_root() / f"wheel-venv-{stamp}"
    python = env / "bin" / "python"
    if not (env / ".complete").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(env)], check=True)
        pip = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", str(wheel), "ai-edge-litert"], capture_output=True, text=True
        )
        if pip.returncode != 0:
            pytest.skip(f"could not install the wheel's dependencies from the package index: {pip.stderr[-300:]}")
        (env / ".complete").touch()
    pip = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(wheel)],
        capture_output=True,
        text=True,
    )
    assert pip.returncode == 0, pip.stderr[-2000:]
    return env


# On SMALL's 300 test users one flipped hit moves HR@10 by 0.0033, so the int8 bound (0.005) admits one flip and the
# weights training produces on a given CPU decide whether a test passes. Tests that are not about the bound itself
# widen it to TINY_HR (the bounds are tested with explicit values of their own).
TINY_HR = "0.02"


def tiny_profile(name: str, folder: Path) -> Path:
    """A shipped profile copied into folder with its HR@10 bound widened to TINY_HR (same name)."""
    import yaml

    from edgerec.profiles.schema import shipped_dir

    data = yaml.safe_load((shipped_dir() / f"{name}.yaml").read_text())
    data["export"]["tolerance"] = {**data["export"].get("tolerance", {}), "hr": float(TINY_HR)}
    folder.mkdir(parents=True, exist_ok=True)
    return write(folder / f"{name}.yaml", yaml.safe_dump(data))
