"""The cold-item fit of a feature model: after training, the item feature bags are fitted again so that an item's
features alone represent it as well as they can (what an item added by `add_items` has), and every known item's id
rows absorb the change, so that every known item scores exactly as before.

Training with id dropout teaches the bags to complement the id rows: for a known item they carry what its id rows do
not. The fit asks the bags the new item's question instead. The trained model is frozen (users as it represents them,
both towers, the head); fresh item bags (normal, std 0.01) are trained with the BCE loss on the training interactions,
each item represented by its features alone, `negatives` sampled items per positive. A seeded share of the items
(`holdout`) is kept out of the fit and ranked after each epoch as new items would be (every user who interacted with
one ranks all of them by their features alone: Recall@10); the best epoch's bags are kept. Then, for every known item
and each tower, id row += old bag(features) - new bag(features), and the new bags replace the old ones.

Measured on ML-1M NeuMF-8 with its item features over several holdout seeds (benchmarks/results/cold_start_seeds.md,
benchmarks/cold_item_fit.py): cold items gain on average, warm scores are unchanged.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from edgerec.data.features import PAD
from edgerec.data.split import Dataset
from edgerec.metrics import set_recall_ndcg
from edgerec.model.config import COLD_ITEM_EPOCHS
from edgerec.model.features import FeatureNCF

K = 10
Logits = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class ColdItemFit:
    """How the cold-item fit trains (FeaturesConfig.cold_item_epochs sets `epochs`; 0: no fit)."""

    epochs: int = COLD_ITEM_EPOCHS  # at most; the epoch whose held-out items rank best is kept
    lr: float = 4e-3  # Adam
    batch: int = 4096  # positives per step (each with its negatives)
    negatives: int = 4
    holdout: float = 0.1  # share of the items kept out of the fit and ranked as new ones
    max_positives: int = 2_000_000  # per epoch (a seeded sample of the training interactions beyond this)
    max_judged_users: int = 2_000  # users and items of the held-out ranking (seeded samples beyond these)
    max_held_out: int = 1_000
    seed: int = 0


def fit_cold_items(model: FeatureNCF, ds: Dataset, cfg: ColdItemFit = ColdItemFit()) -> dict:
    """Fit `model`'s item bags for new items, in place (see the module docstring); every known item's scores stay
    the same. Returns the record of the fit: each epoch's held-out Recall@10 / NDCG@10, the kept epoch and
    seconds."""
    t_start = time.perf_counter()
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    n = model.arch.n_items
    held = np.zeros(n, dtype=bool)
    seen = np.unique(ds.train.items)
    held[rng.choice(seen, size=min(cfg.max_held_out, max(1, round(cfg.holdout * len(seen)))), replace=False)] = True
    fit_rows = np.flatnonzero(~held[ds.train.items])
    if len(fit_rows) > cfg.max_positives:
        fit_rows = np.sort(rng.choice(fit_rows, size=cfg.max_positives, replace=False))
    users = torch.from_numpy(ds.train.users[fit_rows].astype(np.int64))
    items = torch.from_numpy(ds.train.items[fit_rows].astype(np.int64))
    fit_items = torch.from_numpy(seen[~held[seen]].astype(np.int64))
    ranking = _HeldOut(ds, held, cfg, rng)
    # too few items to hold some out and fit on the rest: no epoch, nothing changes
    epochs = cfg.epochs if len(users) and ranking.users else 0

    bags = {name: bag for name, bag in model.bags().items() if name.endswith("_item")}
    fresh = {name: copy.deepcopy(bag) for name, bag in bags.items()}
    with torch.no_grad():
        for bag in fresh.values():
            bag.weight.normal_(0.0, 0.01, generator=gen)
            bag.weight[PAD].zero_()
    indices, weights = model.item_feature_indices, model.item_feature_weights
    was_training = model.training
    frozen = {p: p.requires_grad for p in model.parameters()}
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)

    def logits(u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        rows = model.represent(model.lookup(u, i), u, i)
        for name, bag in fresh.items():
            rows[name] = bag(indices[i], per_sample_weights=weights[i])
        return model.combine(rows)

    try:
        # the trained bags are no reference: the main training saw the held-out items
        history: list[dict] = []
        best, best_epoch, kept = -1.0, 0, {}
        opt = torch.optim.Adam([bag.weight for bag in fresh.values()], lr=cfg.lr)
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            order = torch.randperm(len(users), generator=gen)
            total = 0.0
            for s in range(0, len(order), cfg.batch):
                sel = order[s : s + cfg.batch]
                m = len(sel)
                u = users[sel].repeat(1 + cfg.negatives)
                negative = fit_items[torch.randint(0, len(fit_items), (m * cfg.negatives,), generator=gen)]
                i = torch.cat([items[sel], negative])
                y = torch.cat([torch.ones(m), torch.zeros(m * cfg.negatives)])
                loss = nn.functional.binary_cross_entropy_with_logits(logits(u, i), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                with torch.no_grad():
                    for bag in fresh.values():
                        bag.weight[PAD].zero_()
                total += loss.item() * m
            measured = ranking.measure(logits)
            history.append({"epoch": epoch, "loss": total / max(len(users), 1), **measured,
                            "seconds": round(time.perf_counter() - t0, 2)})  # fmt: skip
            if measured["recall@10"] > best:
                best, best_epoch = measured["recall@10"], epoch
                kept = {name: bag.weight.detach().clone() for name, bag in fresh.items()}
        if best_epoch:
            _replace_bags(model, bags, kept)
    finally:
        for p, flag in frozen.items():
            p.requires_grad_(flag)
        model.train(was_training)
    return {
        "kept_epoch": best_epoch,
        "held_out_items": int(held.sum()),
        "judged_users": ranking.users,
        "history": history,
        "seconds": round(time.perf_counter() - t_start, 2),
        "settings": asdict(cfg),
    }


@torch.no_grad()
def _replace_bags(model: FeatureNCF, bags: dict[str, nn.EmbeddingBag], new: dict[str, torch.Tensor]) -> None:
    """The new bag weights in, each known item's id rows moved by old bag(features) - new bag(features)."""
    indices, weights = model.item_feature_indices, model.item_feature_weights
    for name, bag in bags.items():
        table = getattr(model, name)
        replacement = nn.EmbeddingBag.from_pretrained(new[name], freeze=True, mode="sum", padding_idx=PAD)
        for s in range(0, model.arch.n_items, 1 << 16):
            rows = slice(s, min(s + (1 << 16), model.arch.n_items))
            old = bag(indices[rows], per_sample_weights=weights[rows])
            table.weight[rows] += old - replacement(indices[rows], per_sample_weights=weights[rows])
        bag.weight.copy_(new[name])


class _HeldOut:
    """The held-out items ranked as new ones: each judged user (one who interacted with a held-out item; a seeded
    sample beyond max_judged_users) ranks every held-out item; Recall@10 / NDCG@10 against their interactions."""

    def __init__(self, ds: Dataset, held: np.ndarray, cfg: ColdItemFit, rng: np.random.Generator) -> None:
        hit = held[ds.train.items]
        judged = np.unique(ds.train.users[hit])
        if len(judged) > cfg.max_judged_users:
            judged = np.sort(rng.choice(judged, size=cfg.max_judged_users, replace=False))
        self.items = np.flatnonzero(held)
        row = np.full(ds.n_users, -1)
        row[judged] = np.arange(len(judged))
        col = np.full(len(held), -1)
        col[self.items] = np.arange(len(self.items))
        keep = hit & (row[ds.train.users] >= 0)
        self.relevant = np.zeros((len(judged), len(self.items)), dtype=bool)
        self.relevant[row[ds.train.users[keep]], col[ds.train.items[keep]]] = True
        self.users = len(judged)
        self.judged = judged

    @torch.no_grad()
    def measure(self, logits: Logits) -> dict[str, float]:
        """Recall@10 / NDCG@10 of the held-out items scored by `logits(users, items)`."""
        u = torch.from_numpy(np.repeat(self.judged, len(self.items)).astype(np.int64))
        i = torch.from_numpy(np.tile(self.items, len(self.judged)).astype(np.int64))
        step = 1 << 18
        scores = torch.cat([logits(u[s : s + step], i[s : s + step]) for s in range(0, len(u), step)]).numpy()
        got = set_recall_ndcg(scores.reshape(self.relevant.shape), self.relevant, K)
        return {"recall@10": float(got["recall@10"]), "ndcg@10": float(got["ndcg@10"])}
