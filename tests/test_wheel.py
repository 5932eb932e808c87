"""edgerec as users install it: a wheel, installed non-editable into a fresh environment without torch, used from a
folder outside the checkout. The shipped profiles travel inside the wheel."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

from .conftest import REPO


def run(env: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(env / "bin" / "edgerec"), *args], cwd=cwd, capture_output=True, text=True)


def test_the_wheel_carries_every_shipped_profile(wheel) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(p.name for p in (REPO / "export_profiles").glob("*.yaml"))
    assert len(shipped) >= 8
    assert sorted(Path(n).name for n in names if n.startswith("edgerec/profiles/shipped/")) == shipped
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/"))]


def test_an_installed_wheel_lists_its_profiles_and_plans_the_main_job(wheel_env, tmp_path) -> None:
    assert subprocess.run([str(wheel_env / "bin" / "python"), "-c", "import torch"], capture_output=True).returncode
    where = subprocess.run(
        [str(wheel_env / "bin" / "python"), "-c", "import edgerec.profiles.schema as s; print(s.shipped_dir())"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(wheel_env) and "site-packages" in where.stdout

    listed = run(wheel_env, tmp_path, "profiles")
    assert listed.returncode == 0, listed.stderr
    assert "tflite-android-int8" in listed.stdout and "tensorrt-t4-int8" in listed.stdout

    cache = tmp_path / "cache"
    plan = run(wheel_env, tmp_path, "export", "--profile", "tflite-android-int8", "--dry-run", "--out", "art",
               "--cache", str(cache))  # fmt: skip
    assert plan.returncode == 0, plan.stderr
    steps = [line.split()[0] for line in plan.stdout.splitlines()]
    assert steps == ["train", "export", "bench"] and "tflite-bundle int8" in plan.stdout
    assert not (tmp_path / "art").exists()


def test_an_unknown_profile_names_the_installed_ones(wheel_env, tmp_path) -> None:
    proc = run(wheel_env, tmp_path, "export", "--profile", "no-such-profile", "--out", "art")
    assert proc.returncode == 2 and proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert line.startswith("edgerec: error: no-such-profile: no such profile file or name (shipped profiles: ")
    assert "tflite-android-int8" in line and "onnx-cpu-int8" in line
