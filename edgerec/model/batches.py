"""An epoch's training samples: every positive with freshly sampled negatives, shuffled, cut into batches.

Kept apart from the training loop because its memory bound (EPOCH_CHUNK) and its draws from the generator are what
make a seed reproduce a run: the loop only consumes the batches.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from edgerec.data.split import sample_negatives

EPOCH_CHUNK = 1 << 22  # positives whose negatives are drawn and shuffled together: bounds an epoch's memory

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # users, items, labels


def _epoch_arrays(
    users: np.ndarray, items: np.ndarray, n_items: int, known: np.ndarray, neg: int, rng: np.random.Generator
) -> Batch:
    """Positives plus `neg` fresh negatives each, shuffled: ([S] users, [S] items, [S] labels)."""
    negs = sample_negatives(users, n_items, neg, known, rng)  # [P, neg]
    u = np.concatenate([users, np.repeat(users, neg)])
    i = np.concatenate([items, negs.ravel()])
    y = np.concatenate([np.ones(len(users), np.float32), np.zeros(negs.size, np.float32)])
    perm = rng.permutation(len(u))
    return torch.from_numpy(u[perm]), torch.from_numpy(i[perm]), torch.from_numpy(y[perm])


def epoch_batches(
    users: np.ndarray,
    items: np.ndarray,
    n_items: int,
    known: np.ndarray,
    neg: int,
    rng: np.random.Generator,
    batch: int,
    limit: int,
) -> Iterator[Batch]:
    """An epoch's batches, at most `limit` samples in all. Up to EPOCH_CHUNK positives the epoch is one shuffled
    array; beyond, the positives are shuffled and taken EPOCH_CHUNK at a time (their negatives drawn and the chunk
    shuffled as it comes), so memory stays bounded at any data size. `known`: the positive keys negatives avoid."""
    if len(users) <= EPOCH_CHUNK:
        chunks: Iterator[Batch] = iter([_epoch_arrays(users, items, n_items, known, neg, rng)])
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
