"""Leave-one-out splits, the NCF sampled-negatives test protocol, and negative sampling for training."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from edgerec.data.interactions import Interactions, fingerprint
from edgerec.errors import EdgerecError

log = logging.getLogger(__name__)

N_TEST_NEGATIVES = 99  # the NCF paper's protocol


@dataclass(frozen=True)
class Dataset:
    """A train set plus one held-out item per test user and that user's sampled negatives.

    negatives may list the test item itself (a quirk of the original ML-1M files); metrics skip such entries,
    as the paper's evaluation code does.
    """

    name: str
    train: Interactions
    test_users: np.ndarray  # [T] int64
    test_items: np.ndarray  # [T] int64
    test_negatives: np.ndarray  # [T, N] int64
    test_ratings: np.ndarray | None = None  # [T] float32: the held-out interactions' ratings, when the data has them

    @property
    def n_users(self) -> int:
        return self.train.n_users

    @property
    def n_items(self) -> int:
        return self.train.n_items

    def fingerprint(self) -> str:
        t = self.train
        return fingerprint(
            t.users, t.items, t.user_ids, t.item_ids, self.test_users, self.test_items, self.test_negatives
        )

    def test_sample(self, n: int, seed: int = 0) -> Dataset:
        """The same train set with a seeded sample of n test users (all of them when there are at most n)."""
        if len(self.test_users) <= n:
            return self
        rows = np.sort(np.random.default_rng(seed).choice(len(self.test_users), size=n, replace=False))
        ratings = None if self.test_ratings is None else self.test_ratings[rows]
        return Dataset(
            self.name, self.train, self.test_users[rows], self.test_items[rows], self.test_negatives[rows], ratings
        )

    def summary(self) -> dict[str, int | str]:
        return {
            "name": self.name,
            "users": self.n_users,
            "items": self.n_items,
            "train_interactions": len(self.train),
            "test_users": len(self.test_users),
            "negatives_per_user": int(self.test_negatives.shape[1]),
        }


def positive_keys(inter: Interactions) -> np.ndarray:
    """Sorted unique keys user * n_items + item of every known positive (for fast membership tests)."""
    return np.unique(inter.keys())


def is_member(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Elementwise: is keys[k] in sorted_keys (sorted, unique)? Vectorised binary search."""
    if len(sorted_keys) == 0:
        return np.zeros(keys.shape, dtype=bool)
    pos = np.searchsorted(sorted_keys, keys)
    pos = np.minimum(pos, len(sorted_keys) - 1)
    return sorted_keys[pos] == keys


def sample_negatives(
    users: np.ndarray, n_items: int, n_neg: int, known: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """[len(users), n_neg] items drawn uniformly with replacement among items each user has no known positive for.

    Rejection sampling, fully vectorised: draw, find the draws that hit a positive, redraw just those. Users who
    have interacted with every item would loop forever, so they are refused.
    """
    out = rng.integers(0, n_items, size=(len(users), n_neg), dtype=np.int64)
    u = np.repeat(users, n_neg).reshape(out.shape)
    bad = is_member(known, u * n_items + out)
    for _ in range(1000):
        if not bad.any():
            return out
        out[bad] = rng.integers(0, n_items, size=int(bad.sum()), dtype=np.int64)
        bad[bad] = is_member(known, u[bad] * n_items + out[bad])
    raise EdgerecError("negative sampling did not converge: some users have interacted with (almost) every item")


def sample_distinct_negatives(
    users: np.ndarray, n_items: int, n_neg: int, known: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """[len(users), n_neg] distinct negatives per user (the test protocol samples without replacement)."""
    out = sample_negatives(users, n_items, n_neg, known, rng)
    for _ in range(1000):
        srt = np.sort(out, axis=1)
        dup_rows = np.nonzero((srt[:, 1:] == srt[:, :-1]).any(axis=1))[0]
        if len(dup_rows) == 0:
            return out
        for r in dup_rows:  # rare: few rows, a few redraws each
            row = out[r]
            _, first = np.unique(row, return_index=True)
            mask = np.ones(n_neg, dtype=bool)
            mask[first] = False
            row[mask] = sample_negatives(np.full(int(mask.sum()), users[r]), n_items, 1, known, rng).ravel()
    raise EdgerecError("could not sample distinct negatives: too few items that the users have not interacted with")


def leave_one_out(
    inter: Interactions,
    *,
    seed: int = 0,
    n_neg: int = N_TEST_NEGATIVES,
    name: str = "data",
    known: np.ndarray | None = None,
) -> Dataset:
    """Hold out each user's latest interaction (random, seeded, when there are no timestamps) as the test item.

    Ties on the latest timestamp go to the row that comes last in the file. Users with fewer than two interactions
    stay in train only; users with fewer than n_neg unseen items cannot be evaluated on the sampled protocol and are
    also excluded from the test set. Both counts are logged. Test negatives avoid every positive in `known`
    (positive_keys of a larger set that `inter` is part of; default: inter's own).
    """
    rng = np.random.default_rng(seed)
    n = len(inter)
    if inter.timestamps is not None:
        tiebreak = np.arange(n)
        order = np.lexsort((tiebreak, inter.timestamps, inter.users))  # by user, then time, then row
    else:
        order = np.lexsort((rng.random(n), inter.users))  # by user, random within user
    users_sorted = inter.users[order]
    last_of_user = np.r_[users_sorted[1:] != users_sorted[:-1], True]
    counts = inter.user_counts()
    candidates = order[last_of_user]  # row index of each user's latest interaction
    cand_users = inter.users[candidates]
    seen = counts[cand_users]
    known_counts = counts if known is None else np.bincount(known // inter.n_items, minlength=inter.n_users)
    ok = (seen >= 2) & (inter.n_items - known_counts[cand_users] >= n_neg)
    too_few = int((seen < 2).sum())
    too_many = int(((seen >= 2) & ~ok).sum())
    if too_few:
        log.warning("%s: %d users with fewer than two interactions are kept out of the test set", name, too_few)
    if too_many:
        log.warning("%s: %d users with fewer than %d unseen items are kept out of the test set", name, too_many, n_neg)
    test_rows = candidates[ok]
    if len(test_rows) == 0:
        raise EdgerecError(
            f"{name}: no user can be held out for testing: each needs two or more interactions and at least "
            f"{n_neg} items they have not interacted with"
        )
    train_mask = np.ones(n, dtype=bool)
    train_mask[test_rows] = False
    train = inter.subset(train_mask)
    test_users, test_items = inter.users[test_rows], inter.items[test_rows]
    known = positive_keys(inter) if known is None else known
    negatives = sample_distinct_negatives(test_users, inter.n_items, n_neg, known, rng)
    order = np.argsort(test_users)
    ratings = None if inter.ratings is None else inter.ratings[test_rows][order]
    return Dataset(name, train, test_users[order], test_items[order], negatives[order], ratings)
