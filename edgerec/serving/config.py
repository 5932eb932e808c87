"""TritonConfig: how a Triton model repository serves the server models (torch-free; profiles hold one), and
LoadConfig: the closed-loop load on a served repository."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from edgerec.config import config
from edgerec.errors import ConfigError

# python: model.py runs the ONNX through onnxruntime inside Triton's python backend (the backend of the Triton that
# `pip install nvidia-pytriton` brings); onnxruntime / tensorrt_plan: Triton's native backends (a full Triton)
Backend = Literal["python", "onnxruntime", "tensorrt_plan"]
EventName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]


@config
class TritonConfig:
    backend: Backend = "python"
    kind: Literal["cpu", "gpu"] = "cpu"  # instance_group kind
    instances: Annotated[int, Field(ge=1, le=64)] = 1  # model instances (each one onnxruntime session / engine)
    threads: Annotated[int, Field(ge=1, le=256)] = 1  # onnxruntime intra-op threads per instance
    max_batch_size: Annotated[int, Field(ge=1, le=65_536)] = 64  # requests (users) Triton batches into one call
    preferred_batch_sizes: tuple[Annotated[int, Field(ge=1)], ...] = (8, 32)
    max_queue_delay_us: Annotated[int, Field(ge=0, le=1_000_000)] = 100  # how long a request waits for a batch
    k: Annotated[int, Field(ge=1, le=10_000)] = 10  # recommend's list length
    max_candidates: Annotated[int, Field(ge=1, le=1_000_000)] = 1_000  # score's longest candidate list
    served_versions: Annotated[int, Field(ge=1, le=100)] = 1  # version_policy: the newest this many are served
    # the feedback model's event log (edgerec.serving.events)
    event_types: tuple[EventName, ...] = ("impression", "click", "purchase")
    segment_mb: Annotated[int, Field(ge=1, le=4096)] = 16  # a new segment after this many MB ...
    segment_minutes: Annotated[int, Field(ge=1, le=10_080)] = 60  # ... or this many minutes
    max_lag_s: Annotated[int, Field(ge=0)] = 3600  # an event older than the log's newest by more is out of order

    def __post_init__(self) -> None:
        if self.backend == "tensorrt_plan" and self.kind != "gpu":
            raise ConfigError("TritonConfig: the tensorrt_plan backend runs on GPUs: set kind to gpu")
        if "impression" not in self.event_types:
            raise ConfigError("TritonConfig: event_types must include impression (what was shown, for CTR)")
        big = [b for b in self.preferred_batch_sizes if b > self.max_batch_size]
        if big:
            raise ConfigError(
                f"TritonConfig: preferred_batch_sizes must not exceed max_batch_size ({self.max_batch_size}); "
                f"got {big[0]}"
            )


@config
class LoadConfig:
    protocols: tuple[Literal["http", "grpc"], ...] = ("http", "grpc")
    concurrency: tuple[Annotated[int, Field(ge=1, le=1024)], ...] = (1, 8, 32)
    requests: Annotated[int, Field(ge=1, le=10_000_000)] = 2000  # per (protocol, concurrency)
    seed: int = 0  # the request stream: users drawn uniformly with this seed

    def stream(self, n_users: int):  # -> np.ndarray [requests] of user indices
        import numpy as np

        return np.random.default_rng(self.seed).integers(0, n_users, self.requests)
