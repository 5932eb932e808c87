"""The rating objective's data: every rated interaction of a Dataset, split at random (seeded) into train,
validation and test rows. numpy only.

The rows are the Dataset's training interactions and its held-out test interactions, each once, with their ratings
(duplicates were already removed when the data was loaded). For the NCF split that is the train file's rows plus
the test file's rows; for data split by leave-one-out, every interaction of the file. The test negatives are not
rows: they have no rating. Of all rows TEST_SHARE are the test rows; of the rest VALIDATION_SHARE are the validation
rows early stopping reads; the others are trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgerec.data.split import Dataset
from edgerec.errors import EdgerecError

TEST_SHARE = 0.1  # of all rated rows: the held-out rows RMSE / MAE are reported on
VALIDATION_SHARE = 0.05  # of the other 90 %: model selection and early stopping


@dataclass(frozen=True)
class Ratings:
    """Rated (user, item) pairs over a Dataset's dense indices."""

    users: np.ndarray  # [n] int64
    items: np.ndarray  # [n] int64
    ratings: np.ndarray  # [n] float32

    def __len__(self) -> int:
        return len(self.users)

    def subset(self, rows: np.ndarray) -> Ratings:
        return Ratings(self.users[rows], self.items[rows], self.ratings[rows])


@dataclass(frozen=True)
class RatingSplit:
    train: Ratings
    val: Ratings
    test: Ratings

    def summary(self) -> dict[str, int | float | str]:
        return {
            "protocol": f"ratings: seeded {1 - TEST_SHARE:.0%}/{TEST_SHARE:.0%} split of every rated interaction",
            "train_ratings": len(self.train),
            "validation_ratings": len(self.val),
            "test_ratings": len(self.test),
        }


def require_implicit(objective: str, what: str, step: str) -> None:
    """Refuse a rating model where a step needs implicit-feedback scores (a logit per pair: sampled-negative
    fine-tuning, distillation, export's parity and ranking checks, fold-in)."""
    if objective != "implicit":
        raise EdgerecError(
            f"{what}: a rating model (objective {objective}) outputs a predicted rating, not an implicit-feedback "
            f"score; only implicit models for {step} (train with the implicit objective)"
        )


def rated_rows(ds: Dataset) -> Ratings:
    """Every rated interaction of ds: train rows then test rows. Refused in one line when the data has no ratings,
    or when they are all the same value (implicit data written with a constant rating column)."""
    t = ds.train
    if t.ratings is None or (ds.test_ratings is None and len(ds.test_users)):
        raise EdgerecError(
            f"{ds.name}: the data has no ratings: the rating objective needs a rating for every interaction (a rating "
            "column, or ratings.dat / u.data); train the implicit objective instead"
        )
    test = ds.test_ratings if ds.test_ratings is not None else np.zeros(0, np.float32)
    ratings = np.concatenate([t.ratings, test]).astype(np.float32)
    if not np.isfinite(ratings).all():
        raise EdgerecError(f"{ds.name}: a rating is not a finite number")
    if len(ratings) < 20 or ratings.min() == ratings.max():
        raise EdgerecError(
            f"{ds.name}: nothing to regress: {len(ratings)} ratings, all {float(ratings[0]):g}; the rating objective "
            "needs ratings that vary (implicit data: train the implicit objective)"
        )
    return Ratings(np.concatenate([t.users, ds.test_users]), np.concatenate([t.items, ds.test_items]), ratings)


def split_ratings(ds: Dataset, seed: int) -> RatingSplit:
    """ds's rated rows split at random by `seed`: TEST_SHARE test, VALIDATION_SHARE of the rest validation."""
    rows = rated_rows(ds)
    order = np.random.default_rng([seed, 90_10]).permutation(len(rows))
    n_test = round(TEST_SHARE * len(rows))
    n_val = round(VALIDATION_SHARE * (len(rows) - n_test))
    test, val, train = np.split(order, [n_test, n_test + n_val])
    return RatingSplit(rows.subset(np.sort(train)), rows.subset(np.sort(val)), rows.subset(np.sort(test)))
