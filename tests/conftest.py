"""Shared fixtures: tiny data files written per test, the real ML-1M split when ../shared/data is present."""

from __future__ import annotations

import os
import signal
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
    """A NeuMF-8 checkpoint trained for 4 epochs on SMALL."""
    import torch

    from edgerec import TrainConfig, save_checkpoint, train

    torch.manual_seed(0)
    model, report = train(ds, "neumf", 8, (), False, TrainConfig(epochs=4, batch_size=256, seed=0))
    return save_checkpoint(tmp_path_factory.mktemp("ck") / "neumf", model, ds, report=report)
