"""Shared fixtures: tiny data files written per test, the real ML-1M split when ../shared/data is present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("EDGEREC_DATA_DIR", REPO.parent / "shared" / "data"))
ML1M = DATA_DIR / "ml-1m-ncf"


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
