"""Training settings (torch-free, so the CLI can describe them without importing torch)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, TypeVar

from edgerec.errors import EdgerecError

# the paper fine-tunes a pre-trained NeuMF with plain SGD; this rate barely moves it (measured on NeuMF-64)
PRETRAINED_SGD_LR = 0.05
# training from scratch averages the weights of epochs 8, 9, ... (chosen in exploratory ML-1M NeuMF-8 runs at lr 1e-3
# and 2e-3; the defaults at five seeds: benchmarks/results/paper_protocol.md); fine-tuning (compression recovery,
# updates) keeps the best single epoch
AVERAGE_FROM = 8
# L2 on the embedding rows a batch reads (a row is penalised as often as it is seen). Chosen on validation NDCG@10
# of ML-1M NeuMF-8 runs at seed 0 (0, 1e-5, 1e-4, 3e-4, 1e-3, 3e-3: best at 1e-3), then checked at four more seeds
# (benchmarks/results/recipe_sweep.md). Fine-tuning (compression recovery, updates) was measured without it: 0 there
L2 = 1e-3


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 20  # upper bound; early stopping may end sooner
    batch_size: int = 256
    lr: float = 2e-3  # the paper: 1e-3; with weight averaging, 2e-3 gave better NDCG@10 in exploratory ML-1M runs
    negatives: int = 4  # sampled negatives per positive, re-sampled every epoch
    l2: float = L2  # L2 penalty on the embeddings seen in a batch
    patience: int = 4  # epochs without validation improvement before stopping
    # from this epoch on, the candidate that is validated (and kept if best) is the running mean of the weights at
    # the end of every epoch since (stochastic weight averaging, Izmailov et al. 2018); 0: the last weights
    average_from: int = AVERAGE_FROM
    seed: int = 0
    optimizer: str = "adam"  # adam | sgd (the paper fine-tunes pre-trained NeuMF with SGD)

    def check(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.negatives < 1 or self.patience < 1:
            raise EdgerecError("epochs, batch size, negatives and patience must be positive integers")
        if self.average_from < 0:
            raise EdgerecError(f"average_from must be an epoch number >= 0 (0: off); got {self.average_from}")
        if not self.lr > 0 or self.l2 < 0:
            raise EdgerecError(f"learning rate must be > 0 and l2 >= 0; got lr={self.lr}, l2={self.l2}")
        if self.optimizer not in ("adam", "sgd"):
            raise EdgerecError(f"optimizer must be adam or sgd; got {self.optimizer!r}")


@dataclass(frozen=True)
class UpdateConfig:
    epochs: int = 3  # upper bound of fine-tuning epochs over the new + replay mix
    replay: float = 3.0  # old interactions replayed per new one
    lr: float = 1e-3
    batch_size: int = 256
    negatives: int = 4
    patience: int = 2
    tolerance_hr: float = 0.01  # the gate: largest HR@10 drop allowed on the parent's test protocol
    # on the new data's holdout: the largest HR@10 drop allowed against the grown, un-tuned parent ...
    holdout_tolerance_hr: float = 0.01
    # ... and the least HR@10 as a multiple of chance (10 / (1 + 99 negatives) = 0.1): interactions the updated
    # model cannot rank better than this look like noise (a broken id mapping upstream) and are refused
    min_holdout_lift: float = 1.5
    seed: int = 0
    # all: every weight fine-tuned (best quality). rows: the MLP and output layer frozen and only the rows of users
    # and items that occur in the new interactions learn, so the phone bundle changes in those items' rows only
    # and can be updated by a small delta (edgerec.runtime.delta)
    scope: str = "all"

    def check(self) -> None:
        if self.scope not in ("all", "rows"):
            raise EdgerecError(f"update scope must be all or rows; got {self.scope!r}")
        if min(self.replay, self.tolerance_hr, self.holdout_tolerance_hr, self.min_holdout_lift) < 0:
            raise EdgerecError("replay, the gate tolerances and the holdout lift must be >= 0")
        self.train_config().check()

    def train_config(self) -> TrainConfig:
        return TrainConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            negatives=self.negatives,
            patience=self.patience,
            average_from=0,
            l2=0.0,
            seed=self.seed,
        )


def fine_tune_config(epochs: int, patience: int = 2) -> TrainConfig:
    """Recovery fine-tuning of an already trained model (compression): the paper's Adam rate, best single epoch,
    no L2."""
    return TrainConfig(epochs=epochs, patience=patience, lr=1e-3, average_from=0, l2=0.0)


C = TypeVar("C", TrainConfig, UpdateConfig)


def from_flags(cls: type[C], args: Any) -> C:
    """cls built from the parsed command-line flags named like its fields (the others keep their defaults)."""
    return cls(**{f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)})
