"""int8 calibration: a popularity-stratified calibration set and streaming range observers.

Observers see activations batch by batch and keep bounded state (a running max and a fixed-size histogram of |x|
whose range doubles, merging bins, when a larger value arrives), so memory does not grow with the calibration set.
All produce a symmetric clipping threshold `amax` (scale = amax / 127, zero point 0), the form TensorRT and TFLite
int8 kernels expect for activations.
"""

from __future__ import annotations

from typing import get_args

import numpy as np

from edgerec.compression.config import DEFAULT_OBSERVER
from edgerec.compression.config import Observer as ObserverName
from edgerec.data.split import Dataset, positive_keys, sample_negatives
from edgerec.errors import EdgerecError

OBSERVERS: tuple[str, ...] = get_args(ObserverName)
MIN_CALIBRATION = 64


def calibration_set(ds: Dataset, size: int, negatives: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """([size] users, [size] items): positives drawn equally from the head, torso and tail thirds of the items
    (by interaction count), plus `negatives` sampled negatives per positive, so the observers see both the
    frequent and the rare embedding rows and scores on both sides of the decision boundary."""
    if size < MIN_CALIBRATION:
        raise EdgerecError(f"calibration set size must be at least {MIN_CALIBRATION}; got {size}")
    if len(ds.train) == 0:
        raise EdgerecError("the calibration set is empty: the data has no training interactions")
    rng = np.random.default_rng(seed)
    counts = ds.train.item_counts()
    order = np.argsort(-counts, kind="stable")
    stratum = np.empty(ds.n_items, dtype=np.int64)
    stratum[order] = np.minimum(3 * np.arange(ds.n_items) // ds.n_items, 2)  # 0 head, 1 torso, 2 tail
    n_pos = max(3, size // (1 + negatives))
    rows = []
    row_stratum = stratum[ds.train.items]
    for s in range(3):
        idx = np.nonzero(row_stratum == s)[0]
        if len(idx):
            rows.append(rng.choice(idx, size=n_pos // 3 + (s < n_pos % 3), replace=len(idx) < n_pos // 3 + 1))
    pos = np.concatenate(rows)
    users, items = ds.train.users[pos], ds.train.items[pos]
    negs = sample_negatives(users, ds.n_items, negatives, positive_keys(ds.train), rng)
    u = np.concatenate([users, np.repeat(users, negatives)])[:size]
    i = np.concatenate([items, negs.ravel()])[:size]
    return u, i


class Observer:
    """Streaming observer of one tensor's values; `threshold()` gives the symmetric clipping range amax."""

    BINS = 2048

    def __init__(self, method: str = DEFAULT_OBSERVER, percentile: float = 99.99) -> None:
        if method not in OBSERVERS:
            raise EdgerecError(f"observer must be one of {', '.join(OBSERVERS)}; got {method!r}")
        self.method, self.percentile = method, percentile
        self.amax = 0.0
        self.hist = np.zeros(self.BINS, dtype=np.float64)
        self.edge = 0.0  # histogram covers |x| in [0, edge]
        self.count = 0

    def update(self, x: np.ndarray) -> None:
        a = np.abs(np.asarray(x, dtype=np.float64).ravel())
        if a.size == 0:
            return
        if not np.isfinite(a).all():
            raise EdgerecError("calibration saw NaN or infinite activations: the model is broken")
        self.count += a.size
        top = float(a.max())
        self.amax = max(self.amax, top)
        if self.method == "minmax":
            return
        if self.edge == 0.0:
            self.edge = top if top > 0 else 1.0
        while top > self.edge:  # double the range: merge bin pairs into the lower half
            self.hist = np.concatenate([self.hist.reshape(-1, 2).sum(axis=1), np.zeros(self.BINS // 2)])
            self.edge *= 2
        self.hist += np.histogram(a, bins=self.BINS, range=(0.0, self.edge))[0]

    def threshold(self) -> float:
        if self.count == 0:
            raise EdgerecError("an observer saw no data: the calibration set is empty")
        if self.method == "minmax" or self.amax == 0.0:
            return self.amax
        width = self.edge / self.BINS
        if self.method == "percentile":
            cdf = np.cumsum(self.hist) / self.hist.sum()
            k = int(np.searchsorted(cdf, self.percentile / 100.0))
            return min(self.amax, (k + 1) * width)
        return min(self.amax, (entropy_threshold_bin(self.hist) + 0.5) * width)


def entropy_threshold_bin(hist: np.ndarray, levels: int = 128) -> int:
    """TensorRT's entropy calibration: the bin count i (>= levels) whose clipped-and-requantised distribution
    has the least KL divergence from the observed one."""
    hist = hist.astype(np.float64)
    last = int(np.nonzero(hist)[0][-1]) + 1 if hist.any() else len(hist)
    best_i, best_kl = last, np.inf
    for i in range(levels, max(levels, last) + 1, 8):
        p = hist[:i].copy()
        p[i - 1] += hist[i:].sum()  # outliers clipped into the last bin
        # quantise the i bins into `levels` groups, spread each group's mass over its non-empty bins
        groups = np.array_split(np.arange(i), levels)
        q = np.zeros(i)
        for g in groups:  # Q comes from the bins without the clipped outliers (TensorRT's algorithm)
            nz = hist[g] > 0
            if nz.any():
                q[g[nz]] = hist[g].sum() / nz.sum()
        ps, qs = p.sum(), q.sum()
        if ps == 0 or qs == 0:
            continue
        p, q = p / ps, q / qs
        mask = p > 0
        kl = float(np.sum(p[mask] * np.log(p[mask] / np.maximum(q[mask], 1e-12))))
        if kl < best_kl:
            best_i, best_kl = i, kl
    return best_i - 1
