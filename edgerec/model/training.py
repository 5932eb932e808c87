"""Training: binary cross-entropy with sampled negatives (the implicit objective) or squared error on the rating
column (the rating objective), model selection on a validation split carved from train.

Implicit: the validation split is leave-one-out on the training interactions (never the test set); the epoch with
the best validation NDCG@10 is kept. Rating: the rated rows are split by edgerec.data.ratings (test, validation,
train); the epoch with the lowest validation RMSE is kept. Either way training stops after `patience` epochs without
improvement. The samples come from edgerec.model.batches, the embedding gradients and optimizers from
edgerec.model.row_grads, and what the ranks of a process group share from edgerec.model.collective.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from edgerec.data.ratings import split_ratings
from edgerec.data.split import Dataset, leave_one_out, positive_keys
from edgerec.errors import EdgerecError
from edgerec.metrics import evaluate, global_mean_scorer, hr_ndcg, item_pop_scorer, rating_errors, sampled_ranks
from edgerec.model.batches import Batch, epoch_batches
from edgerec.model.cold_fit import ColdFit, fit_cold
from edgerec.model.collective import average_gradients, fewest, rank_and_world
from edgerec.model.config import PRETRAINED_SGD_LR, TrainConfig, resolved
from edgerec.model.features import FeatureNCF, pretrained_features
from edgerec.model.features import build as build_features
from edgerec.model.ncf import NCF, NCFArch, neumf_from_pretrained
from edgerec.model.row_grads import RowGrads, add_l2_grad, optimizers

if TYPE_CHECKING:
    from torch.distributed import ProcessGroup

log = logging.getLogger(__name__)


Progress = Callable[[str, int, int, dict], None]
ExtraLoss = Callable[[NCF, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class EpochLog:
    epoch: int
    loss: float
    seconds: float
    samples_per_s: float
    val_hr: float | None = None  # implicit objective: validation HR@10 / NDCG@10
    val_ndcg: float | None = None
    val_rmse: float | None = None  # rating objective: validation RMSE / MAE
    val_mae: float | None = None

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class TrainResult:
    model: NCF
    best_epoch: int
    history: list[EpochLog]
    seconds: float
    samples_per_s: float  # mean training throughput (excludes validation)

    def summary(self) -> dict:
        return {
            "best_epoch": self.best_epoch,
            "seconds": round(self.seconds, 2),
            "samples_per_s": round(self.samples_per_s),
            "history": [h.to_json() for h in self.history],
        }


class Callback:
    """A hook for measurements that fit itself has no use for (a benchmark scoring every epoch on the test set).
    The methods do nothing here, so a callback overrides only the ones it needs."""

    def on_epoch_end(self, epoch: int, trained: NCF, candidate: NCF) -> None:
        """After the epoch's validation: the trained weights, and the candidate that was validated (the running
        average of the weights from cfg.average_from on, else `trained` itself)."""


@dataclass(frozen=True, eq=False)
class FitOptions:
    """What a caller changes about fit beyond the TrainConfig: the recipes (compression recovery, distillation, an
    update's fine-tuning) share one loop and differ only in these.

    stage: the name progress reports. progress(stage, done, total, info): called every few hundred batches.
    extra_loss(model, users, items, labels, logits): added to every batch's BCE loss (distillation).
    known: the positive keys negatives must avoid when ds.train is a sample of a larger set (an update's replay
    mix); None: the positives of ds.train.
    row_mask: {table name: [rows] bool}: only these rows of the tables learn (an update that must leave every other
    row byte-identical); parameters with requires_grad False stay frozen as usual.
    val: the caller's validation set (then all of ds.train is trained on); None: carved from ds.train.
    """

    stage: str = "train"
    progress: Progress | None = None
    extra_loss: ExtraLoss | None = None
    known: np.ndarray | None = None
    row_mask: dict[str, torch.Tensor] | None = None
    val: Dataset | None = None
    callbacks: tuple[Callback, ...] = ()


def torch_scorer(model: NCF, batch: int = 1 << 18) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Wrap a model as a numpy scorer for edgerec.metrics."""

    def score(users: np.ndarray, items: np.ndarray) -> np.ndarray:
        model.eval()
        out = []
        with torch.inference_mode():
            for s in range(0, len(users), batch):
                u = torch.from_numpy(np.ascontiguousarray(users[s : s + batch], dtype=np.int64))
                i = torch.from_numpy(np.ascontiguousarray(items[s : s + batch], dtype=np.int64))
                out.append(model(u, i).numpy())  # logits: same ranking as sigmoid scores, no saturation ties
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)

    return score


def validation_split(ds: Dataset, seed: int) -> Dataset:
    """Leave-one-out on the train interactions: the trainer's own held-out set for model selection."""
    return leave_one_out(ds.train, seed=seed + 1, name=f"{ds.name}/validation")


def fit(
    model: NCF,
    ds: Dataset,
    cfg: TrainConfig = TrainConfig(),
    options: FitOptions = FitOptions(),
    group: ProcessGroup | None = None,
) -> TrainResult:
    """Train `model` on ds.train minus a validation item per user (the rating objective: on the training rows of
    edgerec.data.ratings.split_ratings); return the best-validation model.

    From epoch cfg.average_from on, the model validated after each epoch is the mean of the weights at the ends of
    the epochs since (stochastic weight averaging); the best validated one is returned.

    group: the process group to train in (edgerec.model.distributed), each rank on its own shard of the positives
    with the gradients averaged every step; None trains in this process alone.
    """
    torch.manual_seed(cfg.seed)
    cfg = resolved(cfg, len(ds.train))
    rank, world = rank_and_world(group)
    # one process: the seed alone; ranks: each its own stream of negatives
    rng = np.random.default_rng(cfg.seed if world == 1 else [cfg.seed, rank])
    steps = _Steps(model, cfg, options, group, world)
    task = _Implicit(ds, cfg, options, rank, world) if cfg.objective == "implicit" else _Rating(ds, cfg)
    average = _Average(cfg.average_from)
    best = _Best(model, task.validate, cfg.patience)
    history: list[EpochLog] = []
    t_start, train_seconds, samples = time.perf_counter(), 0.0, 0
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        batches, n = task.batches(rng, steps.batch_size, group)
        loss = steps.epoch(batches, (n + steps.batch_size - 1) // steps.batch_size, epoch, t0)
        seconds = time.perf_counter() - t0
        train_seconds += seconds
        n *= world  # samples of the epoch, all ranks together
        candidate = average(model, epoch)
        score, measured = task.validate(candidate)
        for callback in options.callbacks:
            callback.on_epoch_end(epoch, model, candidate)
        samples += n
        history.append(EpochLog(epoch, loss, seconds, n / seconds, **measured))
        _log_epoch(history[-1])
        if not np.isfinite(loss):
            raise EdgerecError(f"training diverged at epoch {epoch} (loss is {loss}); lower the learning rate")
        if best.stops(epoch, score, candidate):
            break
    model.load_state_dict(best.state)
    model.eval()
    return TrainResult(model, best.epoch, history, time.perf_counter() - t_start, samples / max(train_seconds, 1e-9))


Validate = Callable[[NCF], tuple[float, dict[str, float]]]  # model -> (higher is better, EpochLog's val_ fields)


class _Implicit:
    """The implicit objective's epochs and validation: every training positive with fresh sampled negatives (each
    rank its own shard), NDCG@10 on a leave-one-out validation split carved from ds.train (or the caller's)."""

    def __init__(self, ds: Dataset, cfg: TrainConfig, options: FitOptions, rank: int, world: int) -> None:
        self.val = validation_split(ds, cfg.seed) if options.val is None else options.val
        self.train = self.val.train if options.val is None else ds.train
        # the validation items are positives too: never sampled as negatives
        self.known = positive_keys(ds.train) if options.known is None else options.known
        self.n_items, self.negatives, self.rank, self.world = ds.n_items, cfg.negatives, rank, world

    def batches(self, rng: np.random.Generator, batch: int, group: ProcessGroup | None) -> tuple[Iterator[Batch], int]:
        shard_u, shard_i = self.train.users[self.rank :: self.world], self.train.items[self.rank :: self.world]
        n = fewest(len(shard_u) * (1 + self.negatives), group)  # every rank takes the same number of steps
        return epoch_batches(shard_u, shard_i, self.n_items, self.known, self.negatives, rng, batch, n), n

    def validate(self, model: NCF) -> tuple[float, dict[str, float]]:
        hr, ndcg = hr_ndcg(sampled_ranks(torch_scorer(model), self.val))
        return ndcg, {"val_hr": hr, "val_ndcg": ndcg}


class _Rating:
    """The rating objective's epochs and validation: the training rows of the rating split, shuffled every epoch
    (the label is the rating), RMSE on its validation rows."""

    def __init__(self, ds: Dataset, cfg: TrainConfig) -> None:
        split = split_ratings(ds, cfg.seed)
        self.train, self.val = split.train, split.val

    def batches(self, rng: np.random.Generator, batch: int, group: ProcessGroup | None) -> tuple[Iterator[Batch], int]:
        perm = rng.permutation(len(self.train))
        u, i = torch.from_numpy(self.train.users[perm]), torch.from_numpy(self.train.items[perm])
        r = torch.from_numpy(self.train.ratings[perm])
        return ((u[s : s + batch], i[s : s + batch], r[s : s + batch]) for s in range(0, len(perm), batch)), len(perm)

    def validate(self, model: NCF) -> tuple[float, dict[str, float]]:
        errors = rating_errors(torch_scorer(model), self.val)
        return -errors["rmse"], {"val_rmse": errors["rmse"], "val_mae": errors["mae"]}


class _Steps:
    """The optimizer steps of one epoch: the objective's loss (BCE on logits, or squared error on ratings) plus the
    caller's extra loss, row gradients with their L2, and the ranks' gradient average, so that fit itself reads as
    epochs and model selection."""

    def __init__(
        self, model: NCF, cfg: TrainConfig, options: FitOptions, group: ProcessGroup | None, world: int
    ) -> None:
        self.model, self.cfg, self.options, self.group, self.world = model, cfg, options, group, world
        self.batch_size = max(1, cfg.batch_size // world)  # the global batch is cfg.batch_size, split over the ranks
        self.opts = optimizers(model, cfg)
        self.loss = nn.BCEWithLogitsLoss() if cfg.objective == "implicit" else nn.MSELoss()
        self.row_grads = RowGrads(model, options.row_mask, sparse=cfg.optimizer == "lazy-adam")

    def epoch(self, batches: Iterator[Batch], steps: int, epoch: int, t0: float) -> float:
        """Train on the epoch's batches; the mean batch loss (`steps` batches come)."""
        self.model.train()
        total = torch.zeros(())
        progress = self.options.progress
        for step, (u, i, y) in enumerate(batches):
            total += self.step(u, i, y)
            if progress and (step % 500 == 0 or step == steps - 1):
                elapsed = time.perf_counter() - t0
                done = {"epoch": epoch, "loss": float(total) / (step + 1)}
                rate = (step + 1) * self.batch_size * self.world / max(elapsed, 1e-9)
                progress(self.options.stage, step + 1, steps, done | {"samples_per_s": rate})
        return float(total) / steps

    def step(self, u: torch.Tensor, i: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        rows = self.row_grads.gather(u, i)
        weight = self.model.features.feature_loss if isinstance(self.model, FeatureNCF) else 0.0
        if weight:  # FeaturesConfig.feature_loss: also each side scored by its features alone
            represented, *feature_only = self.model.representations(rows, u, i, feature_only=True)  # type: ignore[union-attr]
        else:
            represented, feature_only = self.model.represent(rows, u, i), []
        logits = self.model.combine(represented, self.cfg.dropout)
        loss = self.loss(logits, y)
        for alone in feature_only:
            loss = loss + weight * self.loss(self.model.combine(alone, self.cfg.dropout), y)
        if self.options.extra_loss is not None:
            loss = loss + self.options.extra_loss(self.model, u, i, y, logits)
        for opt in self.opts:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.l2:
            add_l2_grad(rows, self.cfg.l2)
            if isinstance(self.model, FeatureNCF):
                self.model.add_l2_grad(u, i, self.cfg.l2)
        self.row_grads.scatter()
        if self.group is not None and self.world > 1:
            average_gradients(self.model, self.group)
            self.row_grads.touched_everywhere()  # other ranks' rows are in the buffers now
        for opt in self.opts:
            opt.step()
        return loss.detach()


class _Average:
    """The candidate an epoch validates: the model itself, or from epoch `start` on the running mean of the
    epoch-end weights (NCF has no batch normalisation: the mean is a model as is)."""

    def __init__(self, start: int) -> None:
        self.start = start
        self.averaged: AveragedModel | None = None  # created when the averaging starts

    def __call__(self, model: NCF, epoch: int) -> NCF:
        if not self.start or epoch < self.start:
            return model
        if self.averaged is None:
            self.averaged = AveragedModel(model)
        self.averaged.update_parameters(model)
        return self.averaged.module


class _Best:
    """Model selection: the best validated weights so far (validation NDCG@10, or minus RMSE: higher is better),
    and early stopping's count of epochs without gain."""

    def __init__(self, model: NCF, validate: Validate, patience: int) -> None:
        # epoch 0 is the starting point: a pre-trained or pruned model that fine-tuning only makes worse is kept
        self.score = validate(model)[0]
        self.state, self.epoch, self.stale, self.patience = copy.deepcopy(model.state_dict()), 0, 0, patience

    def stops(self, epoch: int, score: float, candidate: NCF) -> bool:
        """Record the epoch's validation; whether training stops here."""
        if score > self.score:
            self.score, self.state, self.epoch, self.stale = score, copy.deepcopy(candidate.state_dict()), epoch, 0
            return False
        self.stale += 1
        return self.stale >= self.patience


def _log_epoch(rec: EpochLog) -> None:
    if rec.val_rmse is not None:
        val = f"val RMSE {rec.val_rmse:.4f}  MAE {rec.val_mae:.4f}"
    else:
        val = f"val HR@10 {rec.val_hr:.4f}  NDCG@10 {rec.val_ndcg:.4f}"
    log.info("epoch %d  loss %.4f  %s  %.1fs  %.0f samples/s", rec.epoch, rec.loss, val, rec.seconds, rec.samples_per_s)


def train(
    ds: Dataset,
    cfg: TrainConfig = TrainConfig(),
    progress: Progress | None = None,
    init: NCF | None = None,
    parallel: Callable[[Dataset, TrainConfig], tuple[NCF, dict]] | None = None,
    group: ProcessGroup | None = None,
) -> tuple[NCF, dict]:
    """parallel: with cfg.nproc > 1, what trains in several processes (edgerec.model.distributed.fit_nproc; passed
    in by the caller, so that this module and the launcher do not import each other). group: the process group this
    process trains in as one rank (torchrun's), passed to every fit; None: alone.

    Train the GMF, MLP or NeuMF that cfg describes (NeuMF optionally from pre-trained GMF and MLP) and measure it
    and ItemPop on the test set. With `init`, a copy of that model (on ds's id maps) is trained instead: cfg's
    architecture fields and pretrain are not used.

    Returns the model and a report: test metrics at the selected epoch, ItemPop's, the training log of every stage.
    The rating objective: RMSE / MAE on the held-out rows of the rating split, the global mean's beside them.
    """
    kind = cfg.model
    cfg = resolved(cfg, len(ds.train))  # the automatic batch and rate, recorded as the values used
    torch.manual_seed(cfg.seed)  # the initial weights are part of what the seed fixes
    stages: dict[str, dict] = {}
    fit_cfg = cfg
    options = FitOptions(progress=progress)
    if init is not None:
        if (init.arch.n_users, init.arch.n_items) != (ds.n_users, ds.n_items):
            raise EdgerecError("the initial model's tables do not match the data's users and items")
        model, kind = copy.deepcopy(init).train(), init.arch.kind
    elif cfg.pretrain:
        gmf_res = fit(build_model(ds, replace(cfg, model="gmf", pretrain=False)), ds, cfg, options, group)
        mlp_res = fit(build_model(ds, replace(cfg, model="mlp", pretrain=False)), ds, cfg, options, group)
        stages["gmf"], stages["mlp"] = gmf_res.summary(), mlp_res.summary()
        model = pretrained_features(neumf_from_pretrained(gmf_res.model, mlp_res.model), gmf_res.model, mlp_res.model)
        # the paper fine-tunes the pre-trained NeuMF with plain SGD: Adam's fresh moments would undo the init
        fit_cfg = replace(cfg, optimizer="sgd", lr=PRETRAINED_SGD_LR)
    elif cfg.nproc > 1:  # several processes on torch.distributed (edgerec.model.distributed)
        if parallel is None:
            raise EdgerecError("nproc > 1 needs the process launcher (edgerec.train passes it)")
        trained, summary = parallel(ds, cfg)
        stages = {kind: summary, **_cold_fits(trained, ds, cfg)}
        return _report(trained, ds, fit_cfg, init, stages, summary["samples_per_s"])
    else:
        model = build_model(ds, cfg)
        if cfg.objective == "rating":  # the output starts at the mean training rating
            with torch.no_grad():
                model.predict.bias.fill_(float(np.mean(split_ratings(ds, cfg.seed).train.ratings, dtype=np.float64)))
    res = fit(model, ds, fit_cfg, options, group)
    stages[kind] = res.summary()
    stages.update(_cold_fits(res.model, ds, cfg))
    return _report(res.model, ds, fit_cfg, init, stages, res.samples_per_s)


def _cold_fits(model: NCF, ds: Dataset, cfg: TrainConfig) -> dict[str, dict]:
    """The cold fits (edgerec.model.cold_fit) of a model with features trained on the implicit objective, in place,
    items first: {"cold_items": its record, "cold_users": its record}, each side with features whose epochs cfg
    does not set to 0."""
    if cfg.features is None or cfg.objective != "implicit" or not isinstance(model, FeatureNCF):
        return {}
    out = {}
    for side, epochs in (("item", cfg.features.cold_item_epochs), ("user", cfg.features.cold_user_epochs)):
        if epochs and side in model.features.encoded:
            out[f"cold_{side}s"] = fit_cold(model, ds, ColdFit(side, epochs=epochs, seed=cfg.seed))  # type: ignore[arg-type]
    return out


def build_model(ds: Dataset, cfg: TrainConfig) -> NCF:
    """The untrained model cfg describes on ds's id maps (with cfg.features: edgerec.model.features.FeatureNCF)."""
    arch = NCFArch.paper(cfg.model, ds.n_users, ds.n_items, cfg.factors, cfg.layers)
    return NCF(arch) if cfg.features is None else build_features(ds, arch, cfg.features)


def _report(
    model: NCF, ds: Dataset, cfg: TrainConfig, init: NCF | None, stages: dict, samples_per_s: float
) -> tuple[NCF, dict]:
    seconds = sum(s["seconds"] for s in stages.values())
    report = {
        **objective_metrics(model, ds, cfg.objective, cfg.seed),
        "train_config": asdict(cfg),
        "init": None if init is None else "continued from a checkpoint's weights",
        "stages": stages,
        "train_seconds": round(seconds, 2),
        "samples_per_s": samples_per_s,
    }
    if isinstance(model, FeatureNCF):  # how each feature table met the data (edgerec.data.features.FeatureReport)
        report["features"] = dict(model.features.reports)
    return model, report


def objective_metrics(model: NCF, ds: Dataset, objective: str, seed: int) -> dict[str, dict]:
    """The test metrics of a model trained on `objective` and its baseline's, as the train report holds them:
    implicit: {"metrics": HR / NDCG (sampled and full ranking), "itempop": ItemPop's}; rating: {"metrics": RMSE /
    MAE on the held-out rows of the rating split with `seed`, "global_mean": the mean training rating's}."""
    if objective == "implicit":
        return {"metrics": evaluate(torch_scorer(model), ds), "itempop": evaluate(item_pop_scorer(ds), ds)}
    split = split_ratings(ds, seed)
    summary = split.summary()
    return {
        "metrics": rating_errors(torch_scorer(model), split.test) | summary,
        "global_mean": rating_errors(global_mean_scorer(split.train), split.test) | summary,
    }
