"""Training on torch.distributed (`edgerec train --nproc N`): two gloo processes on this machine train the same
model as one process does (within seed noise on the small data), a dead rank stops the run with one line and no
checkpoint, and more processes than cores are refused before anything starts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import edgerec
from edgerec.errors import ConfigError

from .conftest import REPO, SMALL


def test_two_processes_train_like_one(tmp_path) -> None:
    cfg = edgerec.TrainConfig(epochs=4, seed=0)
    one = edgerec.train(SMALL, cfg)
    two = edgerec.train(SMALL, edgerec.TrainConfig(epochs=4, seed=0, nproc=2))
    assert two.report["train_config"]["nproc"] == 2
    assert abs(two.metrics["hr@10"] - one.metrics["hr@10"]) <= 0.05  # 300 test users: 0.0033 per user
    assert two.metrics["hr@10"] > 3 * two.report["itempop"]["hr@10"] / 2  # it learned, well beyond popularity
    path = two.save(tmp_path / "ck")
    assert edgerec.load(path).metrics == two.metrics  # written once, by the parent, atomically
    assert not list(Path(tempfile.gettempdir()).glob("edgerec-ddp-*"))


def test_training_never_joins_a_process_group_by_itself(monkeypatch) -> None:
    """torchrun's variables in the environment do not make a library call join its group: only a group passed
    in (as `edgerec train` does under torchrun) trains as a rank."""
    import torch.distributed as dist

    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    ck = edgerec.train(SMALL, edgerec.TrainConfig(epochs=1))
    assert not dist.is_initialized() and ck.report["train_config"]["nproc"] == 1


def test_more_processes_than_cores_is_one_line(tmp_path, capsys) -> None:
    from edgerec.cli.main import main

    rc = main(["-q", "train", "--data", SMALL, "--nproc", str((os.cpu_count() or 1) + 1), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "more processes than this machine's" in err
    assert not (tmp_path / "o").exists()
    with pytest.raises(ConfigError, match="cannot be split over 8 processes"):
        edgerec.TrainConfig(batch_size=4, nproc=8)


def _workers(pid: int) -> list[int]:
    kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(k) for k in kids if "spawn_main" in Path(f"/proc/{k}/cmdline").read_text().replace("\0", " ")]


def test_a_rank_that_dies_stops_the_others_and_writes_nothing(tmp_path) -> None:
    out = tmp_path / "ck"
    cmd = [sys.executable, "-m", "edgerec.entry", "-q", "train", "--data", "synthetic:users=2000,items=500,seed=1",
           "--nproc", "2", "--epochs", "30", "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(_workers(proc.pid)) < 2:
            time.sleep(0.2)
        workers = _workers(proc.pid)
        assert len(workers) == 2, "the training ranks did not start"
        time.sleep(3)  # mid-training
        os.kill(workers[1], signal.SIGKILL)
        _, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "died" in lines[0] and "nothing was written" in lines[0], err
    assert not out.exists()
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
