"""The configs of the on-device functions (torch-free, numpy-free): fold-in of an unseen user and explanations."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from edgerec.config import config

Method = Literal["similarity", "exact"]


@config
class FoldInConfig:
    steps: Annotated[int, Field(ge=1, le=100_000)] = 300
    lr: Annotated[float, Field(gt=0.0)] = 0.02
    negatives: Annotated[int, Field(ge=1)] = 4
    l2: Annotated[float, Field(ge=0.0)] = 1e-4
    seed: int = 0


@config
class ExplainConfig:
    method: Method = "similarity"
    top: Annotated[int, Field(ge=1, le=100)] = 3  # reasons per recommendation
    foldin: FoldInConfig = FoldInConfig()  # the exact explainer's re-fit
