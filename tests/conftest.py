"""Shared fixtures: tiny data files written per test, the real ML-1M split when ../shared/data is present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("EDGEREC_DATA_DIR", REPO.parent / "shared" / "data"))
ML1M = DATA_DIR / "ml-1m-ncf"
SMALL = "synthetic:users=300,items=180,seed=3"  # the exporters' test data: a few seconds to train


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
