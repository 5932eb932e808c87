"""ExperimentConfig: an experiment's mode and split, and the statistics of its report (torch-free, numpy-free)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from edgerec.config import config
from edgerec.errors import ConfigError

Share = Annotated[float, Field(gt=0.0, lt=1.0)]


@config
class ExperimentConfig:
    # ab: each user's arm answers them; shadow: the live version answers everyone, the candidate is only measured
    mode: Literal["ab", "shadow"] = "ab"
    traffic: Share = 0.5  # the share of users assigned to the candidate (arm B)
    salt: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")] = "edgerec"  # the assignment hash's key
    metric: Literal["ctr", "conversion"] = "ctr"
    alpha: Annotated[float, Field(gt=0.0, le=0.2)] = 0.05  # of the sequential test and the intervals
    mde: Annotated[float, Field(gt=0.0, le=10.0)] = 0.05  # minimum detectable effect, relative to the control's rate
    power: Annotated[float, Field(ge=0.5, lt=1.0)] = 0.8  # of the sample size for `mde`
    srm_alpha: Annotated[float, Field(gt=0.0, le=0.05)] = 0.001  # a sample-ratio p-value below this flags the split
    # the mSPRT's mixing standard deviation, in the metric's units; None: mde x the pooled rate at each look
    mixture_sd: Annotated[float, Field(gt=0.0)] | None = None
    look_s: Annotated[int, Field(ge=1)] = 3600  # the test is evaluated at every multiple of this many seconds
    # shadow mode: batches of requests waiting for the candidate; beyond, requests are not shadowed (never delayed)
    shadow_queue: Annotated[int, Field(ge=1, le=100_000)] = 64

    def __post_init__(self) -> None:
        if self.srm_alpha > self.alpha:
            raise ConfigError("ExperimentConfig: srm_alpha must not exceed alpha")
