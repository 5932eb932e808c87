"""The settings of an incremental update and its regression gate (torch-free)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from edgerec.config import config
from edgerec.gates import DropTolerance
from edgerec.limits import MAX_BATCH
from edgerec.model.config import PositiveInt, TrainConfig


@config
class UpdateConfig:
    epochs: PositiveInt = 3  # upper bound of fine-tuning epochs over the new + replay mix
    replay: Annotated[float, Field(ge=0.0)] = 3.0  # old interactions replayed per new one
    lr: Annotated[float, Field(gt=0.0)] = 1e-3
    batch_size: Annotated[int, Field(ge=1, le=MAX_BATCH)] = 256
    negatives: PositiveInt = 4
    patience: PositiveInt = 2
    l2: Annotated[float, Field(ge=0.0)] = 0.0  # L2 on the batch's embeddings during fine-tuning (training: 1e-3)
    # the gate: the largest drop allowed on the parent's test protocol ...
    tolerance: DropTolerance = DropTolerance(hr=0.01)
    # ... and on the new data's holdout, against the grown, un-tuned parent ...
    holdout_tolerance: DropTolerance = DropTolerance(hr=0.01)
    # ... and the least HR@10 on that holdout as a multiple of chance (10 / (1 + 99 negatives) = 0.1): interactions the
    # updated model cannot rank better than this look like noise (a broken id mapping upstream) and are refused
    min_holdout_lift: Annotated[float, Field(ge=0.0)] = 1.5
    seed: int = 0
    # all: every weight fine-tuned (best quality). rows: the MLP and output layer frozen and only the rows of users
    # and items that occur in the new interactions learn, so the phone bundle changes in those items' rows only
    # and can be updated by a small delta (edgerec.updates.delta)
    scope: Literal["all", "rows"] = "all"
    # an event log as the new data (`--new LOG_DIR`): the event types that are positives (impressions never are)
    positives: tuple[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")], ...] = ("click", "purchase")
    # a feature parent: tables (CSV, TSV, Parquet, MovieLens .dat) of the update's new users / items, encoded by the
    # parent's encoders; a new id the table lacks (or any, without a table) has every feature missing
    user_features: str | None = None
    item_features: str | None = None

    def train_config(self) -> TrainConfig:
        return TrainConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            negatives=self.negatives,
            patience=self.patience,
            average_from=0,
            l2=self.l2,
            seed=self.seed,
        )
