"""Exports converted and run in their real runtimes (onnxruntime, ai-edge-litert), on a small trained model."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import edgerec
from edgerec.artifact import Artifact
from edgerec.cli.main import main
from edgerec.compression.config import QuantConfig
from edgerec.compression.quantize import QuantizedNCF, calibrate, spec_of
from edgerec.errors import EdgerecError, GateFailed
from edgerec.exporters.config import ExportConfig
from edgerec.gates import ParityBound
from edgerec.runtime import load_scorer

from .conftest import REPO, SMALL, TINY_HR

without_tensorrt = pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here: the engine would be built"
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, ckpt, ds):
    """Artifacts built once per module, by (target, precision)."""
    root = tmp_path_factory.mktemp("art")
    cache: dict[tuple[str, str, str | None], Artifact] = {}

    def get(target: str, precision: str, runtime: str | None = None) -> Artifact:
        key = (target, precision, runtime)
        if key not in cache:
            out = root / "-".join(filter(None, key))
            # the gate itself is tested below; on 300 users one user is 0.0033 HR@10, so it is loosened here
            tol = ParityBound(hr=0.05)
            cfg = ExportConfig(target=target, precision=precision, runtime=runtime, buckets=(1, 64, 0), tolerance=tol)
            cache[key] = edgerec.export(ckpt, cfg, ds, out=out)
        return cache[key]

    return get


def logits(ckpt, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    model = edgerec.load(ckpt).model
    with torch.no_grad():
        return model(torch.from_numpy(users.astype(np.int64)), torch.from_numpy(items.astype(np.int64))).numpy()


def pairs(ds, n: int = 500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, ds.n_users, n), rng.integers(0, ds.n_items, n)


@pytest.mark.parametrize(
    ("target", "precision", "max_err"),
    [("onnx", "fp32", 1e-5), ("onnx", "fp16", 0.02), ("tflite", "fp32", 1e-5), ("tflite", "fp16", 0.02)],
)
def test_float_exports_score_like_pytorch_in_their_runtime(exported, ckpt, ds, target, precision, max_err) -> None:
    art = exported(target, precision)
    scorer = load_scorer(art.folder)
    u, i = pairs(ds)
    assert np.abs(scorer.score(u, i) - logits(ckpt, u, i)).max() < max_err
    v = art.verification
    assert abs(v["deltas"]["hr@10"]) <= 0.001 and v["agreement"] > 0.9
    assert v["batch_parity_max_diff"] <= 1e-5 and art.status == "verified" and art.export_only is None
    # the manifest is self-describing: hashes and sizes of every file, metrics under "metrics"
    for name, rec in art.manifest["files"].items():
        assert (art.folder / name).stat().st_size == rec["bytes"]
    assert set(art.metrics) >= {"hr@10", "ndcg@10"} and art.manifest["n_items"] == ds.n_items


def test_onnx_int8_is_the_simulated_quantized_model_in_explicit_qdq_form(exported, ckpt, ds) -> None:
    import onnx

    art = exported("onnx", "int8")
    fp32_bytes = exported("onnx", "fp32").bytes
    graph = onnx.load(str(art.folder / "model.onnx")).graph
    ops = {n.op_type for n in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    zero_points = [t for t in graph.initializer if t.name.endswith("_in_zero")]
    assert zero_points and all(onnx.numpy_helper.to_array(t) == 0 for t in zero_points)  # symmetric
    assert art.bytes == art.manifest["files"]["model.onnx"]["bytes"] < 0.35 * fp32_bytes
    assert art.manifest["lint"]["passed"] is True
    # ORT runs the same integer scheme as the compression step's simulation (same calibration observer)
    ck = edgerec.load(ckpt)
    spec = calibrate(ck.model, ds, QuantConfig(observer="percentile"))
    u, i = pairs(ds)
    with torch.no_grad():
        sim = QuantizedNCF(ck.model, spec)(torch.from_numpy(u), torch.from_numpy(i)).numpy()
    got = art.scorer().score(u, i)
    assert np.median(np.abs(got - sim)) < 2e-3  # row scales are stored in fp16 in the ONNX, fp32 in the simulation
    assert np.corrcoef(got, sim)[0, 1] > 0.999


@pytest.mark.parametrize("precision", ["int8-dynamic", "int8"])
def test_tflite_int8_variants_run_in_litert_with_float_scores(exported, ckpt, ds, precision) -> None:
    art = exported("tflite", precision)
    fp32_bytes = exported("tflite", "fp32").bytes
    assert art.manifest["files"]["model.tflite"]["bytes"] < 0.5 * fp32_bytes
    scorer = load_scorer(art.folder)
    assert scorer.dequant == {b: None for b in scorer.buckets}  # the score leaves the graph as float32
    u, i = pairs(ds)
    ref = logits(ckpt, u, i)
    assert np.corrcoef(scorer.score(u, i), ref)[0, 1] > 0.99
    assert art.verification["batch_parity_max_diff"] <= 1e-5
    assert art.manifest["buckets"] == [1, 64, ds.n_items]


def test_requests_of_any_size_are_cut_into_buckets(exported, ds) -> None:
    scorer = load_scorer(exported("tflite", "fp32").folder)
    u, i = pairs(ds, 1000, seed=5)
    whole = scorer.score(u, i)
    for n in (1, 2, 63, 65, 181, 999):
        assert np.allclose(scorer.score(u[:n], i[:n]), whole[:n], atol=1e-6)
    items, scores = scorer.top_k(user=3, k=10)
    assert len(items) == 10 and np.all(np.diff(scores) <= 0)


@without_tensorrt
def test_tensorrt_without_tensorrt_writes_the_ready_onnx_and_trtexec_and_says_why(tmp_path, ckpt, ds, capsys) -> None:
    out = tmp_path / "trt"
    loose = ParityBound(hr=float(TINY_HR))  # about the export-only path, not the bound (see conftest.TINY_HR)
    cfg = ExportConfig(target="tensorrt", precision="int8", buckets=(1, 64), tolerance=loose)
    art = edgerec.export(ckpt, cfg, ds, out=out)
    assert art.status == "export-only" and "TensorRT is not installed" in (art.export_only or "")
    manifest = Artifact.load(out).manifest  # complete: every file present and matching its hash
    assert manifest["status"] == "export-only" and manifest["model_file"] == "model.onnx"
    assert manifest["export_only"] == art.export_only
    assert manifest["verification"]["verified_with"] == "onnxruntime" and manifest["lint"]["passed"]
    cmd = (out / "trtexec.sh").read_text()
    assert "--onnx=model.onnx" in cmd and "--int8" in cmd and "--maxShapes=users:64,items:64" in cmd
    # the onnxruntime fallback scores the TensorRT-ready ONNX
    assert load_scorer(out, runtime="onnxruntime").score([0, 1], [2, 3]).shape == (2,)
    # the command fails with one line saying what is missing and what it wrote
    cli_out = tmp_path / "trt-cli"
    rc = main(["-q", "export", "--model", str(ckpt), "--data", SMALL, "--out", str(cli_out), "--target", "tensorrt",
               "--precision", "int8", "--buckets", "1,64", "--tolerance-hr", TINY_HR])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and err.startswith("edgerec: error: TensorRT is not installed")
    assert "trtexec.sh" in err and {"model.onnx", "trtexec.sh", "manifest.json"} <= {p.name for p in cli_out.iterdir()}


def test_runtime_package_never_imports_torch(exported, ds) -> None:
    folders = [str(exported("tflite", "int8").folder), str(exported("onnx", "int8").folder)]
    code = (
        "import sys, json; from edgerec.runtime import load_scorer\n"
        f"out = [load_scorer(f).score([0, 1, 2], [3, 4, 5]).tolist() for f in {folders!r}]\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print(json.dumps(out))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(json.loads(proc.stdout)) == 2


@pytest.mark.parametrize(
    ("users", "items", "message"),
    [
        ([0, 300], [1, 2], "users must lie in 0..299"),
        ([0, -1], [1, 2], "users must lie in 0..299"),
        ([0, 1], [1, 180], "items must lie in 0..179"),
        ([0.5, 1.0], [1, 2], "must be integer ids"),
        ([0, 1], [1], "same length"),
        ([], [], "empty batch"),
        ([[0, 1]], [[1, 2]], "1-D array"),
    ],
)
def test_bad_ids_get_one_line_errors_before_the_runtime(exported, users, items, message) -> None:
    scorer = load_scorer(exported("tflite", "fp32").folder)
    with pytest.raises(EdgerecError, match=message):
        scorer.score(np.array(users), np.array(items))


def test_altered_or_missing_artifact_files_are_refused(tmp_path, exported) -> None:
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(exported("onnx", "fp32").folder, folder)
    data = bytearray((folder / "model.onnx").read_bytes())
    data[-10] ^= 0xFF
    (folder / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(EdgerecError, match=r"sha256 does not match manifest\.json"):
        load_scorer(folder)
    with pytest.raises(EdgerecError, match=r"sha256 does not match manifest\.json"):
        Artifact.load(folder)
    (folder / "model.onnx").unlink()
    with pytest.raises(EdgerecError, match=r"listed in manifest\.json but missing"):
        load_scorer(folder)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--target", "coreml"],
            "target must be one of onnx, tensorrt, onnx-server, triton, tflite, tflite-bundle; got 'coreml'",
        ),
        (["--target", "tflite", "--precision", "int4"], "precision fp32, fp16, int8-dynamic, int8; got 'int4'"),
        (["--target", "onnx", "--runtime", "tflite-runtime"], "onnx runs on onnxruntime; got runtime 'tflite-runtime'"),
        (["--buckets", "0,-4"], "field `buckets.1`: Input should be greater than or equal to 0; got -4"),
    ],
)
def test_cli_bad_export_settings_are_one_line_errors(tmp_path, ckpt, capsys, args, message) -> None:
    out = tmp_path / "out"
    rc = main(["-q", "export", "--model", str(ckpt), "--data", SMALL, "--out", str(out), *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("edgerec: error: ExportConfig: ") and len(err.splitlines()) == 1
    assert message in err
    assert not out.exists()


def test_cli_bad_bucket_syntax_is_an_argparse_usage_error(tmp_path, ckpt, capsys) -> None:
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:
        main(["-q", "export", "--model", str(ckpt), "--out", str(out), "--buckets", "1,x"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "--buckets" in err and "'1,x'" in err
    assert not out.exists()


def test_export_beyond_tolerance_fails_and_writes_nothing(tmp_path, ckpt, ds, capsys) -> None:
    # int8 changes some users' top-10 lists: an agreement of 1 (identical lists for every user) cannot be met
    cfg = ExportConfig(target="onnx", precision="int8", tolerance=ParityBound(hr=1.0, agreement=1.0))
    with pytest.raises(GateFailed, match="top-10 agreement") as e:
        edgerec.export(ckpt, cfg, ds, out=tmp_path / "api")
    rep = e.value.report  # the numbers the gate read, typed, and the gate's result
    assert rep.agreement < 1.0 and set(rep.deltas) >= {"hr@10", "ndcg@10"} and e.value.gate is rep.gate
    assert not rep.gate.passed and any("top-10 agreement" in f for f in rep.gate.failures)
    assert not (tmp_path / "api").exists()
    out = tmp_path / "out"
    rc = main(["-q", "export", "--model", str(ckpt), "--data", SMALL, "--out", str(out), "--target", "onnx",
               "--precision", "int8", "--min-agreement", "1", "--tolerance-hr", "1"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("edgerec: error: ") and "top-10 agreement" in err and len(err.splitlines()) == 1
    assert not out.exists() and not list(tmp_path.glob(".out.*"))  # no temporary folder, no lock file


def test_cli_export_prints_the_verification_and_writes_the_artifact(tmp_path, ckpt, capsys) -> None:
    out = tmp_path / "out"
    rc = main(["-q", "export", "--model", str(ckpt), "--data", SMALL, "--out", str(out), "--target", "onnx"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "verified in onnxruntime" in text and "HR@10" in text
    art = edgerec.load(out)
    assert isinstance(art, Artifact) and art.target == "onnx" and art.status == "verified"


def test_model_file_that_is_not_what_it_claims_is_refused(tmp_path, exported) -> None:
    import shutil

    from edgerec.manifest import write_manifest

    src = exported("tflite", "fp32")
    folder = tmp_path / "fake"
    shutil.copytree(src.folder, folder)
    (folder / "model.tflite").write_bytes(b"this is not a flatbuffer" * 10)
    write_manifest(folder, {k: v for k, v in src.manifest.items() if k not in ("files", "format", "format_version")})
    with pytest.raises(EdgerecError, match="cannot load it"):
        load_scorer(folder)


def test_onnx_int8_reuses_the_compression_steps_calibration(tmp_path, ckpt, ds) -> None:
    compressed = tmp_path / "q"
    args = ["-q", "compress", "--model", str(ckpt), "--data", SMALL, "--quantize", "--observer", "minmax"]
    assert main([*args, "--out", str(compressed)]) == 0
    cfg = ExportConfig(target="onnx", precision="int8", observer="entropy", tolerance=ParityBound(hr=0.05))
    art = edgerec.export(compressed, cfg, ds, out=tmp_path / "art")
    calibration = art.manifest["calibration"]
    assert calibration.startswith("the checkpoint's quant.json") and "minmax" in calibration
    ck = edgerec.load(compressed)
    spec = spec_of(ck)
    assert spec is not None and spec.config.observer == "minmax"
    u, i = pairs(ds)
    with torch.no_grad():
        sim = QuantizedNCF(ck.model, spec)(torch.from_numpy(u), torch.from_numpy(i)).numpy()
    assert np.median(np.abs(load_scorer(tmp_path / "art").score(u, i) - sim)) < 2e-3
