"""ARM64 verification: the host checks, the cached root's build discipline (fast, with the build replaced), and one
bundle run under an emulated CPU (slow: needs root, qemu-user-static, binfmt_misc and the cached root, or
EDGEREC_ARM_TESTS=1 to build it)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import edgerec
from edgerec.devices import arm64
from edgerec.devices.verify import verify_arm64
from edgerec.errors import EdgerecError

from .conftest import SMALL


def test_missing_tools_and_privileges_are_one_line(monkeypatch) -> None:
    monkeypatch.setattr(arm64.shutil, "which", lambda name: None)
    with pytest.raises(EdgerecError, match=r"needs debootstrap, qemu-aarch64-static, update-binfmts: apt-get install"):
        arm64.check_host()
    monkeypatch.setattr(arm64.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(arm64.os, "geteuid", lambda: 1000)
    with pytest.raises(EdgerecError, match=r"needs root .* the x86 verification in the manifest still stands"):
        arm64.check_host()


def test_a_corrupt_root_is_rebuilt_and_a_failed_build_leaves_nothing(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EDGEREC_CACHE", str(tmp_path))
    monkeypatch.setattr(arm64, "check_host", lambda: None)
    root = arm64.root_dir()
    (root / "usr").mkdir(parents=True)  # a root without its marker: what a killed build or a tampered cache leaves
    said: list[str] = []

    def fails(tmp: Path, say) -> None:
        (tmp / "half").write_text("written before the failure")
        raise EdgerecError("debootstrap (first stage) failed (exit 1): no network")

    monkeypatch.setattr(arm64, "build", fails)
    with pytest.raises(EdgerecError, match="no network"):
        arm64.ensure_root(said.append)
    assert said and "incomplete or corrupt ARM64 root; rebuilding it" in said[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # the corrupt root removed, nothing half-built left

    def builds(tmp: Path, say) -> None:
        (tmp / arm64.VENV.lstrip("/") / "bin").mkdir(parents=True)
        (tmp / arm64.VENV.lstrip("/") / "bin" / "python").write_text("")

    monkeypatch.setattr(arm64, "build", builds)
    assert arm64.ensure_root(said.append) == root and arm64.is_usable(root)
    assert json.loads((root / arm64.MARKER).read_text())["suite"] == "bookworm"


def test_only_tflite_artifacts_are_verified_on_arm(ckpt, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(arm64, "ensure_root", lambda say: pytest.fail("must refuse before building anything"))
    art = edgerec.export(edgerec.load(ckpt), edgerec.ExportConfig(target="onnx"), data=SMALL, out=tmp_path / "onnx")
    with pytest.raises(EdgerecError, match=r"verifies TFLite artifacts .* this one is onnx"):
        verify_arm64(art.folder)


@pytest.mark.slow
def test_a_bundle_under_an_emulated_arm64_cpu(ckpt, tmp_path: Path) -> None:
    if not arm64.is_usable(arm64.root_dir()) and os.environ.get("EDGEREC_ARM_TESTS") != "1":
        pytest.skip("no cached ARM64 root (EDGEREC_ARM_TESTS=1 builds it, about 6 minutes)")
    try:
        arm64.check_host()
    except EdgerecError as e:
        pytest.skip(str(e))
    cfg = edgerec.ExportConfig(target="tflite-bundle", precision="int8")
    art = edgerec.export(edgerec.load(ckpt), cfg, data=SMALL, out=tmp_path / "bundle")
    result = verify_arm64(art.folder, ("cortex-a53",), edgerec.dataset(SMALL), users=40)["cortex-a53"]
    assert result["machine"] == "aarch64", result
    assert result["max_abs_score_error"] < 1e-3 and result["top10_agreement"] >= 0.95, result
    assert abs(result["delta_hr@10"]) <= 0.005
    manifest = json.loads((art.folder / "manifest.json").read_text())
    assert manifest["verified_on"]["arm64"]["cortex-a53"]["top10_agreement"] == result["top10_agreement"]
    assert edgerec.load(art.folder).metrics == art.metrics  # the artifact still loads, every file's hash intact


def test_the_guest_installs_the_wheels_own_core_dependencies(tmp_path: Path) -> None:
    """The ARM64 root installs what the wheel's METADATA requires outside its extras (not a copied list)."""
    import tomllib
    import zipfile

    from edgerec.devices.arm64 import wheel_requirements

    core = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]["dependencies"]
    meta = "Metadata-Version: 2.1\nName: edgerec\n" + "".join(f"Requires-Dist: {r}\n" for r in core)
    meta += 'Requires-Dist: torch>=2.13; extra == "train"\nRequires-Dist: onnx>=1.17; extra == "export"\n'
    wheel = tmp_path / "edgerec-0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("edgerec-0.dist-info/METADATA", meta)
    got = wheel_requirements(wheel)
    assert [r.replace(" ", "") for r in got] == [r.split("#")[0].strip().replace(" ", "") for r in core]
    assert any(r.startswith("zstandard") for r in got) and not any(r.startswith(("torch", "onnx")) for r in got)
    with zipfile.ZipFile(bad := tmp_path / "bad.whl", "w") as z:
        z.writestr("x.txt", "")
    with pytest.raises(EdgerecError, match="not a wheel"):
        wheel_requirements(bad)
