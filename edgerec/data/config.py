"""Columns: the column names of CSV / Parquet input (numpy-free and pydantic-free: the CLI parses them before
loading anything, and the legacy tflite-runtime environment, which has neither, imports the data package)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Columns:
    """Column names for CSV / Parquet input."""

    user: str = "user"
    item: str = "item"
    timestamp: str | None = "timestamp"  # used when present
    rating: str | None = "rating"  # kept when present; the label of the rating objective only
