"""BenchConfig: how an artifact's latency is measured (torch-free, numpy-free)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from edgerec.config import config
from edgerec.limits import MAX_BATCH

Count = Annotated[int, Field(ge=0)]


@config
class BenchConfig:
    # python: the artifact's own runtime package in this process; web: a phone bundle in the web client (LiteRT.js
    # in headless Chromium, edgerec.apps.browser)
    client: Literal["python", "web"] = "python"
    threads: Annotated[int, Field(ge=1, le=256)] = 1
    warmup: Count = 20  # calls before measuring ...
    warmup_s: Annotated[float, Field(ge=0.0)] = 0.2  # ... and at least this long (caches, CPU frequency, lazy init)
    min_time_s: Annotated[float, Field(ge=0.0)] = 1.0  # measure each case for at least this long ...
    min_calls: Annotated[int, Field(ge=1)] = 50  # ... and at least this many calls
    max_calls: Annotated[int, Field(ge=1)] = 100_000
    buckets: tuple[
        Annotated[int, Field(ge=1, le=MAX_BATCH)], ...
    ] = ()  # default: the artifact's (dynamic: 1, 1000, catalog)
    also: tuple[
        Annotated[int, Field(ge=1, le=MAX_BATCH)], ...
    ] = ()  # batches measured in addition (e.g. the one a budget names)
    user: Count = 0  # the user whose catalog is scored
