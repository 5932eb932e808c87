"""The statistics of an A/B report: user-level estimates, the sample-ratio check, the sequential test, sample sizes.

- A metric per arm is a ratio of per-user sums (CTR: clicks / impressions) or a per-user mean (conversion: the share
  of exposed users who purchased); users, not impressions, are the independent units, so the variance of a ratio
  comes from the delta method over users (Deng, Knoblich, Lu 2018, "Applying the Delta Method in Metric
  Analytics", KDD).
- Sample ratio mismatch: Pearson's chi-square of the users per arm against the configured split (Fabijan et al.
  2019, "Diagnosing Sample Ratio Mismatch in Online Controlled Experiments", KDD): a broken assignment or a
  logging loss in one arm shows there first.
- The sequential test is the mixture sequential probability ratio test (mSPRT) with a normal mixing distribution
  over the difference, on its normal approximation (Johari, Koomen, Pekelis, Walsh 2017, "Peeking at A/B Tests:
  Why it matters, and what to do about it", KDD; Johari, Pekelis, Walsh 2022, "Always Valid Inference", Operations
  Research): its p-value and confidence interval hold at every look, however often the report is read, so a
  decision taken at the first look where p <= alpha keeps its error rate alpha.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

Z = NormalDist()


@dataclass(frozen=True)
class Estimate:
    """One arm's metric: its value and the variance of that value (delta method over `users`)."""

    value: float
    variance: float
    users: int

    def interval(self, alpha: float) -> tuple[float, float]:
        h = Z.inv_cdf(1 - alpha / 2) * math.sqrt(self.variance)
        return self.value - h, self.value + h


def ratio(num: np.ndarray, den: np.ndarray) -> Estimate:
    """sum(num) / sum(den) over users, and its delta-method variance (users with den 0 count in both sums)."""
    n = len(num)
    x, y = np.asarray(num, np.float64), np.asarray(den, np.float64)
    if n < 2 or y.sum() <= 0:
        return Estimate(float("nan"), float("nan"), n)
    mx, my = x.mean(), y.mean()
    c = np.cov(x, y, ddof=1)
    var = (c[0, 0] / my**2 - 2 * mx * c[0, 1] / my**3 + mx**2 * c[1, 1] / my**4) / n
    return Estimate(float(mx / my), float(max(var, 0.0)), n)


def mean(values: np.ndarray) -> Estimate:
    """A per-user mean (a share, for 0 / 1 values) and its variance."""
    n = len(values)
    if n < 2:
        return Estimate(float("nan"), float("nan"), n)
    v = np.asarray(values, np.float64)
    return Estimate(float(v.mean()), float(v.var(ddof=1) / n), n)


def srm(counts: list[int], shares: list[float]) -> tuple[float, float]:
    """Pearson's chi-square of `counts` against the expected `shares`, and its p-value (k - 1 degrees of freedom;
    k = 2 here: the chi-square survival function with one degree of freedom is erfc(sqrt(x / 2)))."""
    total = sum(counts)
    if total == 0:
        return 0.0, 1.0
    chi2 = sum((c - total * s) ** 2 / (total * s) for c, s in zip(counts, shares, strict=True))
    if len(counts) != 2:
        raise ValueError("the sample-ratio check is implemented for two arms")
    return float(chi2), float(math.erfc(math.sqrt(chi2 / 2)))


def msprt(diff: float, variance: float, tau: float, alpha: float) -> tuple[float, float]:
    """The normal-mixture mSPRT at one look: (likelihood ratio Lambda of H0 "no difference" against the mixture
    N(0, tau^2) of alternatives, half-width of the always-valid (1 - alpha) interval around `diff`).

    Lambda = sqrt(V / (V + tau^2)) exp(tau^2 diff^2 / (2 V (V + tau^2))), V the variance of `diff`; the always-valid
    p-value is the running minimum of 1 / Lambda over the looks so far."""
    if not (variance > 0 and tau > 0) or math.isnan(diff):
        return 1.0, float("inf")
    v, t2 = variance, tau * tau
    log_lambda = 0.5 * math.log(v / (v + t2)) + t2 * diff * diff / (2 * v * (v + t2))
    half = math.sqrt(v * (v + t2) / t2 * (math.log((v + t2) / v) - 2 * math.log(alpha)))
    return math.exp(min(log_lambda, 700.0)), half


def sample_size(user_variance: float, effect: float, alpha: float, power: float) -> int | None:
    """Users per arm for a fixed-horizon two-sided test at `alpha` to detect `effect` (absolute) with `power`, given
    the variance of one user's contribution to the metric (n x the estimate's variance)."""
    if not (user_variance > 0 and effect > 0):
        return None
    z = Z.inv_cdf(1 - alpha / 2) + Z.inv_cdf(power)
    return math.ceil(2 * user_variance * z * z / (effect * effect))
