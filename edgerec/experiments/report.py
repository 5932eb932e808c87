"""The report of an A/B test from the feedback event log: per arm users, impressions, clicks, purchases, CTR and
conversion with intervals, the difference, the sample-ratio check, the sequential decision and the sample size.

Every event names the model version that produced what it is about (`version`, set by the app from the answer it
showed); the experiment says which version is arm A (the live one, control) and which is arm B (the candidate).
Events of other versions, or without one, are counted as unattributed. A user is exposed in an arm from their first
impression there. The test is evaluated at every multiple of `look_s` seconds of the log's event times, and at its
end: the always-valid p-value is the running minimum over those looks (edgerec.experiments.stats), the decision the
first look where it falls to alpha or below while the sample ratio holds. numpy only.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgerec.errors import EdgerecError
from edgerec.experiments import stats
from edgerec.experiments.assign import ARMS
from edgerec.experiments.config import ExperimentConfig
from edgerec.io import SavesJson

MAX_LOOKS = 1000  # beyond, looks are spaced by a multiple of look_s
KINDS = {"impression": 0, "click": 1, "purchase": 2}


@dataclass(frozen=True)
class ArmReport:
    arm: str
    version: str
    users: int  # exposed: at least one impression in this arm
    impressions: int
    clicks: int
    purchases: int
    ctr: float
    ctr_interval: tuple[float, float]
    conversion: float  # the share of exposed users with a purchase
    conversion_interval: tuple[float, float]


@dataclass(frozen=True)
class Look:
    ts: int
    users: tuple[int, int]
    difference: float  # B - A
    p_value: float  # always valid: the running minimum of 1 / Lambda
    srm_p: float


@dataclass(frozen=True)
class ExperimentReport(SavesJson):
    metric: str
    arms: tuple[ArmReport, ArmReport]
    difference: float  # B - A on the metric
    relative: float  # difference / A's value
    interval: tuple[float, float]  # fixed-horizon (1 - alpha) interval of the difference: valid for one look only
    always_valid_interval: tuple[float, float]  # valid however often the report is read
    p_value: float  # always valid
    srm_chi2: float
    srm_p: float
    srm_flagged: bool
    decision: str  # "B" / "A": that arm is better; "none": no decision yet; "invalid": the split is broken
    decided_at: int | None  # the event time of the look that decided
    sample_size: int | None  # users per arm a fixed-horizon test needs for the mde at A's rate
    looks: tuple[Look, ...]
    unattributed: int  # events of no arm's version (or of a type other than impression, click, purchase)
    crossed_users: int  # users exposed in both arms
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def message(self) -> str:
        """The decision in words."""
        a, b = self.arms
        if self.decision == "invalid":
            return (
                f"invalid: sample ratio mismatch (users A {a.users:,}, B {b.users:,}; chi-square {self.srm_chi2:.1f}, "
                f"p = {self.srm_p:.2g}): the assignment or the logging is broken, do not read the result"
            )
        if self.decision == "none":
            need = ""
            if self.sample_size:
                need = f"; about {self.sample_size:,} users per arm detect a {self.config['mde']:.0%} change"
            return f"no decision yet (always-valid p = {self.p_value:.3f}){need}"
        winner = a if self.decision == "A" else b
        return (f"{winner.arm} (version {winner.version}) is better on {self.metric}: {self.relative:+.1%} "
                f"(always-valid p = {self.p_value:.2g})")  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["message"] = self.message
        return _finite(out)


def _finite(x: Any) -> Any:
    """NaN / infinity as null (JSON has neither)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    return x


def load_events(log_dir: str | Path) -> list[dict[str, Any]]:
    from edgerec.serving.events import EventError, read_log

    try:
        segments, _ = read_log(log_dir)
    except EventError as e:
        raise EdgerecError(str(e)) from None
    return [r for s in segments for r in s.records]


def experiment_report(
    records: list[dict[str, Any]], versions: tuple[str, str], cfg: ExperimentConfig = ExperimentConfig()
) -> ExperimentReport:
    """The report of `records` (event log records) for arms A = versions[0], B = versions[1]."""
    if versions[0] == versions[1]:
        raise EdgerecError(f"the two arms must serve different versions; both are {versions[0]}")
    arm_of = {str(v): n for n, v in enumerate(versions)}
    users: dict[str, int] = {}
    rows = []
    unattributed = 0
    for r in records:
        n = arm_of.get(str(r.get("version")))
        if n is None or r["event"] not in KINDS:
            unattributed += 1
            continue
        rows.append((int(r["ts"]), users.setdefault(str(r["user"]), len(users)), n, KINDS[r["event"]]))
    if not rows:
        raise EdgerecError(
            f"no event of version {versions[0]} or {versions[1]} in the log ({unattributed} events of other versions "
            "or none): is it the experiment's log?"
        )
    ev = np.asarray(sorted(rows), dtype=np.int64)
    ts, user, arm, kind = ev.T
    first, last = int(ts[0]), int(ts[-1])
    step = cfg.look_s * max(1, math.ceil((last - first) / cfg.look_s / MAX_LOOKS))
    cuts = sorted({*range(first - first % step + step, last, step), last})
    looks: list[Look] = []
    p_run, decided, decided_at = 1.0, "none", None
    for cut in cuts:
        est, counts = _estimates(ts <= cut, user, arm, kind, len(users), cfg.metric)
        diff, var = est[1].value - est[0].value, est[0].variance + est[1].variance
        tau = cfg.mixture_sd or cfg.mde * _pooled(est)
        lam, _ = stats.msprt(diff, var, tau, cfg.alpha)
        p_run = min(p_run, 1.0 / lam) if lam > 0 else p_run
        _, srm_p = stats.srm(counts, [1 - cfg.traffic, cfg.traffic])
        looks.append(Look(cut, (counts[0], counts[1]), diff, p_run, srm_p))
        if decided == "none" and p_run <= cfg.alpha and srm_p >= cfg.srm_alpha:
            decided, decided_at = ("B" if diff > 0 else "A"), cut
    final = np.ones(len(ts), dtype=bool)
    est, counts = _estimates(final, user, arm, kind, len(users), cfg.metric)
    chi2, srm_p = stats.srm(counts, [1 - cfg.traffic, cfg.traffic])
    flagged = srm_p < cfg.srm_alpha
    diff, var = est[1].value - est[0].value, est[0].variance + est[1].variance
    tau = cfg.mixture_sd or cfg.mde * _pooled(est)
    _, half = stats.msprt(diff, var, tau, cfg.alpha)
    h = stats.Z.inv_cdf(1 - cfg.alpha / 2) * math.sqrt(var) if var == var else float("nan")
    user_var = (est[0].variance * est[0].users) if est[0].users else float("nan")
    exposed = [set(user[(arm == n) & (kind == 0)].tolist()) for n in (0, 1)]
    return ExperimentReport(
        metric=cfg.metric,
        arms=tuple(_arm_report(n, versions[n], final, user, arm, kind, len(users), cfg.alpha) for n in (0, 1)),  # type: ignore[arg-type]
        difference=diff,
        relative=diff / est[0].value if est[0].value else float("nan"),
        interval=(diff - h, diff + h),
        always_valid_interval=(diff - half, diff + half),
        p_value=looks[-1].p_value,
        srm_chi2=chi2,
        srm_p=srm_p,
        srm_flagged=flagged,
        decision="invalid" if flagged else decided,
        decided_at=None if flagged else decided_at,
        sample_size=stats.sample_size(user_var, cfg.mde * est[0].value, cfg.alpha, cfg.power),
        looks=tuple(looks),
        unattributed=unattributed,
        crossed_users=len(exposed[0] & exposed[1]),
        config=asdict(cfg) | {"versions": list(versions)},
    )


def _pooled(est: list[stats.Estimate]) -> float:
    values = [e.value for e in est if e.value == e.value]
    return float(np.mean(values)) if values else 0.0


def _per_user(mask: np.ndarray, user: np.ndarray, arm: np.ndarray, kind: np.ndarray, n_users: int, a: int):
    """[exposed users] impressions, clicks and purchases of arm `a` among the events in `mask`."""
    sel = mask & (arm == a)
    counts = [np.bincount(user[sel & (kind == k)], minlength=n_users) for k in (0, 1, 2)]
    exposed = counts[0] > 0
    return [c[exposed] for c in counts]


def _estimates(mask, user, arm, kind, n_users: int, metric: str) -> tuple[list[stats.Estimate], list[int]]:
    out, counts = [], []
    for a in range(len(ARMS)):
        imp, clk, pur = _per_user(mask, user, arm, kind, n_users, a)
        out.append(stats.ratio(clk, imp) if metric == "ctr" else stats.mean((pur > 0).astype(np.float64)))
        counts.append(len(imp))
    return out, counts


def _arm_report(a: int, version: str, mask, user, arm, kind, n_users: int, alpha: float) -> ArmReport:
    imp, clk, pur = _per_user(mask, user, arm, kind, n_users, a)
    ctr, conv = stats.ratio(clk, imp), stats.mean((pur > 0).astype(np.float64))
    return ArmReport(
        arm=ARMS[a],
        version=str(version),
        users=len(imp),
        impressions=int(imp.sum()),
        clicks=int(clk.sum()),
        purchases=int(pur.sum()),
        ctr=ctr.value,
        ctr_interval=ctr.interval(alpha),
        conversion=conv.value,
        conversion_interval=conv.interval(alpha),
    )
