"""The configs of the on-device functions (torch-free, numpy-free): fold-in of an unseen user and explanations."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from edgerec.config import config
from edgerec.errors import ConfigError

Method = Literal["similarity", "exact"]


@config
class FoldInConfig:
    steps: Annotated[int, Field(ge=1, le=100_000)] = 300
    lr: Annotated[float, Field(gt=0.0)] = 0.02
    negatives: Annotated[int, Field(ge=1)] = 4
    l2: Annotated[float, Field(ge=0.0)] = 1e-4
    seed: int = 0
    # a fold-in from given vectors (the user's feature vectors): an L2 pull of this strength / the distinct history
    # items toward them, a prior that keeps what the attributes say while a few items move the vectors and weighs
    # less as the history grows (no effect from the seeded start)
    pull: Annotated[float, Field(ge=0.0)] = 0.0


@config
class ExplainConfig:
    method: Method = "similarity"
    top: Annotated[int, Field(ge=1, le=100)] = 3  # reasons per recommendation
    foldin: FoldInConfig = FoldInConfig()  # the exact explainer's re-fit
    # the exact explainer re-fits the user without each of the history items its first-order estimate ranks
    # highest for a recommended item, this many per recommended item (all of them when the history is no longer)
    exact_candidates: Annotated[int, Field(ge=1, le=1024)] = 16
    # the most negatives a step of the exact explainer's fit draws (L * foldin.negatives below that)
    exact_negatives: Annotated[int, Field(ge=16, le=1_000_000)] = 1024

    def __post_init__(self) -> None:
        if self.method == "exact" and self.exact_candidates < self.top:
            raise ConfigError(
                f"ExplainConfig: exact_candidates ({self.exact_candidates}) must be at least top ({self.top}): "
                "the reasons shown are re-fitted ones"
            )
