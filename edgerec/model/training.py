"""Training: binary cross-entropy with sampled negatives, model selection on a validation split carved from train.

The validation split is leave-one-out on the training interactions (never the test set); the epoch with the best
validation NDCG@10 is kept, and training stops after `patience` epochs without improvement.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from edgerec.data.split import Dataset, leave_one_out, positive_keys, sample_negatives
from edgerec.errors import EdgerecError
from edgerec.metrics import evaluate, hr_ndcg, item_pop_scorer, sampled_ranks
from edgerec.model.config import PRETRAINED_SGD_LR, TrainConfig, resolved
from edgerec.model.ncf import NCF, NCFArch, neumf_from_pretrained

log = logging.getLogger(__name__)


ExtraLoss = Callable[[NCF, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class EpochLog:
    epoch: int
    loss: float
    val_hr: float
    val_ndcg: float
    seconds: float
    samples_per_s: float


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
            "history": [asdict(h) for h in self.history],
        }


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


EPOCH_CHUNK = 1 << 22  # positives whose negatives are drawn and shuffled together: bounds an epoch's memory


def _epoch_arrays(
    users: np.ndarray, items: np.ndarray, n_items: int, known: np.ndarray, neg: int, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Positives plus `neg` fresh negatives each, shuffled: ([S] users, [S] items, [S] labels)."""
    negs = sample_negatives(users, n_items, neg, known, rng)  # [P, neg]
    u = np.concatenate([users, np.repeat(users, neg)])
    i = np.concatenate([items, negs.ravel()])
    y = np.concatenate([np.ones(len(users), np.float32), np.zeros(negs.size, np.float32)])
    perm = rng.permutation(len(u))
    return torch.from_numpy(u[perm]), torch.from_numpy(i[perm]), torch.from_numpy(y[perm])


def _batches(
    users: np.ndarray,
    items: np.ndarray,
    n_items: int,
    known: np.ndarray,
    neg: int,
    rng: np.random.Generator,
    batch: int,
    limit: int,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """An epoch's batches, at most `limit` samples in all. Up to EPOCH_CHUNK positives the epoch is one shuffled
    array; beyond, the positives are shuffled and taken EPOCH_CHUNK at a time (their negatives drawn and the chunk
    shuffled as it comes), so memory stays bounded at any data size."""
    if len(users) <= EPOCH_CHUNK:
        chunks: Iterator = iter([_epoch_arrays(users, items, n_items, known, neg, rng)])
    else:
        order = rng.permutation(len(users))
        chunks = (
            _epoch_arrays(users[idx], items[idx], n_items, known, neg, rng)
            for idx in (order[s : s + EPOCH_CHUNK] for s in range(0, len(order), EPOCH_CHUNK))
        )
    carry: tuple[torch.Tensor, ...] | None = None
    for chunk in chunks:
        u, i, y = chunk if carry is None else (torch.cat([a, b]) for a, b in zip(carry, chunk, strict=True))
        whole = len(y) // batch * batch
        for s in range(0, whole, batch):
            if limit <= 0:
                return
            e = s + min(batch, limit)
            limit -= e - s
            yield u[s:e], i[s:e], y[s:e]
        carry = (u[whole:], i[whole:], y[whole:])
    if carry is not None and len(carry[2]) and limit > 0:
        yield tuple(t[:limit] for t in carry)  # type: ignore[misc]


def fit(
    model: NCF,
    ds: Dataset,
    cfg: TrainConfig = TrainConfig(),
    progress: Callable[[str, int, int, dict], None] | None = None,
    extra_loss: ExtraLoss | None = None,
    stage: str = "train",
    known: np.ndarray | None = None,
    row_mask: dict[str, torch.Tensor] | None = None,
    val: Dataset | None = None,
    epoch_end: Callable[[int, NCF, NCF], None] | None = None,
) -> TrainResult:
    """Train `model` on ds.train minus a validation item per user; return the best-validation model.

    From epoch cfg.average_from on, the model validated after each epoch is the mean of the weights at the ends of
    the epochs since (stochastic weight averaging); the best validated one is returned.

    progress(stage, done, total, info) is called every few hundred batches (for a progress bar).
    extra_loss(model, users, items, labels, logits) is added to the BCE loss of every batch (distillation uses it).
    known: positive keys that negatives must avoid when ds.train is a sample of a larger set (an update's replay mix);
    default: the positives of ds.train.
    row_mask: {table name: [rows] bool}: only these rows of the tables learn (an update that must leave every other
    row byte-identical); parameters with requires_grad False stay frozen as usual.
    val: a validation set of the caller's (then all of ds.train is trained on); default: carved from ds.train.
    epoch_end(epoch, model, candidate) is called after each epoch's validation with the trained weights and the
    validated candidate (the same model before cfg.average_from); benchmarks measure both on the test set with it.
    """
    torch.manual_seed(cfg.seed)
    cfg = resolved(cfg, len(ds.train))
    rank, world = _group()
    # one process: the seed alone (bit-reproducible as before); ranks: each its own stream of negatives
    rng = np.random.default_rng(cfg.seed if world == 1 else [cfg.seed, rank])
    batch_size = max(1, cfg.batch_size // world)  # the global batch is cfg.batch_size, split over the ranks
    if val is None:
        val = validation_split(ds, cfg.seed)
        train = val.train
    else:
        train = ds.train
    # the validation items are positives too: never sampled as negatives
    known = positive_keys(ds.train) if known is None else known
    opts = _optimizers(model, cfg)
    bce = nn.BCEWithLogitsLoss()
    averaged: AveragedModel | None = None  # created when the averaging starts
    row_grads = _RowGrads(model, row_mask, sparse=cfg.optimizer == "lazy-adam")
    # epoch 0 is the starting point: a pre-trained or pruned model that fine-tuning only makes worse is kept as it is
    best = hr_ndcg(sampled_ranks(torch_scorer(model), val))[1]
    best_state, best_epoch, stale = copy.deepcopy(model.state_dict()), 0, 0
    history: list[EpochLog] = []
    t_start, train_seconds, samples = time.perf_counter(), 0.0, 0
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        # each rank samples its own shard of the positives and their negatives
        shard_u, shard_i = train.users[rank::world], train.items[rank::world]
        n = _same_length(len(shard_u) * (1 + cfg.negatives), world)  # every rank takes the same number of steps
        steps = (n + batch_size - 1) // batch_size
        model.train()
        total = torch.zeros(())
        batches = _batches(shard_u, shard_i, ds.n_items, known, cfg.negatives, rng, batch_size, n)
        for step, (u, i, y) in enumerate(batches):
            rows = row_grads.gather(u, i)
            logits = model.combine(rows)
            loss = bce(logits, y)
            if extra_loss is not None:
                loss = loss + extra_loss(model, u, i, y, logits)
            for opt in opts:
                opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.l2:
                add_l2_grad(rows, cfg.l2)
            row_grads.scatter()
            if world > 1:
                _average_gradients(model, world)
                row_grads.touched_everywhere()  # other ranks' rows are in the buffers now
            for opt in opts:
                opt.step()
            total += loss.detach()
            if progress and (step % 500 == 0 or step == steps - 1):
                elapsed = time.perf_counter() - t0
                progress(
                    stage,
                    step + 1,
                    steps,
                    {
                        "epoch": epoch,
                        "loss": float(total) / (step + 1),
                        "samples_per_s": (step + 1) * batch_size * world / max(elapsed, 1e-9),
                    },
                )
        seconds = time.perf_counter() - t0
        train_seconds += seconds
        n *= world  # samples of the epoch, all ranks together
        candidate = model
        if cfg.average_from and epoch >= cfg.average_from:
            # the running mean of the epoch-end weights (NCF has no batch normalisation: the mean is a model as is)
            if averaged is None:
                averaged = AveragedModel(model)
            averaged.update_parameters(model)
            candidate = averaged.module
        val_hr, val_ndcg = hr_ndcg(sampled_ranks(torch_scorer(candidate), val))
        if epoch_end is not None:
            epoch_end(epoch, model, candidate)
        samples += n
        rec = EpochLog(epoch, float(total) / steps, val_hr, val_ndcg, seconds, n / seconds)
        history.append(rec)
        log.info(
            "epoch %d  loss %.4f  val HR@10 %.4f  NDCG@10 %.4f  %.1fs  %.0f samples/s",
            epoch,
            rec.loss,
            val_hr,
            val_ndcg,
            seconds,
            rec.samples_per_s,
        )
        if not np.isfinite(rec.loss):
            raise EdgerecError(f"training diverged at epoch {epoch} (loss is {rec.loss}); lower the learning rate")
        if val_ndcg > best:
            best, best_state, best_epoch, stale = val_ndcg, copy.deepcopy(candidate.state_dict()), epoch, 0
        else:
            stale += 1
            if stale >= cfg.patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    return TrainResult(model, best_epoch, history, time.perf_counter() - t_start, samples / max(train_seconds, 1e-9))


def _optimizers(model: NCF, cfg: TrainConfig) -> list[torch.optim.Optimizer]:
    if cfg.optimizer == "sgd":
        return [torch.optim.SGD(model.parameters(), lr=cfg.lr)]
    if cfg.optimizer == "adam":
        return [torch.optim.Adam(model.parameters(), lr=cfg.lr, fused=True)]  # 8x faster step on CPU
    tables = {id(t.weight) for t in model.tables().values()}
    layers = [p for p in model.parameters() if id(p) not in tables]
    return [
        torch.optim.SparseAdam([t.weight for t in model.tables().values()], lr=cfg.lr),
        *([torch.optim.Adam(layers, lr=cfg.lr, fused=True)] if layers else []),
    ]


def _group() -> tuple[int, int]:
    """(rank, world size) of the torch.distributed group this process trains in; (0, 1) alone."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _same_length(n: int, world: int) -> int:
    if world == 1:
        return n
    import torch.distributed as dist

    t = torch.tensor([n], dtype=torch.int64)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return int(t)


def _average_gradients(model: NCF, world: int) -> None:
    """DDP's gradient averaging, done by hand (the tables' gradients are assigned by _RowGrads, not by autograd
    hooks): one all_reduce of every gradient flattened together, then divided by the world size. Every rank then
    takes the same optimizer step, so the weights stay identical on all ranks."""
    import torch.distributed as dist
    from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

    grads = [p.grad for p in model.parameters() if p.grad is not None]
    flat = _flatten_dense_tensors(grads)
    dist.all_reduce(flat)
    flat.div_(world)
    for g, reduced in zip(grads, _unflatten_dense_tensors(flat, grads), strict=True):
        g.copy_(reduced)


def add_l2_grad(rows: dict[str, torch.Tensor], l2: float) -> None:
    """Add the gradient of l2 * (mean over the batch of each gathered row's squared norm) to the rows' gradients.

    The same update as that penalty in the loss, without its autograd graph (which cost 20 % of the step time of
    NeuMF-8 at batch 256); the logged loss is then the BCE alone.
    """
    for r in rows.values():
        if r.grad is not None:
            r.grad.add_(r.detach(), alpha=2 * l2 / len(r))


class _RowGrads:
    """Embedding gradients without a dense backward.

    Autograd's embedding backward zero-fills a dense gradient the size of every table on every step, which at
    batch 256 was a quarter of the step time. Here the batch's rows are gathered as leaf tensors; after backward
    their gradients are added into one persistent dense buffer per table, in which only the rows touched by the
    previous step are cleared. The tables then hold exactly the gradient autograd would have produced, so dense
    Adam behaves as before.
    """

    def __init__(self, model: NCF, row_mask: dict[str, torch.Tensor] | None = None, sparse: bool = False) -> None:
        self.tables = model.tables()
        # rows outside the mask get an exactly zero gradient on every step, so Adam never moves them
        self.keep = {n: m.to(torch.float32)[:, None] for n, m in (row_mask or {}).items()}
        # sparse: the tables get sparse gradients of the batch's rows (for SparseAdam), no dense buffers at all
        self.sparse = sparse
        self.buffers = {} if sparse else {n: torch.zeros_like(t.weight) for n, t in self.tables.items()}
        self.dirty: dict[str, torch.Tensor | None] = dict.fromkeys(self.tables)
        self.rows: dict[str, torch.Tensor] = {}
        self.ids: dict[str, torch.Tensor] = {}

    def gather(self, users: torch.Tensor, items: torch.Tensor) -> dict[str, torch.Tensor]:
        self.ids = {n: users if n.endswith("_user") else items for n in self.tables}
        self.rows = {n: t.weight.detach().index_select(0, self.ids[n]).requires_grad_() for n, t in self.tables.items()}
        return self.rows

    def touched_everywhere(self) -> None:
        """The next step clears the whole buffers (after an all_reduce every rank's rows are in them)."""
        self.dirty = dict.fromkeys(self.tables)

    def scatter(self) -> None:
        if self.sparse:
            self._scatter_sparse()
            return
        for n, table in self.tables.items():
            buf, dirty = self.buffers[n], self.dirty[n]
            if dirty is None:
                buf.zero_()
            else:
                buf.index_fill_(0, dirty, 0.0)
            grad = self.rows[n].grad
            if grad is not None:
                buf.index_add_(0, self.ids[n], grad)
            self.dirty[n] = self.ids[n]
            if table.weight.grad is not None:  # another loss term read the table through the module
                buf.add_(table.weight.grad)
                self.dirty[n] = None
            if n in self.keep:
                buf.mul_(self.keep[n])
            table.weight.grad = buf

    def _scatter_sparse(self) -> None:
        for n, table in self.tables.items():
            if table.weight.grad is not None:
                raise EdgerecError("lazy-adam: a loss term read a whole embedding table; use --optimizer adam")
            grad = self.rows[n].grad
            if grad is None:
                continue
            if n in self.keep:
                grad = grad * self.keep[n][self.ids[n]]
            # duplicate rows of the batch are summed when SparseAdam coalesces the gradient
            table.weight.grad = torch.sparse_coo_tensor(
                self.ids[n][None], grad, table.weight.shape, check_invariants=False
            )


def train(
    ds: Dataset,
    cfg: TrainConfig = TrainConfig(),
    progress: Callable[[str, int, int, dict], None] | None = None,
    init: NCF | None = None,
    parallel: Callable[[Dataset, TrainConfig], tuple[NCF, dict]] | None = None,
) -> tuple[NCF, dict]:
    """parallel: with cfg.nproc > 1, what trains in several processes (edgerec.model.distributed.fit_nproc; passed
    in by the caller, so that this module and the launcher do not import each other).

    Train the GMF, MLP or NeuMF that cfg describes (NeuMF optionally from pre-trained GMF and MLP) and measure it
    and ItemPop on the test set. With `init`, a copy of that model (on ds's id maps) is trained instead: cfg's
    architecture fields and pretrain are not used.

    Returns the model and a report: test metrics at the selected epoch, ItemPop's, the training log of every stage.
    """
    kind, factors, layers = cfg.model, cfg.factors, cfg.layers
    cfg = resolved(cfg, len(ds.train))  # the automatic batch and rate, recorded as the values used
    torch.manual_seed(cfg.seed)  # the initial weights are part of what the seed fixes
    stages: dict[str, dict] = {}
    fit_cfg = cfg
    if init is not None:
        if (init.arch.n_users, init.arch.n_items) != (ds.n_users, ds.n_items):
            raise EdgerecError("the initial model's tables do not match the data's users and items")
        model, kind = copy.deepcopy(init).train(), init.arch.kind
    elif cfg.pretrain:
        gmf_res = fit(NCF(NCFArch.paper("gmf", ds.n_users, ds.n_items, factors, layers)), ds, cfg, progress)
        mlp_res = fit(NCF(NCFArch.paper("mlp", ds.n_users, ds.n_items, factors, layers)), ds, cfg, progress)
        stages["gmf"], stages["mlp"] = gmf_res.summary(), mlp_res.summary()
        model = neumf_from_pretrained(gmf_res.model, mlp_res.model)
        # the paper fine-tunes the pre-trained NeuMF with plain SGD: Adam's fresh moments would undo the init
        fit_cfg = replace(cfg, optimizer="sgd", lr=PRETRAINED_SGD_LR)
    elif cfg.nproc > 1:  # several processes on torch.distributed (edgerec.model.distributed)
        if parallel is None:
            raise EdgerecError("nproc > 1 needs the process launcher (edgerec.train passes it)")
        trained, summary = parallel(ds, cfg)
        return _report(trained, ds, fit_cfg, init, {kind: summary}, summary["samples_per_s"])
    else:
        model = build_model(ds, cfg)
    res = fit(model, ds, fit_cfg, progress)
    stages[kind] = res.summary()
    return _report(res.model, ds, fit_cfg, init, stages, res.samples_per_s)


def build_model(ds: Dataset, cfg: TrainConfig) -> NCF:
    return NCF(NCFArch.paper(cfg.model, ds.n_users, ds.n_items, cfg.factors, cfg.layers))


def _report(
    model: NCF, ds: Dataset, cfg: TrainConfig, init: NCF | None, stages: dict, samples_per_s: float
) -> tuple[NCF, dict]:
    metrics = evaluate(torch_scorer(model), ds)
    seconds = sum(s["seconds"] for s in stages.values())
    report = {
        "metrics": metrics,
        "itempop": evaluate(item_pop_scorer(ds), ds),
        "train_config": asdict(cfg),
        "init": None if init is None else "continued from a checkpoint's weights",
        "stages": stages,
        "train_seconds": round(seconds, 2),
        "samples_per_s": samples_per_s,
    }
    return model, report
