"""Structured pruning with torch-pruning's dependency graph: whole MLP channels and embedding dimensions go away.

DepGraph couples what must be pruned together (a GMF dimension of the user and the item table, an MLP embedding
dimension and the matching input column of the first layer, a hidden channel and the next layer's input), so the
result is a smaller dense NCF whose architecture is read back from the module shapes.

A feature model (edgerec.model.features.FeatureNCF) stays one: each feature bag is added to its id table's rows, so
the graph couples the bag's columns with the table's, and a pruned embedding dimension goes from both (the bags are
handed to DepGraph as parameters pruned along their columns).

With training data, an MLP channel's importance is weighted by how often its ReLU is positive on a sample of training
pairs, so that a dead channel (never positive) goes first: its weights never get a gradient, so they keep the size
they had when it died, and a magnitude criterion alone would keep it over live ones. A student whose last hidden layer
keeps only dead channels has an MLP tower of constant output that no training revives (the ML-1M feature NeuMF-8 of
benchmarks/results/features_compress.md: all four kept channels of that layer were dead by magnitude alone).
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from edgerec.compression.config import PruneConfig
from edgerec.data.split import Dataset
from edgerec.errors import EdgerecError
from edgerec.model.features import FeatureNCF
from edgerec.model.ncf import NCF, NCFArch


def arch_of(model: NCF) -> NCFArch:
    """The architecture as the module's tensors say it is (after pruning, not as constructed)."""
    a = model.arch
    gmf = model.gmf_user.embedding_dim if a.gmf_dim else 0
    if a.mlp_layers:
        linears = [m for m in model.mlp if isinstance(m, nn.Linear)]
        mu, mi, layers = (
            model.mlp_user.embedding_dim,
            model.mlp_item.embedding_dim,
            tuple(m.out_features for m in linears),
        )
    else:
        mu, mi, layers = 0, 0, ()
    return NCFArch(a.kind, a.n_users, a.n_items, gmf, mu, mi, layers)


def prune(model: NCF, cfg: PruneConfig, ds: Dataset | None = None) -> NCF:
    """Return a pruned copy of `model` (the input is left as it is). ds is needed for the taylor criterion; with it,
    MLP channels are weighted by their activity (see the module docstring)."""
    import torch_pruning as tp

    model = copy.deepcopy(model).eval()
    ratios: dict[nn.Module, float] = {}
    if cfg.gmf and model.arch.gmf_dim:
        ratios[model.gmf_user] = cfg.gmf  # gmf_item follows through the elementwise product
    if model.arch.mlp_layers:
        if cfg.mlp_embedding:
            ratios[model.mlp_user] = cfg.mlp_embedding
            ratios[model.mlp_item] = cfg.mlp_embedding
        if cfg.mlp:
            ratios.update({m: cfg.mlp for m in model.mlp if isinstance(m, nn.Linear)})
    if not ratios:
        return model
    # keep at least one channel everywhere: torch-pruning silently skips a group it would empty
    ratios = {m: 1 - max(1, round(_channels(m) * (1 - r))) / _channels(m) for m, r in ratios.items()}
    example = (torch.zeros(2, dtype=torch.long), torch.zeros(2, dtype=torch.long))
    importance = {
        "l1": lambda: tp.importance.MagnitudeImportance(p=1),
        "l2": lambda: tp.importance.MagnitudeImportance(p=2),
        "taylor": lambda: tp.importance.TaylorImportance(),
        "random": lambda: tp.importance.RandomImportance(),
    }[cfg.importance]()
    if ds is not None and cfg.mlp and model.arch.mlp_layers and cfg.importance != "random":
        importance = ActivityWeighted(importance, channel_activity(model, ds, cfg))
    torch.manual_seed(cfg.seed)
    pruner = tp.pruner.MetaPruner(
        model,
        example,
        importance=importance,
        pruning_ratio=0.0,
        pruning_ratio_dict=ratios,
        ignored_layers=[model.predict],  # its single output is the score; its inputs shrink with the towers
        root_module_types=[nn.Linear, nn.Embedding],
        unwrapped_parameters=_bag_columns(model),
    )
    if cfg.importance == "taylor":
        if ds is None:
            raise EdgerecError("the taylor importance needs training data")
        _accumulate_gradients(model, ds, cfg)
    pruner.step()
    model.zero_grad(set_to_none=True)
    if isinstance(model, FeatureNCF):
        for bag in model.bags().values():
            bag.embedding_dim = bag.weight.shape[1]
    model.arch = arch_of(model)
    return model


def _sample(ds: Dataset, cfg: PruneConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """users, items, labels: a seeded sample of cfg.taylor_samples training positives and as many random
    negatives."""
    rng = np.random.default_rng(cfg.seed)
    rows = rng.choice(len(ds.train), size=min(cfg.taylor_samples, len(ds.train)), replace=False)
    u = np.concatenate([ds.train.users[rows], ds.train.users[rows]])
    i = np.concatenate([ds.train.items[rows], rng.integers(0, ds.n_items, len(rows))])
    y = np.concatenate([np.ones(len(rows)), np.zeros(len(rows))]).astype(np.float32)
    return torch.from_numpy(u), torch.from_numpy(i), torch.from_numpy(y)


def channel_activity(model: NCF, ds: Dataset, cfg: PruneConfig) -> dict[nn.Module, torch.Tensor]:
    """{hidden MLP layer: [out_features]}: the share of the sampled training pairs (_sample) for which each of its
    channels' ReLU is positive (0: a dead channel)."""
    layers = list(model.mlp)
    positive: dict[nn.Module, torch.Tensor] = {}

    def hook(layer: nn.Module) -> Callable[..., None]:
        def record(_: nn.Module, __: tuple, out: torch.Tensor) -> None:
            active = (out > 0).sum(0)
            positive[layer] = positive[layer] + active if layer in positive else active

        return record

    handles = [
        relu.register_forward_hook(hook(layer))
        for layer, relu in itertools.pairwise(layers)
        if isinstance(layer, nn.Linear) and isinstance(relu, nn.ReLU)
    ]
    u, i, _ = _sample(ds, cfg)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for s in range(0, len(u), 1 << 16):
                model(u[s : s + (1 << 16)], i[s : s + (1 << 16)])
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return {layer: count.to(torch.float32) / len(u) for layer, count in positive.items()}


class ActivityWeighted:
    """A torch-pruning importance: `base`'s, times the channel's activity for the out channels of a hidden layer
    (`activity`: channel_activity's), as `base` for every other group."""

    def __init__(self, base: Callable[[Any], torch.Tensor | None], activity: dict[nn.Module, torch.Tensor]) -> None:
        self.base, self.activity = base, activity

    def __call__(self, group: Any) -> torch.Tensor | None:
        imp = self.base(group)
        activity = self.activity.get(group[0].dep.target.module)
        if imp is None or activity is None or len(imp) != len(activity):  # not a hidden layer's out channels
            return imp
        return imp * activity


def _bag_columns(model: NCF) -> list[tuple[nn.Parameter, int]] | None:
    """A feature model's bags as DepGraph parameters pruned along dimension 1 (the embedding columns)."""
    if not isinstance(model, FeatureNCF):
        return None
    return [(bag.weight, 1) for bag in model.bags().values()]


def _channels(m: nn.Module) -> int:
    return m.embedding_dim if isinstance(m, nn.Embedding) else m.out_features  # type: ignore[return-value]


def _accumulate_gradients(model: NCF, ds: Dataset, cfg: PruneConfig) -> None:
    """BCE gradients on a sample of positives and as many random negatives (what TaylorImportance reads)."""
    u, i, y = _sample(ds, cfg)
    model.zero_grad(set_to_none=True)
    nn.functional.binary_cross_entropy_with_logits(model(u, i), y).backward()
