"""Training settings: the architecture to train and how (torch-free, so the CLI can describe them without torch)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from edgerec.config import config
from edgerec.errors import ConfigError
from edgerec.limits import MAX_BATCH

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

PositiveInt = Annotated[int, Field(ge=1)]


@config
class TrainConfig:
    model: Literal["gmf", "mlp", "neumf"] = "neumf"
    factors: PositiveInt = 8  # predictive factors
    layers: tuple[PositiveInt, ...] = ()  # MLP input size then hidden sizes; () = the paper's 8f, 4f, 2f, f
    pretrain: bool = False  # NeuMF initialised from separately trained GMF and MLP (the paper's pre-training)
    epochs: PositiveInt = 20  # upper bound; early stopping may end sooner
    batch_size: Annotated[int, Field(ge=1, le=MAX_BATCH)] = 256
    lr: Annotated[float, Field(gt=0.0)] = 2e-3  # the paper: 1e-3; 2e-3 with weight averaging (exploratory ML-1M runs)
    negatives: PositiveInt = 4  # sampled negatives per positive, re-sampled every epoch
    l2: Annotated[float, Field(ge=0.0)] = L2  # L2 penalty on the embeddings seen in a batch
    patience: PositiveInt = 4  # epochs without validation improvement before stopping
    # from this epoch on, the candidate that is validated (and kept if best) is the running mean of the weights at
    # the end of every epoch since (stochastic weight averaging, Izmailov et al. 2018); 0: the last weights
    average_from: Annotated[int, Field(ge=0)] = AVERAGE_FROM
    seed: int = 0
    optimizer: Literal["adam", "sgd"] = "adam"  # the paper fine-tunes pre-trained NeuMF with SGD
    # processes on torch.distributed (edgerec.model.distributed): each its own shard, gradients averaged per step
    nproc: Annotated[int, Field(ge=1, le=1024)] = 1

    def __post_init__(self) -> None:
        if self.pretrain and self.model != "neumf":
            raise ConfigError("TrainConfig: pretrain applies to neumf only (it initialises NeuMF from GMF and MLP)")
        if self.nproc > 1 and self.pretrain:
            raise ConfigError("TrainConfig: nproc > 1 trains from scratch; pretrain runs in one process")
        if self.nproc > self.batch_size:
            raise ConfigError(f"TrainConfig: batch_size {self.batch_size} cannot be split over {self.nproc} processes")
        if len(self.layers) == 1:
            raise ConfigError("TrainConfig: layers is the MLP input size then at least one hidden size, e.g. 64,32")


def fine_tune_config(epochs: int, patience: int = 2) -> TrainConfig:
    """Recovery fine-tuning of an already trained model (compression): the paper's Adam rate, best single epoch,
    no L2."""
    return TrainConfig(epochs=epochs, patience=patience, lr=1e-3, average_from=0, l2=0.0)
