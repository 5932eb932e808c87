"""Training settings: the architecture to train and how (torch-free, so the CLI can describe them without torch)."""

from __future__ import annotations

import math
from dataclasses import field, replace
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

# The automatic batch and learning rate (batch_size / lr None): about AUTO_STEPS optimizer steps per epoch, the batch
# a power of two in [256, AUTO_MAX_BATCH], the rate 2e-3 x sqrt(batch / 256) (Adam's square-root rule). On ML-1M
# (4.9 M samples per epoch) that is 16,384 and 1.6e-2: HR@10 0.6927 / NDCG@10 0.4135 in 100 s on one thread
# against 0.6927 / 0.4157 in ~11 min at 256 / 2e-3 on the same host (benchmarks/results/training_speed.md). Small
# data keeps 256 / 2e-3. Batches above 16,384 were not measured, hence the cap.
AUTO_STEPS, AUTO_MIN_BATCH, AUTO_MAX_BATCH, BASE_LR = 300, 256, 16_384, 2e-3


# the share of training samples whose id embeddings are zeroed (per side), so that the feature path alone learns to
# serve ids it has never seen (cold users and items). A trade-off measured on ML-1M NeuMF-8
# (benchmarks/results/features.md): 0 keeps warm quality (above ids only) but leaves cold items below chance; 0.05
# serves cold items at 2.9 times chance at a warm cost of 0.0002 / 0.0026 HR@10 / NDCG@10; 0.1 costs 0.005 / 0.009
# and serves cold items no better; 0.25 costs more
ID_DROPOUT = 0.05
# the weight of FeaturesConfig.feature_loss: off. Measured on ML-1M NeuMF-8 (benchmarks/results/cold_item_settings.md):
# 0.5 (id dropout 0.05) and 1.0 (id dropout 0) rank cold items worse than id dropout alone (Recall@10 0.1006 and
# 0.0860 vs 0.1167), and 0.5 costs 0.0098 warm HR@10
FEATURE_LOSS = 0.0
# the cold fits after training (edgerec.model.cold_fit): at most this many epochs of one side's bags alone, the model
# frozen and every known pair's score unchanged; 0: none. Measured on ML-1M NeuMF-8 over several holdout seeds
# (benchmarks/results/cold_start_seeds.md)
COLD_ITEM_EPOCHS = 3
COLD_USER_EPOCHS = 3


# categorical: one value per row; multi: several values in one field ("Drama|Comedy"); numeric: a number, bucketed
# by quantiles or scaled; text: short text as hashed word unigrams and bigrams; ignore: left out
ColumnKind = Literal["categorical", "multi", "numeric", "text", "ignore"]


@config
class FeatureConfig:
    """How a feature table (CSV, TSV, Parquet, MovieLens users.dat / movies.dat) becomes embedding-bag input."""

    # the column holding the original user or item id; None: the first of user / user_id / userId / id (item /
    # item_id / itemId / movie_id / movieId / id for items) the table has
    id_column: str | None = None
    # declared kinds by column name; the other columns' kinds are inferred (edgerec.data.features.infer_kind)
    kinds: dict[str, ColumnKind] = field(default_factory=dict)
    separator: Annotated[str, Field(min_length=1)] = "|"  # between the values of a multi-valued field
    numeric: Literal["quantiles", "scaled"] = "quantiles"  # numbers as quantile buckets, or one z-scored value
    quantiles: Annotated[int, Field(ge=2, le=1024)] = 10  # buckets of a numeric column (fewer when values repeat)
    hash_buckets: Annotated[int, Field(ge=1, le=1 << 20)] = 1024  # per text column
    max_tokens: Annotated[int, Field(ge=1, le=1024)] = 32  # unigrams + bigrams kept per text value
    # categories seen fewer times in the training rows share the column's reserved index with missing and unknown
    # values, so that reserved row learns what an unseen category should look like
    min_count: Annotated[int, Field(ge=1)] = 2


@config
class FeaturesConfig:
    """User and item feature tables: each side's representation in both towers becomes its id embedding plus an
    embedding bag over its feature values (edgerec.model.features), trained with id dropout."""

    user: str | None = None  # user feature table (CSV, TSV, Parquet, users.dat), keyed by original user id
    item: str | None = None  # item feature table (CSV, TSV, Parquet, movies.dat), keyed by original item id
    user_table: FeatureConfig = field(default_factory=FeatureConfig)
    item_table: FeatureConfig = field(default_factory=FeatureConfig)
    id_dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = ID_DROPOUT
    # the items' own id dropout (None: id_dropout for both sides). Measured on ML-1M NeuMF-8 (benchmarks/results/
    # cold_item_settings.md): items 0.2 / users 0.05, 0.15 / 0, 0.05 / 0.1 all rank cold items worse than 0.05 for both
    item_id_dropout: Annotated[float, Field(ge=0.0, lt=1.0)] | None = None
    # the weight of the feature-only loss: every batch also scored once per side with that side's id embeddings left
    # out (its features alone), that BCE added times this weight; 0: none (id dropout alone trains the feature path)
    feature_loss: Annotated[float, Field(ge=0.0, le=10.0)] = FEATURE_LOSS
    # with item (user) features and the implicit objective: the cold fit's epochs for that side (0: none)
    cold_item_epochs: Annotated[int, Field(ge=0, le=50)] = COLD_ITEM_EPOCHS
    cold_user_epochs: Annotated[int, Field(ge=0, le=50)] = COLD_USER_EPOCHS

    def __post_init__(self) -> None:
        if self.user is None and self.item is None:
            raise ConfigError("FeaturesConfig: name a user or an item feature table (or both)")


def auto_batch(samples_per_epoch: int) -> int:
    target = max(1.0, samples_per_epoch / AUTO_STEPS)
    return int(min(AUTO_MAX_BATCH, max(AUTO_MIN_BATCH, 2 ** round(math.log2(target)))))


def auto_lr(batch: int) -> float:
    return BASE_LR * math.sqrt(batch / AUTO_MIN_BATCH)


@config
class TrainConfig:
    model: Literal["gmf", "mlp", "neumf"] = "neumf"
    factors: PositiveInt = 8  # predictive factors
    layers: tuple[PositiveInt, ...] = ()  # MLP input size then hidden sizes; () = the paper's 8f, 4f, 2f, f
    pretrain: bool = False  # NeuMF initialised from separately trained GMF and MLP (the paper's pre-training)
    epochs: PositiveInt = 20  # upper bound; early stopping may end sooner
    # None = automatic (auto_batch: ~300 steps per epoch, 256..16,384); the paper: 256
    batch_size: Annotated[int, Field(ge=1, le=MAX_BATCH)] | None = None
    # None = automatic (auto_lr: 2e-3 at batch 256, x sqrt(batch / 256)); the paper: 1e-3; 2e-3 with weight averaging
    lr: Annotated[float, Field(gt=0.0)] | None = None
    negatives: PositiveInt = 4  # sampled negatives per positive, re-sampled every epoch (implicit objective only)
    l2: Annotated[float, Field(ge=0.0)] = L2  # L2 penalty on the embeddings seen in a batch
    patience: PositiveInt = 4  # epochs without validation improvement before stopping
    # from this epoch on, the candidate that is validated (and kept if best) is the running mean of the weights at
    # the end of every epoch since (stochastic weight averaging, Izmailov et al. 2018); 0: the last weights
    average_from: Annotated[int, Field(ge=0)] = AVERAGE_FROM
    seed: int = 0
    # the paper fine-tunes pre-trained NeuMF with SGD. "lazy-adam": torch's SparseAdam on the embedding tables (only
    # the rows a batch touched move), dense Adam for the layers; one process only. Measured slower per step than
    # dense Adam at every table size up to 1 M x 1 M (benchmarks/results/optimizer_step.md): not the default.
    # "adagrad": torch's Adagrad on every parameter; it keeps no moments, so a row a batch did not read (an exactly
    # zero gradient) does not move: it is lazy on the tables as it is, and works with L2, row masks and nproc.
    # Measured on ML-1M beside Adam in benchmarks/results/ratings.md
    optimizer: Literal["adam", "sgd", "lazy-adam", "adagrad"] = "adam"
    # "implicit": every interaction a positive, sampled negatives, BCE, ranked (HR / NDCG). "rating": the same
    # network regresses the rating column with a squared-error loss on a seeded 90/10 split of the rated rows
    # (edgerec.data.ratings), reported as RMSE / MAE; the model's output is then a predicted rating, not a logit
    objective: Literal["implicit", "rating"] = "implicit"
    # dropout after every hidden layer of the MLP tower while training (identity in evaluation: the exported graph
    # is the same); 0: none
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    # processes on torch.distributed (edgerec.model.distributed): each its own shard, gradients averaged per step
    nproc: Annotated[int, Field(ge=1, le=1024)] = 1
    # user and item features beside the ids (None: ids only)
    features: FeaturesConfig | None = None

    def __post_init__(self) -> None:
        if self.pretrain and self.model != "neumf":
            raise ConfigError("TrainConfig: pretrain applies to neumf only (it initialises NeuMF from GMF and MLP)")
        if self.nproc > 1 and self.pretrain:
            raise ConfigError("TrainConfig: nproc > 1 trains from scratch; pretrain runs in one process")
        if self.nproc > 1 and self.optimizer == "lazy-adam":
            raise ConfigError("TrainConfig: lazy-adam trains in one process (its row gradients are not all-reduced)")
        if self.batch_size is not None and self.nproc > self.batch_size:
            raise ConfigError(f"TrainConfig: batch_size {self.batch_size} cannot be split over {self.nproc} processes")
        if len(self.layers) == 1:
            raise ConfigError("TrainConfig: layers is the MLP input size then at least one hidden size, e.g. 64,32")
        if self.dropout and self.model == "gmf":
            raise ConfigError("TrainConfig: dropout applies to the MLP tower; gmf has none (use mlp or neumf)")
        if self.objective == "rating" and (self.pretrain or self.nproc > 1 or self.features is not None):
            raise ConfigError(
                "TrainConfig: the rating objective trains from scratch in one process, ids only "
                "(no pretrain, nproc 1, no features)"
            )


def resolved(cfg: TrainConfig, train_positives: int) -> TrainConfig:
    """cfg with the automatic batch size and learning rate made concrete for this many training positives (the
    data's training interactions; the rating objective samples no negatives, so its epoch is counted as that many
    samples: 994,169 on ML-1M, batch 4,096)."""
    per_epoch = train_positives * (1 + cfg.negatives) if cfg.objective == "implicit" else train_positives
    batch = cfg.batch_size or auto_batch(per_epoch)
    return replace(cfg, batch_size=batch, lr=cfg.lr or auto_lr(batch))


def fine_tune_config(epochs: int, patience: int = 2) -> TrainConfig:
    """Recovery fine-tuning of an already trained model (compression): the paper's batch and Adam rate (the recipes
    were measured with them), best single epoch, no L2."""
    return TrainConfig(epochs=epochs, patience=patience, batch_size=256, lr=1e-3, average_from=0, l2=0.0)
