"""Fold-in of unseen users: hand-written gradients match finite differences; folding in recovers a useful user."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import edgerec
from edgerec.errors import EdgerecError
from edgerec.model.ncf import NCF, NCFArch
from edgerec.runtime.config import FoldInConfig
from edgerec.runtime.foldin import ItemSide, fold_in


def side_of(model: NCF) -> ItemSide:
    return ItemSide.of({k: v.detach().numpy().astype(np.float64) for k, v in model.state_dict().items()})


def test_gradients_match_finite_differences() -> None:
    torch.manual_seed(0)
    model = NCF(NCFArch.paper("neumf", 10, 60, 4))
    side = side_of(model)
    rng = np.random.default_rng(0)
    p, q = rng.normal(0, 0.3, side.g), rng.normal(0, 0.3, side.d)
    items, labels = rng.integers(0, 60, 12), (rng.random(12) < 0.4).astype(float)

    def loss(p, q):
        logit, _ = side.logits(p, q, items)
        prob = 1 / (1 + np.exp(-logit))
        return -np.mean(labels * np.log(prob) + (1 - labels) * np.log(1 - prob))

    gp, gq = side.grads(p, q, items, labels)
    eps = 1e-6
    num_p = [(loss(p + eps * e, q) - loss(p - eps * e, q)) / (2 * eps) for e in np.eye(side.g)]
    num_q = [(loss(p, q + eps * e) - loss(p, q - eps * e)) / (2 * eps) for e in np.eye(side.d)]
    assert np.allclose(gp, num_p, atol=1e-7) and np.allclose(gq, num_q, atol=1e-7)


def test_logits_equal_the_neumf_forward() -> None:
    torch.manual_seed(1)
    model = NCF(NCFArch.paper("neumf", 10, 60, 8)).eval()
    side = side_of(model)
    with torch.no_grad():
        ref = model(torch.full((60,), 3), torch.arange(60)).numpy()
    got, _ = side.logits(
        model.gmf_user.weight[3].detach().numpy(), model.mlp_user.weight[3].detach().numpy(), np.arange(60)
    )
    assert np.abs(got - ref).max() < 1e-5


def test_fold_in_ranks_the_users_items_above_the_rest(ckpt, ds) -> None:
    side = ItemSide.from_checkpoint(ckpt)
    user = int(ds.test_users[0])
    items = ds.train.items[ds.train.users == user]
    p, q = fold_in(side, items, FoldInConfig(steps=200))
    logits, _ = side.logits(p.astype(np.float64), q.astype(np.float64), np.arange(ds.n_items))
    others = np.setdiff1d(np.arange(ds.n_items), items)
    assert logits[items].mean() > logits[others].mean()
    assert edgerec.load(ckpt).model.arch.gmf_dim == len(p)


def test_fold_in_refuses_bad_items(ckpt) -> None:
    side = ItemSide.from_checkpoint(ckpt)
    with pytest.raises(EdgerecError, match="at least one"):
        fold_in(side, [])
    with pytest.raises(EdgerecError, match="items must lie in"):
        fold_in(side, [0, side.n_items])


def test_a_fold_in_from_a_start_is_pulled_toward_it() -> None:
    """With a start, cfg.pull keeps the fitted vectors nearer to it (monotone in the pull); without a start the pull
    changes nothing (the seeded fold-in is today's)."""
    from edgerec.runtime.foldin import fold_in_fixed

    torch.manual_seed(0)
    side = side_of(NCF(NCFArch.paper("neumf", 10, 60, 4)))
    rng = np.random.default_rng(1)
    start = (rng.normal(0, 0.5, side.g), rng.normal(0, 0.5, side.d))
    negatives = np.arange(20, 60)
    distances = []
    for pull in (0.0, 0.1, 1.0, 10.0):
        cfg = FoldInConfig(steps=40, lr=0.05, pull=pull)
        p, q = fold_in_fixed(side, [1, 2, 3], negatives, cfg, start=start)
        distances.append(np.linalg.norm(np.concatenate([p - start[0], q - start[1]])))
        seeded = fold_in_fixed(side, [1, 2, 3], negatives, cfg)
        assert np.array_equal(seeded[0], fold_in_fixed(side, [1, 2, 3], negatives, FoldInConfig(steps=40, lr=0.05))[0])
        again = fold_in(side, [1, 2, 3], FoldInConfig(steps=20, pull=pull), start=start)
        assert np.isfinite(again[0]).all()
    assert distances == sorted(distances, reverse=True) and distances[-1] < 0.5 * distances[0], distances
