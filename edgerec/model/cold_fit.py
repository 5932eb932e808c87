"""The cold fit of a feature model: after training, one side's feature bags (items or users) are fitted again so
that an id's features alone represent it as well as they can (what an id added by `add_items` / `add_users` has),
and every known id's rows absorb the change, so that every known (user, item) pair scores exactly as before.

Training with id dropout teaches the bags to complement the id rows: for a known id they carry what its id rows do
not. The fit asks the bags the new id's question instead. The trained model is frozen (the other side as it
represents it, both towers, the head); fresh bags of the fitted side (normal, std 0.01) are trained with the BCE loss
on the training interactions, each of that side's ids represented by its features alone, `negatives` sampled items
per positive. A seeded share of the side's ids (`holdout`) is kept out of the fit and ranked after each epoch as new
ones would be, and the best epoch's bags are kept:
- items: every user who interacted with a held-out item ranks all held-out items by their features alone;
- users: every held-out user, by their features alone, ranks all items;
Recall@10 against their training interactions. Then, for every known id of the side and each tower, id row += old
bag(features) - new bag(features), and the new bags replace the old ones.

The item fit then chooses how new items are placed (ModelFeatures.neighbours, edgerec.model.features.new_rows): by
their bags alone, or by their k nearest known items; each k of NEIGHBOURS places the held-out items by the other
known items and ranks them as above, and also against the known items; the best Recall@10 among themselves decides,
among the k that rank them against the known items no worse than their bags alone (`place_new_items` runs this
step alone on a fitted model).

Measured on ML-1M NeuMF-8 with its user and item features over several holdout seeds
(benchmarks/results/cold_start_seeds.md, benchmarks/cold_fit.py): see those pages for what each side gains; warm
scores are unchanged.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
from torch import nn

from edgerec.data.features import PAD, Encoded, Side
from edgerec.data.split import Dataset
from edgerec.metrics import set_recall_ndcg
from edgerec.model.config import COLD_ITEM_EPOCHS
from edgerec.model.features import FeatureNCF, bag_outputs, placed, side_encodings

K = 10
NEIGHBOURS = (0, 5, 10, 20, 40)  # the k the item fit chooses among for placing new items (0: their bags alone)
# the choice keeps new items ranked against the known ones (HR@10 among 99 sampled known items) within this of the
# bags alone; its sample
MIXED_TOLERANCE = 0.005
MIXED_PAIRS = 5_000
# Adam's learning rate per side, measured on ML-1M NeuMF-8 (docs/data.md, cold users): the users' fit at 4e-3 keeps
# its first epoch and ranks held-out users worse with each more; 1e-3 ranks cold users better on the two holdout seeds
# it was picked on and on the mean of three others that checked it
LR = {"item": 4e-3, "user": 1e-3}
Logits = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class ColdFit:
    """How the cold fit of one side trains (FeaturesConfig.cold_item_epochs / cold_user_epochs set `epochs`; 0: no
    fit)."""

    side: Side = "item"
    epochs: int = COLD_ITEM_EPOCHS  # at most; the epoch whose held-out ids rank best is kept
    lr: float | None = None  # Adam's; None: the side's (LR)
    batch: int = 4096  # positives per step (each with its negatives)
    negatives: int = 4
    holdout: float = 0.1  # share of the side's ids kept out of the fit and ranked as new ones
    max_positives: int = 2_000_000  # per epoch (a seeded sample of the training interactions beyond this)
    max_judged_users: int = 2_000  # the held-out ranking's users and items (seeded samples beyond these)
    max_held_out: int = 1_000
    max_ranked_items: int = 4_000  # items each held-out user ranks (users' fit; a seeded sample beyond this)
    seed: int = 0


def fit_cold(model: FeatureNCF, ds: Dataset, cfg: ColdFit = ColdFit()) -> dict:
    """Fit `model`'s `cfg.side` bags for new ids of that side, in place (see the module docstring); every known
    pair's score stays the same. Returns the record of the fit: each epoch's held-out Recall@10 / NDCG@10, the kept
    epoch, for items the placement's choice (place_new_items' record) and seconds."""
    t_start = time.perf_counter()
    gen = torch.Generator().manual_seed(cfg.seed)
    t = ds.train
    _, indices, weights = side_encodings(model, cfg.side)
    rng, held, fit_rows, ranking = _holdout(model, ds, cfg)
    users = torch.from_numpy(t.users[fit_rows].astype(np.int64))
    items = torch.from_numpy(t.items[fit_rows].astype(np.int64))
    # negatives: items the fit may see (the held-out ones are new items in the items' fit)
    seen_items = np.unique(t.items)
    negatives = seen_items[~held[seen_items]] if cfg.side == "item" else seen_items
    pool = torch.from_numpy(negatives.astype(np.int64))
    # too few ids to hold some out and fit on the rest: no epoch, nothing changes
    epochs = cfg.epochs if len(users) and ranking.users else 0

    fresh = {name: copy.deepcopy(bag) for name, bag in model.bags().items() if name.endswith(f"_{cfg.side}")}
    with torch.no_grad():
        for bag in fresh.values():
            bag.weight.normal_(0.0, 0.01, generator=gen)
            bag.weight[PAD].zero_()
    was_training = model.training
    frozen = {p: p.requires_grad for p in model.parameters()}
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)

    def logits(u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        rows = model.represent(model.lookup(u, i), u, i)
        ids = i if cfg.side == "item" else u
        for name, bag in fresh.items():
            rows[name] = bag(indices[ids], per_sample_weights=weights[ids])
        return model.combine(rows)

    try:
        # the trained bags are no reference: the main training saw the held-out ids
        history: list[dict] = []
        best, best_epoch, kept = -1.0, 0, {}
        opt = torch.optim.Adam([bag.weight for bag in fresh.values()], lr=LR[cfg.side] if cfg.lr is None else cfg.lr)
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            order = torch.randperm(len(users), generator=gen)
            total = 0.0
            for s in range(0, len(order), cfg.batch):
                sel = order[s : s + cfg.batch]
                m = len(sel)
                u = users[sel].repeat(1 + cfg.negatives)
                negative = pool[torch.randint(0, len(pool), (m * cfg.negatives,), generator=gen)]
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
            _replace_bags(model, cfg.side, kept)
        placement = _choose_neighbours(model, ds, held, ranking, rng) if best_epoch and cfg.side == "item" else {}
    finally:
        for p, flag in frozen.items():
            p.requires_grad_(flag)
        model.train(was_training)
    return {
        "side": cfg.side,
        "kept_epoch": best_epoch,
        "held_out": int(held.sum()),
        "judged_users": ranking.users,
        "history": history,
        **placement,
        "seconds": round(time.perf_counter() - t_start, 2),
        "settings": asdict(cfg),
    }


def place_new_items(model: FeatureNCF, ds: Dataset, cfg: ColdFit = ColdFit()) -> dict:
    """The item fit's last step alone, on a model whose item bags are fitted already: choose how new items are
    placed (ModelFeatures.neighbours["item"]) on the same held-out items as `fit_cold(model, ds, cfg)` would hold
    out. Returns the choice's record (what the fit's record holds under "neighbours", "mixed" and
    "kept_neighbours")."""
    cfg = replace(cfg, side="item")
    rng, held, _, ranking = _holdout(model, ds, cfg)
    was_training = model.training
    model.eval()
    try:
        return _choose_neighbours(model, ds, held, ranking, rng)
    finally:
        model.train(was_training)


def _holdout(
    model: FeatureNCF, ds: Dataset, cfg: ColdFit
) -> tuple[np.random.Generator, np.ndarray, np.ndarray, _HeldOut]:
    """The seeded draws of a fit (in this order): the held-out ids, the fit's positives and the held-out ranking; the
    generator is returned for the draws after them."""
    rng = np.random.default_rng(cfg.seed)
    own = ds.train.items if cfg.side == "item" else ds.train.users  # the fitted side's index of each interaction
    seen = np.unique(own)
    held = np.zeros(side_encodings(model, cfg.side)[0], dtype=bool)
    held[rng.choice(seen, size=min(cfg.max_held_out, max(1, round(cfg.holdout * len(seen)))), replace=False)] = True
    fit_rows = np.flatnonzero(~held[own])
    if len(fit_rows) > cfg.max_positives:
        fit_rows = np.sort(rng.choice(fit_rows, size=cfg.max_positives, replace=False))
    ranking = _HeldOut.items(ds, held, cfg, rng) if cfg.side == "item" else _HeldOut.users(ds, held, cfg, rng)
    return rng, held, fit_rows, ranking


@torch.no_grad()
def _choose_neighbours(
    model: FeatureNCF, ds: Dataset, held: np.ndarray, ranking: _HeldOut, rng: np.random.Generator
) -> dict:
    """How new items are placed (ModelFeatures.neighbours["item"], edgerec.model.features.new_rows). Each k of
    NEIGHBOURS (0: their bags alone) places the held-out items, by their k nearest other known items, and they are
    ranked twice: among themselves as the fit's epochs rank them (Recall@10), and each of their training
    interactions among 99 sampled other known items (HR@10: new items against the catalog they join). The k ranking
    them best among themselves is kept among those that rank them against the catalog no worse than the bags alone
    (MIXED_TOLERANCE); 0 on a tie."""
    enc = model.features.encoded["item"]
    ids = np.flatnonzero(held)
    pool = np.flatnonzero(~held)
    mixed = _Mixed(ds, held, pool, rng)
    new = Encoded(enc.indices[ids], enc.weights[ids])
    own = bag_outputs(model, "item", torch.from_numpy(new.indices), torch.from_numpy(new.weights))
    scores, against = {}, {}
    for k in NEIGHBOURS:
        table = {}  # the held-out items' rows, by item table
        for name, rows in (placed(model, "item", new, k, pool) if k else own).items():
            table[name] = torch.zeros(model.arch.n_items, rows.shape[1])
            table[name][ids] = rows

        def logits(u: torch.Tensor, i: torch.Tensor, table: dict[str, torch.Tensor] = table) -> torch.Tensor:
            rows = model.represent(model.lookup(u, i), u, i)
            on = torch.from_numpy(held)[i][:, None]  # only the held-out items take the placed rows
            return model.combine({**rows, **{name: torch.where(on, t[i], rows[name]) for name, t in table.items()}})

        scores[k], against[k] = ranking.measure(logits)["recall@10"], mixed.measure(logits)
    allowed = [k for k in NEIGHBOURS if against[k] >= against[0] - MIXED_TOLERANCE]
    kept = max(allowed, key=lambda k: (scores[k], -k))
    model.features = replace(model.features, neighbours={**model.features.neighbours, "item": kept})
    return {
        "neighbours": {str(k): v for k, v in scores.items()},
        "mixed": {str(k): v for k, v in against.items()},
        "kept_neighbours": kept,
    }


class _Mixed:
    """Held-out items against the catalog they join: each of a seeded sample of their training interactions (at most
    MIXED_PAIRS) with 99 items sampled from the other known items; HR@10."""

    def __init__(self, ds: Dataset, held: np.ndarray, pool: np.ndarray, rng: np.random.Generator) -> None:
        rows = np.flatnonzero(held[ds.train.items])
        if len(rows) > MIXED_PAIRS:
            rows = np.sort(rng.choice(rows, size=MIXED_PAIRS, replace=False))
        self.users = torch.from_numpy(ds.train.users[rows].astype(np.int64))
        negatives = pool[rng.integers(0, len(pool), (len(rows), 99))] if len(pool) else np.zeros((len(rows), 0), int)
        items = np.concatenate([ds.train.items[rows][:, None], negatives], axis=1)
        self.items = torch.from_numpy(items.astype(np.int64))

    def measure(self, logits: Logits) -> float:
        if not len(self.users):
            return 0.0
        m = self.items.shape[1]
        scores = logits(self.users.repeat_interleave(m), self.items.reshape(-1)).reshape(-1, m)
        return float(((scores[:, 1:] >= scores[:, :1]).sum(dim=1) < K).float().mean())


@torch.no_grad()
def _replace_bags(model: FeatureNCF, side: Side, new: dict[str, torch.Tensor]) -> None:
    """The new bag weights in, each known id's rows of `side` moved by old bag(features) - new bag(features)."""
    n, indices, weights = side_encodings(model, side)
    for name, bag in model.bags().items():
        if name not in new:
            continue
        table = getattr(model, name)
        replacement = nn.EmbeddingBag.from_pretrained(new[name], freeze=True, mode="sum", padding_idx=PAD)
        for s in range(0, n, 1 << 16):
            rows = slice(s, min(s + (1 << 16), n))
            old = bag(indices[rows], per_sample_weights=weights[rows])
            table.weight[rows] += old - replacement(indices[rows], per_sample_weights=weights[rows])
        bag.weight.copy_(new[name])


class _HeldOut:
    """A ranking of held-out ids as new ones: judged users each rank the same candidate items; Recall@10 /
    NDCG@10 against their training interactions."""

    def __init__(self, ds: Dataset, judged: np.ndarray, candidates: np.ndarray) -> None:
        t = ds.train
        row = np.full(ds.n_users, -1)
        row[judged] = np.arange(len(judged))
        col = np.full(ds.n_items, -1)
        col[candidates] = np.arange(len(candidates))
        keep = (row[t.users] >= 0) & (col[t.items] >= 0)
        self.relevant = np.zeros((len(judged), len(candidates)), dtype=bool)
        self.relevant[row[t.users[keep]], col[t.items[keep]]] = True
        self.judged, self.candidates, self.users = judged, candidates, len(judged)

    @classmethod
    def items(cls, ds: Dataset, held: np.ndarray, cfg: ColdFit, rng: np.random.Generator) -> _HeldOut:
        """Each user who interacted with a held-out item (a seeded sample beyond max_judged_users) ranks every
        held-out item."""
        judged = np.unique(ds.train.users[held[ds.train.items]])
        if len(judged) > cfg.max_judged_users:
            judged = np.sort(rng.choice(judged, size=cfg.max_judged_users, replace=False))
        return cls(ds, judged, np.flatnonzero(held))

    @classmethod
    def users(cls, ds: Dataset, held: np.ndarray, cfg: ColdFit, rng: np.random.Generator) -> _HeldOut:
        """Each held-out user ranks every item with interactions (a seeded sample beyond max_ranked_items)."""
        items = np.unique(ds.train.items)
        if len(items) > cfg.max_ranked_items:
            items = np.sort(rng.choice(items, size=cfg.max_ranked_items, replace=False))
        return cls(ds, np.flatnonzero(held), items)

    @torch.no_grad()
    def measure(self, logits: Logits) -> dict[str, float]:
        """Recall@10 / NDCG@10 of the candidates scored by `logits(users, items)`."""
        u = torch.from_numpy(np.repeat(self.judged, len(self.candidates)).astype(np.int64))
        i = torch.from_numpy(np.tile(self.candidates, len(self.judged)).astype(np.int64))
        step = 1 << 18
        scores = torch.cat([logits(u[s : s + step], i[s : s + step]) for s in range(0, len(u), step)]).numpy()
        got = set_recall_ndcg(scores.reshape(self.relevant.shape), self.relevant, K)
        return {"recall@10": float(got["recall@10"]), "ndcg@10": float(got["ndcg@10"])}
