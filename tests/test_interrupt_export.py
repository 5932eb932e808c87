"""Killing `edgerec export` part-way (SIGINT, SIGKILL) never damages the artifact already in place, and a re-run
completes."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time

import pytest

from edgerec.artifact import Artifact
from edgerec.errors import INTERRUPTED

from .conftest import INTERRUPT_REPEATS, REPO, SMALL, TINY_HR


@pytest.mark.usefixtures("default_sigint")
@pytest.mark.parametrize("seed", range(INTERRUPT_REPEATS))
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_killed_export_leaves_the_previous_artifact_intact(tmp_path, ckpt, sig, seed) -> None:
    out = tmp_path / "art"
    cmd = [sys.executable, "-m", "edgerec.entry", "-q", "export", "--model", str(ckpt), "--data", SMALL,
           "--target", "onnx", "--precision", "int8", "--tolerance-hr", TINY_HR, "--out", str(out)]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, cwd=REPO)
    before = Artifact.load(out).manifest
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    deadline = time.time() + 60
    while time.time() < deadline and not list(tmp_path.glob(".art.tmp-*")):  # wait until it is writing
        time.sleep(0.02)
    time.sleep(random.Random(seed).uniform(0, 0.3))  # somewhere early in the write (conversion, verification)
    assert proc.poll() is None, "the export finished before the kill"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    if sig == signal.SIGINT:
        assert b"Traceback" not in err and not list(tmp_path.glob(".art.*"))  # no temp folder or lock file after Ctrl-C
        assert err.decode().strip().splitlines() == [INTERRUPTED], err
    after = Artifact.load(out).manifest  # still complete: every file present and matching its hash
    assert after["files"] == before["files"]
    subprocess.run(cmd, check=True, capture_output=True, cwd=REPO)  # a re-run completes
    assert Artifact.load(out).status == "verified"
