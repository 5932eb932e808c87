"""One writer per destination: atomic_dir holds an exclusive flock on `.<name>.lock` beside the destination for the
whole write; a second writer fails at once with one line and touches nothing; the lock goes with the writer."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from edgerec.artifact import Artifact
from edgerec.errors import EdgerecError
from edgerec.io import atomic_dir

from .conftest import HOLD_CLI, REPO, SMALL, TINY_HR


def busy(dest, pid: int) -> str:
    return f"{dest} is being written by another edgerec process (pid {pid}); wait for it or choose another --out"


def test_a_second_writer_into_the_same_folder_is_refused(tmp_path) -> None:
    dest = tmp_path / "out"
    with atomic_dir(dest) as tmp:
        (tmp / "a").write_text("first")
        assert (tmp_path / ".out.lock").read_text().strip() == str(os.getpid())
        with pytest.raises(EdgerecError) as e, atomic_dir(dest):
            pytest.fail("the second writer got in")
        assert str(e.value) == busy(dest, os.getpid())
        assert len(list(tmp_path.glob(".out.tmp-*"))) == 1  # the refused writer made no folder of its own
        with atomic_dir(tmp_path / "other") as other:  # another destination is not locked
            (other / "b").write_text("other")
    assert (dest / "a").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other", "out"]  # no temporary folder, no lock file


def test_the_next_writer_clears_a_killed_writers_leftovers(tmp_path) -> None:
    dest = tmp_path / "out[1]"  # glob metacharacters in the name must not matter
    with atomic_dir(dest) as tmp:
        (tmp / "a").write_text("v1")
    unfinished, replaced = tmp_path / ".out[1].tmp-dead", tmp_path / ".out[1].old-dead"
    unfinished.mkdir()
    (unfinished / "a").write_text("half")
    replaced.mkdir()
    with atomic_dir(dest) as tmp:
        (tmp / "a").write_text("v2")
    assert (dest / "a").read_text() == "v2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out[1]"]


def test_a_writer_killed_between_its_two_renames_gets_the_old_version_put_back(tmp_path) -> None:
    dest = tmp_path / "out"
    with atomic_dir(dest) as tmp:
        (tmp / "a").write_text("v1")
    os.rename(dest, tmp_path / ".out.old-dead")  # the state a SIGKILL between the renames leaves
    (tmp_path / ".out.tmp-dead").mkdir()
    with pytest.raises(RuntimeError), atomic_dir(dest):
        raise RuntimeError("this write fails too")
    assert (dest / "a").read_text() == "v1"  # the last good version is back under its name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_builders_of_one_cached_step_take_turns_and_the_second_reuses_the_first(tmp_path, monkeypatch) -> None:
    import contextlib
    import threading

    from edgerec.profiles import pipeline
    from edgerec.profiles.pipeline import Step, _step

    folder, built = tmp_path / "step", []
    building, arrived = threading.Event(), threading.Event()
    real_build_lock = pipeline.build_lock

    @contextlib.contextmanager
    def watched_build_lock(dest):
        if threading.current_thread().name == "t1":
            arrived.set()  # the second caller found no cached step and now waits for the build lock
        with real_build_lock(dest):
            yield

    monkeypatch.setattr(pipeline, "build_lock", watched_build_lock)

    def build() -> None:
        building.set()
        # the second caller arrives while this one builds: it has checked the cache and asks for the lock
        assert arrived.wait(timeout=30), "the second caller never asked for the build lock"
        with atomic_dir(folder) as tmp:
            (tmp / "done").write_text(str(len(built)))
        built.append(threading.current_thread().name)

    def check(f) -> None:
        if not (f / "done").is_file():
            raise EdgerecError("not built")

    errors: list[BaseException] = []

    def run() -> None:
        try:
            _step(Step("train", "k", "test"), folder, check, build)
        except BaseException as e:  # without the build lock: the second writer's "being written" error
            errors.append(e)

    threads = [threading.Thread(target=run, name=f"t{i}") for i in range(2)]
    threads[0].start()
    assert building.wait(timeout=30), "the first caller never started building"
    threads[1].start()
    for t in threads:
        t.join(timeout=30)
    assert not errors and len(built) == 1  # one build; the other waited for it and reused it
    assert (folder / "done").read_text() == "0"


def test_the_lock_is_released_on_failure_and_a_stale_lock_file_does_not_block(tmp_path) -> None:
    dest = tmp_path / "out"
    with pytest.raises(RuntimeError), atomic_dir(dest):
        raise RuntimeError("failed mid-write")
    (tmp_path / ".out.lock").write_text("999999\n")  # left by a writer that was killed: no process holds it
    with atomic_dir(dest) as tmp:
        (tmp / "a").write_text("second")
    assert (dest / "a").read_text() == "second" and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_second_export_into_the_same_folder_fails_at_once_and_the_first_completes(tmp_path, ckpt) -> None:
    """Two real `edgerec export` processes into one --out. The first is held inside its write (tests/hold_cli.py:
    every file written, nothing renamed yet) so that the second certainly arrives while the first writes."""
    out, release = tmp_path / "art", tmp_path / "release"
    argv = ["-q", "export", "--model", str(ckpt), "--data", SMALL, "--target", "onnx", "--precision", "int8",
            "--tolerance-hr", TINY_HR, "--out", str(out)]  # fmt: skip
    first = subprocess.Popen(
        [sys.executable, str(HOLD_CLI), str(release), *argv], stderr=subprocess.PIPE, text=True, cwd=REPO
    )
    try:
        deadline = time.time() + 300
        while not (tmp_path / "release.held").exists() and first.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert first.poll() is None and list(tmp_path.glob(".art.tmp-*")), "the first export is not writing"
        second = subprocess.run(
            [sys.executable, "-m", "edgerec.entry", *argv], capture_output=True, text=True, cwd=REPO, timeout=300
        )
        assert second.returncode == 2 and "Traceback" not in second.stderr
        assert second.stderr.strip().splitlines()[-1] == f"edgerec: error: {busy(out, first.pid)}"
        assert len(list(tmp_path.glob(".art.tmp-*"))) == 1 and not out.exists()  # the second touched nothing
    finally:
        release.touch()  # the first one finishes (also when an assertion above failed)
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert Artifact.load(out).status == "verified"  # complete: every file present and matching its hash
    assert not list(tmp_path.glob(".art.*"))  # no temporary folder, no lock file
