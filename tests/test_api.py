"""The Python API as a notebook uses it: the README's example run verbatim, and bad input as typed exceptions with
one-line messages (the CLI prints exactly that line)."""

from __future__ import annotations

import os
import re

import pytest

import edgerec
from edgerec.cli.main import main

from .conftest import REPO, SMALL


def readme_example() -> str:
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Python API") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_python_example_runs_verbatim(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    exec(compile(readme_example(), "README.md (Python API)", "exec"), {})
    printed = capsys.readouterr().out
    assert "NeuMF HR@10" in printed and "verified in LiteRT:" in printed and "p50 ms" in printed
    assert (tmp_path / "runs/small/quant.json").is_file() and (tmp_path / "runs/small/compress.json").is_file()
    assert (tmp_path / "artifacts/phone/model.tflite").is_file()
    small = edgerec.load(tmp_path / "runs/small")
    assert [s["step"] for s in small.report["steps"]] == ["prune", "distill", "quantize"]
    assert edgerec.evaluate(small, SMALL).metrics["hr@10"] == pytest.approx(small.metrics["hr@10"], abs=1e-9)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: edgerec.TrainConfig(epochs=0),
            "TrainConfig: field `epochs`: Input should be greater than or equal to 1; got 0",
        ),
        (lambda: edgerec.TrainConfig(lr="fast"), "TrainConfig: field `lr`: Input should be a valid number"),
        (
            lambda: edgerec.TrainConfig(model="bert"),
            "TrainConfig: field `model`: Input should be 'gmf', 'mlp' or 'neumf'",
        ),
        (lambda: edgerec.TrainConfig(model="gmf", pretrain=True), "pretrain applies to neumf only"),
        (lambda: edgerec.TrainConfig(colour="red"), "TrainConfig: field `colour`: Unexpected keyword argument"),
        (lambda: edgerec.PruneConfig(mlp=1.0), "PruneConfig: field `mlp`: Input should be less than 1"),
        (lambda: edgerec.QuantConfig(observer="median"), "QuantConfig: field `observer`: Input should be 'minmax'"),
        (lambda: edgerec.CompressConfig(), "nothing to do"),
        (lambda: edgerec.ExportConfig(target="coreml"), "ExportConfig: target must be one of onnx, tensorrt"),
        (lambda: edgerec.ExportConfig(target="onnx", precision="int4"), "target onnx supports precision fp32"),
        (
            lambda: edgerec.DropTolerance(hr=-0.1),
            "DropTolerance: field `hr`: Input should be greater than or equal to 0",
        ),
        (lambda: edgerec.BenchConfig(threads=0), "BenchConfig: field `threads`"),
        (lambda: edgerec.UpdateConfig(scope="some"), "UpdateConfig: field `scope`: Input should be 'all' or 'rows'"),
    ],
)
def test_bad_config_values_fail_at_construction(build, message) -> None:
    with pytest.raises(edgerec.ConfigError) as e:
        build()
    assert message in str(e.value)
    assert isinstance(e.value, edgerec.EdgerecError)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["train", "--data", SMALL, "--epochs", "0", "--out", "x"],
            "TrainConfig: field `epochs`: Input should be greater than or equal to 1; got 0",
        ),
        (["train", "--data", SMALL, "--model", "gmf", "--pretrain", "--out", "x"], "pretrain applies to neumf only"),
        (["export", "--target", "coreml", "--model", ".", "--out", "x"], "target must be one of onnx"),
    ],
)
def test_the_cli_prints_a_config_error_as_one_line(tmp_path, monkeypatch, capsys, args, message) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"edgerec: error: {err[0].removeprefix('edgerec: error: ')}"] and message in err[0]
    assert os.listdir(tmp_path) == []


def test_load_refuses_a_folder_that_is_neither_checkpoint_nor_artifact(tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(edgerec.EdgerecError, match=r"neither a checkpoint .* nor an artifact"):
        edgerec.load(tmp_path)
    with pytest.raises(edgerec.EdgerecError, match="no such folder"):
        edgerec.load(tmp_path / "missing")


def test_an_unknown_profile_lists_the_installed_ones() -> None:
    with pytest.raises(edgerec.EdgerecError, match=r"shipped profiles: .*tflite-android-int8"):
        edgerec.load_profile("no-such-profile")


def test_a_failed_gate_carries_its_report(ckpt, ds) -> None:
    cfg = edgerec.CompressConfig(prune=edgerec.PruneConfig.uniform(0.9), tolerance=edgerec.DropTolerance(hr=0.0))
    with pytest.raises(edgerec.GateFailed) as e:
        edgerec.compress(ckpt, ds, cfg)
    report = e.value.report
    assert report.step == "prune" and report.deltas["hr@10"] < 0
    assert f"HR@10 fell by {-report.deltas['hr@10']:.4f}" in str(e.value)
