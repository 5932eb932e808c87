from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edgerec.cli.main import main

from .conftest import write

TINY = "synthetic:users=150,items=140,seed=4"
EDGEREC = [sys.executable, "-m", "edgerec.entry"]  # what the `edgerec` console script runs


def run_cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([*EDGEREC, *args], capture_output=True, text=True, timeout=timeout, env=env)


class Lines:
    """A child's stderr read line by line on a thread, so that a test can wait for a line under a deadline."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout: float) -> bool:
        """True once a line matching pattern arrived; False at end of stream or when the deadline passed."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                return False
            if line is None:
                return False
            self.lines.append(line)
            if re.search(pattern, line):
                return True
        return False

    def rest(self, timeout: float) -> str:
        """Everything read so far and until the stream ends."""
        self._thread.join(timeout)
        while not self._queue.empty():
            line = self._queue.get()
            if line is not None:
                self.lines.append(line)
        return "".join(self.lines)


def test_train_then_evaluate_writes_metrics_json(tmp_path: Path) -> None:
    out = tmp_path / "ck"
    r = run_cli(
        "train",
        "--data",
        TINY,
        "--factors",
        "4",
        "--epochs",
        "2",
        "--batch-size",
        "512",
        "--threads",
        "1",
        "--out",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"hr@10", "ndcg@10", "protocol", "full_hr@10", "full_ndcg@10"} <= set(metrics)
    assert "ItemPop" in r.stdout
    r = run_cli("evaluate", "--model", str(out), "--data", TINY, "--json", str(tmp_path / "m.json"))
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "m.json").read_text())["hr@10"] == metrics["hr@10"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--data", "/nonexistent/x.csv", "--out", "o"], "no such file or folder"),
        (["train", "--data", "synthetic:bogus=1", "--out", "o"], "unknown setting"),
        (["train", "--data", TINY, "--lr", "-1", "--out", "o"],
         "TrainConfig: field `lr`: Input should be greater than 0; got -1.0"),
        (["train", "--data", TINY, "--average-from", "-1", "--out", "o"],
         "TrainConfig: field `average_from`: Input should be greater than or equal to 0; got -1"),
        (["train", "--data", TINY, "--epochs", "0", "--out", "o"],
         "TrainConfig: field `epochs`: Input should be greater than or equal to 1; got 0"),
        (["train", "--data", TINY, "--layers", "63,8", "--out", "o"], "layers must be an even MLP input size"),
        (["train", "--data", TINY, "--model", "gmf", "--pretrain", "--out", "o", "--epochs", "1"],
         "TrainConfig: pretrain applies to neumf only"),
        (["evaluate", "--model", "/nonexistent", "--data", TINY], "--model /nonexistent: no such folder; expected"),
    ],
)  # fmt: skip
def test_errors_are_one_line_with_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["-q", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("edgerec: error: ") and message in err[0], err
    if "--layers" in args:
        assert "got (63, 8)" in err[0]  # the bad value, as given
    assert not (tmp_path / "o").exists()


def test_malformed_line_is_named_through_the_real_command(tmp_path: Path) -> None:
    bad = write(tmp_path / "ratings.dat", "1::2::5::10\n1::3::5::11\n2::oops::5::12\n")
    r = run_cli("train", "--data", str(bad), "--out", str(tmp_path / "o"))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == (
        f"edgerec: error: {bad}: malformed line 3 '2::oops::5::12': expected 4 integer columns separated by '::'"
    )
    assert "Traceback" not in r.stderr


def test_failed_training_leaves_the_previous_checkpoint_in_place(tmp_path: Path) -> None:
    out = tmp_path / "ck"
    assert (
        main(["-q", "train", "--data", TINY, "--factors", "4", "--epochs", "1", "--threads", "1", "--out", str(out)])
        == 0
    )
    before = (out / "model.safetensors").read_bytes()
    # diverges: the loss becomes NaN with an absurd learning rate, so the run fails before writing
    code = main(
        [
            "-q",
            "train",
            "--data",
            TINY,
            "--factors",
            "4",
            "--epochs",
            "1",
            "--lr",
            "1e30",
            "--threads",
            "1",
            "--out",
            str(out),
        ]
    )
    assert code == 2
    assert (out / "model.safetensors").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]  # no temporary folders left behind


@pytest.mark.usefixtures("default_sigint")
def test_ctrl_c_during_training_exits_130_and_keeps_the_previous_checkpoint(tmp_path: Path) -> None:
    import signal

    out = tmp_path / "ck"
    assert (
        main(["-q", "train", "--data", TINY, "--factors", "4", "--epochs", "1", "--threads", "1", "--out", str(out)])
        == 0
    )
    before = (out / "model.safetensors").read_bytes()
    proc = subprocess.Popen(
        [
            *EDGEREC,
            "train",
            "--data",
            "synthetic",
            "--epochs",
            "50",
            "--threads",
            "1",
            "--out",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    lines = Lines(proc.stderr)
    try:
        # inside the first epochs: the first epoch has ended (its log line), the second one runs
        started = lines.wait_for(r"^epoch 1 ", timeout=300)
        assert started and proc.poll() is None, f"no first epoch to interrupt: {lines.rest(5)}"
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = lines.rest(timeout=10)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "edgerec: interrupted; no partial output was left in place"
    assert (out / "model.safetensors").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]


def test_ctrl_c_while_the_cli_module_loads_is_one_line(tmp_path: Path) -> None:
    """The console script (edgerec.entry) guards the import of edgerec.cli.main: an interrupt there exits 130
    quietly."""
    hook = (
        "import builtins, sys\n"
        "real = builtins.__import__\n"
        "def fake(name, *a, **k):\n"
        "    if name == 'edgerec.cli.main':\n"
        "        raise KeyboardInterrupt\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = fake\n"
        "from edgerec.entry import main\n"
        "sys.exit(main())\n"
    )
    proc = subprocess.run([sys.executable, "-c", hook], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.strip() == "edgerec: interrupted; no partial output was left in place"


def test_importing_edgerec_loads_neither_numpy_nor_torch() -> None:
    code = "import sys, edgerec.entry; print(sorted({'numpy', 'torch'} & set(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert proc.stdout.strip() == "[]"
