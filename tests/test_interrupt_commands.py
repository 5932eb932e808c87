"""Killing an edgerec command that writes a checkpoint (SIGINT, SIGKILL), while it runs or while it writes, never
damages the checkpoint already in place, Ctrl-C exits 130 with one line and leaves nothing behind, and a re-run
completes. A command is one entry of COMMANDS (an `edgerec update` entry can join `train`)."""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from edgerec.cli.main import main
from edgerec.io import file_hashes

from .conftest import HOLD_CLI, INTERRUPT_REPEATS, REPO, SMALL

INTERRUPTED = "edgerec: interrupted; no partial output was left in place"


def train_argv(source: Path, out: Path) -> list[str]:
    return ["train", "--data", SMALL, "--epochs", "2", "--threads", "1", "--out", str(out)]


def update_argv(source: Path, out: Path) -> list[str]:
    """An update of the SMALL model with 20 new users (12 interactions each); gates opened: this is about the files."""
    new = out.parent / "new.csv"
    rows = [f"{10_000 + u},{(u * 7 + k * 13) % 180}" for u in range(20) for k in range(12)]
    new.write_text("user,item\n" + "\n".join(rows) + "\n")
    gate = ["--tolerance-hr", "1", "--holdout-tolerance-hr", "1", "--min-holdout-lift", "0"]
    return ["update", "--model", str(source), "--new", str(new), "--data", SMALL, "--out", str(out), *gate]


# name -> (argv from (source checkpoint, out), seconds after the first log line within which it is still running,
# flags that keep it running well past that window when it is killed; the re-run goes without them)
COMMANDS: dict[str, tuple[Callable[[Path, Path], list[str]], float, list[str]]] = {
    "train": (train_argv, 2.5, ["--epochs", "100", "--patience", "100"]),
    "update": (update_argv, 1.0, []),
}


def run_and_kill(argv: list[str], sig: signal.Signals, phase: str, window: float, seed: int, tmp: Path) -> str:
    """Run `edgerec ARGV` and send sig: phase "running" at a seeded random point of the `window` seconds after its
    first log line (past start-up, which logs nothing); "writing" while atomic_dir holds the finished temporary
    folder (tests/hold_cli.py). Returns stderr; the process has exited non-zero."""
    rng = random.Random(seed)
    release = tmp / "release"
    entry = [str(HOLD_CLI), str(release)] if phase == "writing" else ["-m", "edgerec.entry"]  # the console script
    proc = subprocess.Popen(
        [sys.executable, *entry, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO, text=True
    )
    assert proc.stderr is not None
    try:
        first = proc.stderr.readline()
        if phase == "writing":
            deadline = time.time() + 300
            while not Path(f"{release}.held").exists() and proc.poll() is None and time.time() < deadline:
                time.sleep(0.02)
            time.sleep(rng.uniform(0, 0.2))
        else:
            time.sleep(rng.uniform(0, window))
        assert proc.poll() is None, f"it finished before the kill: {first}{proc.stderr.read()}"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode != 0
        return first + err
    finally:
        if proc.poll() is None:  # the test failed with the process alive (a held one would wait for minutes)
            proc.kill()
            proc.wait()


def rerun(argv: list[str]) -> int:
    """The command in this process (PyTorch is already imported here), keeping this process's thread count."""
    import torch

    threads = torch.get_num_threads()
    try:
        return main(argv)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.usefixtures("default_sigint")
@pytest.mark.parametrize("seed", range(INTERRUPT_REPEATS))
@pytest.mark.parametrize("phase", ["running", "writing"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_killed_command_leaves_the_previous_checkpoint_intact(tmp_path, ckpt, command, sig, phase, seed) -> None:
    from edgerec.model import checkpoint

    make_argv, window, longer = COMMANDS[command]
    out = tmp_path / "out"
    shutil.copytree(ckpt, out)  # the previous checkpoint
    before = file_hashes(out)
    argv = make_argv(ckpt, out)
    err = run_and_kill([*argv, *(longer if phase == "running" else [])], sig, phase, window, seed, tmp_path)
    if sig == signal.SIGINT:
        assert "Traceback" not in err and err.strip().splitlines()[-1] == INTERRUPTED, err
        assert not list(tmp_path.glob(".out.*")), "temporary folder or lock file left behind"
    assert file_hashes(out) == before
    checkpoint.load(out)  # complete and verified
    assert rerun(argv) == 0  # a re-run completes (after SIGKILL: despite its leftover temporary folder)
    assert file_hashes(out) != before and checkpoint.load(out)
