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


# the item-table formats (BundleOptions.item_table) each runtime of the bundle runs, as tested: ai-edge-litert in
# tests/test_item_tables.py; LiteRT.js (the web client) in tests/test_web_app.py
TABLE_FORMATS = {"ai-edge-litert": ("int8", "int4", "pq"), "LiteRT.js": ("int8", "int4", "pq")}


def check_table_format(item_table: str, runtime: str) -> None:
    """A one-line error when `runtime` cannot run the item-table format (auto: when it runs none but int8)."""
    runs = TABLE_FORMATS[runtime]
    if (item_table not in runs and item_table != "auto") or (item_table == "auto" and runs == ("int8",)):
        raise ConfigError(
            f"item table {item_table}: the {runtime} runtime runs the item-table formats {', '.join(runs)}; export "
            f"with item_table {runs[-1]} for it"
        )
