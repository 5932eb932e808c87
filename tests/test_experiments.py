"""A/B statistics (edgerec.experiments): the sticky assignment, the report of a real event log, an A/A experiment's
false-positive rate, a real lift found, a broken split flagged, and the CLI's report and errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from edgerec.cli.main import main
from edgerec.errors import ConfigError, EdgerecError
from edgerec.experiments import stats
from edgerec.experiments.assign import arm, bucket
from edgerec.experiments.config import ExperimentConfig
from edgerec.experiments.report import experiment_report
from edgerec.serving.events import EventLog

T0 = 1_700_000_000


def world(seed: int, users: int = 3000, ctr: tuple[float, float] = (0.05, 0.05), traffic: float = 0.5,
          broken: float | None = None, hours: int = 48) -> list[dict]:  # fmt: skip
    """Users arriving over `hours`, each assigned by the hash (or, `broken`, by a coin with that share for B),
    with 1-5 impressions each and a click on each with their arm's CTR; version 1 is arm A, version 2 arm B."""
    rng = np.random.default_rng(seed)
    records = []
    for u in range(users):
        uid = f"u{u}"
        b = arm(uid, f"s{seed}", traffic) == "B" if broken is None else rng.random() < broken
        start = T0 + int(rng.integers(0, hours * 3600))
        for k in range(int(rng.integers(1, 6))):
            ts = start + 60 * k
            v = "2" if b else "1"
            records.append({"user": uid, "event": "impression", "ts": ts, "version": v, "shown": ["i1", "i2"]})
            if rng.random() < ctr[b]:
                records.append({"user": uid, "event": "click", "ts": ts + 5, "version": v, "item": "i1"})
            if rng.random() < 0.01:
                records.append({"user": uid, "event": "purchase", "ts": ts + 9, "version": v, "item": "i1"})
    return sorted(records, key=lambda r: r["ts"])


def test_the_assignment_is_sticky_seeded_and_near_the_split() -> None:
    users = [f"user-{i}" for i in range(20_000)]
    first = [arm(u, "exp1", 0.3) for u in users]
    assert first == [arm(u, "exp1", 0.3) for u in users]  # the same user, the same arm
    share = first.count("B") / len(first)
    assert abs(share - 0.3) < 4 * math.sqrt(0.3 * 0.7 / len(users))
    other = [arm(u, "exp2", 0.3) for u in users]  # another experiment reshuffles
    assert 0.3 < np.mean([a != b for a, b in zip(first, other, strict=True)]) < 0.5
    assert all(0 <= bucket(u, "x") < 1 for u in users[:100])


def test_stats_against_hand_computed_values() -> None:
    est = stats.ratio(np.array([1, 0, 2, 1]), np.array([2, 1, 4, 3]))
    assert est.value == pytest.approx(4 / 10)
    chi2, p = stats.srm([600, 400], [0.5, 0.5])
    assert chi2 == pytest.approx(40.0) and p == pytest.approx(math.erfc(math.sqrt(20)))
    lam, half = stats.msprt(0.0, 1e-4, 0.01, 0.05)
    assert lam < 1 and half > 1.96 * 0.01  # no difference: no evidence, and wider than the one-look interval
    assert stats.sample_size(0.05 * 0.95, 0.005, 0.05, 0.8) == pytest.approx(2 * 0.0475 * (1.96 + 0.8416) ** 2 / 2.5e-5,
                                                                              rel=1e-3)  # fmt: skip


def test_an_aa_experiment_rarely_declares_a_winner() -> None:
    """20 A/A worlds (the same CTR in both arms), each read at every hour: the mSPRT's always-valid p-value keeps
    the rate of declared winners at or below alpha (here: at most 3 of 20, a loose bound on 5 %)."""
    winners = 0
    for seed in range(20):
        rep = experiment_report(world(seed), ("1", "2"), ExperimentConfig(salt=f"s{seed}", mde=0.2))
        assert len(rep.looks) >= 48 and not rep.srm_flagged
        winners += rep.decision in ("A", "B")
    assert winners <= 3


def test_a_real_lift_is_found_and_when() -> None:
    rep = experiment_report(world(100, ctr=(0.05, 0.075)), ("1", "2"), ExperimentConfig(salt="s100", mde=0.2))
    assert rep.decision == "B" and rep.decided_at is not None and rep.decided_at < rep.looks[-1].ts
    a, b = rep.arms
    assert (a.version, b.version) == ("1", "2") and a.users + b.users == 3000
    assert rep.always_valid_interval[0] > 0 and rep.interval[0] > rep.always_valid_interval[0]
    assert 0.03 < a.ctr < 0.07 and 0.055 < b.ctr < 0.095
    assert "B (version 2) is better on ctr" in rep.message


def test_a_broken_split_is_flagged_not_reported() -> None:
    rep = experiment_report(world(7, broken=0.6, ctr=(0.05, 0.08)), ("1", "2"), ExperimentConfig(salt="s7"))
    assert rep.srm_flagged and rep.decision == "invalid" and rep.decided_at is None
    assert rep.message.startswith("invalid: sample ratio mismatch")


def test_the_report_of_a_real_event_log_and_the_cli(tmp_path, capsys) -> None:
    log = EventLog(tmp_path / "log")
    try:
        for r in world(3, users=300, ctr=(0.05, 0.2)):
            log.append(r["user"], r.get("item"), r["event"], r["ts"], r.get("shown"), r["version"])
        log.append("someone", "i1", "click", T0 + 48 * 3600, None, "9")  # another version: left out, counted
    finally:
        log.close()
    out = tmp_path / "report.json"
    args = ["-q", "experiment", "report", str(tmp_path / "log"), "--versions", "1,2", "--json", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "decision:" in printed and "1 event(s) of other versions" in printed
    saved = json.loads(out.read_text())
    assert saved["unattributed"] == 1 and saved["arms"][0]["version"] == "1" and saved["message"]
    assert sum(a["users"] for a in saved["arms"]) == 300


def test_bad_input_is_one_line(tmp_path, capsys) -> None:
    cases = [
        (["experiment", "report", str(tmp_path / "nowhere"), "--versions", "1,2"], "no such event log"),
        (["experiment", "report", str(tmp_path), "--versions", "1"], "--versions takes two versions"),
        (["experiment", "report", str(tmp_path), "--versions", "1,2", "--traffic", "1.5"], "traffic"),
    ]
    log = EventLog(tmp_path / "other")
    log.append("u", None, "impression", T0, ["i"], "5")
    log.close()
    cases.append((["experiment", "report", str(tmp_path / "other"), "--versions", "1,2"], "no event of version 1"))
    for args, words in cases:
        assert main(["-q", *args]) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], (args, err)
    with pytest.raises(ConfigError, match="srm_alpha"):
        ExperimentConfig(alpha=0.01, srm_alpha=0.02)
    with pytest.raises(EdgerecError, match="different versions"):
        experiment_report(world(1, users=10), ("1", "1"))
