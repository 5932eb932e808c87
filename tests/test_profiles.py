"""Profiles (schema, shipped files), `edgerec export --profile` (steps, cache, budgets) and `edgerec bench`."""

from __future__ import annotations

import importlib.util
import json

import pytest

from edgerec.artifact import Artifact
from edgerec.cli.main import main
from edgerec.errors import EdgerecError
from edgerec.profiles.schema import load_profile, load_profiles, shipped_dir, shipped_names

from .conftest import SMALL, TINY_HR, tiny_profile, write

without_tensorrt = pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here: the engine would be built"
)

SHIPPED = (
    "tflite-android-int8",
    "tflite-android-fp16",
    "tflite-legacy-int8",
    "onnx-cpu-int8",
    "tensorrt-t4-int8",
    "tensorrt-a100-fp16",
    "tensorrt-h100-int8",
    "tflite-android-int8-pruned",
    "tflite-android-shortlist",
)


def test_shipped_profiles_validate() -> None:
    names = {p.name for p in load_profiles(shipped_dir())}
    assert set(SHIPPED) <= names and set(shipped_names()) == names
    legacy = load_profile("tflite-legacy-int8")
    assert legacy.package == "tflite-runtime" and legacy.runtime.version == "==2.14.*"
    assert load_profile("tensorrt-t4-int8").budget.batch == 65536
    assert load_profile("web-int8").bench.client == "web"


GOOD = """name: p
description: d
device: phone
export: {target: tflite, precision: int8, runtime: ai-edge-litert, threads: 1}
runtime: {version: ">=2.1", delegate: xnnpack}
"""


@pytest.mark.parametrize(
    ("text", "message", "value"),
    [
        ("name: p\ntarget: [unclosed\n", "line 3 malformed YAML", ""),
        ("- a\n- b\n", "a profile is a YAML mapping of fields", "got list"),
        (GOOD + "colour: red\n", "Profile: field `colour`: Unexpected keyword argument", "got 'red'"),
        (GOOD.replace("precision: int8", "precision: int4"), "ExportConfig: target tflite supports precision",
         "got 'int4'"),
        (GOOD.replace("target: tflite", "target: coreml"), "ExportConfig: target must be one of onnx, tensorrt, "
         "onnx-server", "got 'coreml'"),
        (GOOD.replace("threads: 1", "threads: 0"),
         "ExportConfig: field `threads`: Input should be greater than or equal to 1", "got 0"),
        (GOOD.replace("delegate: xnnpack", "delegate: gpu"), "field `runtime.delegate` must be one of xnnpack, none",
         "got 'gpu'"),
        (GOOD.replace("runtime: ai-edge-litert", "runtime: onnxruntime"), "ExportConfig: target tflite runs on",
         "got runtime 'onnxruntime'"),
        (GOOD.replace("threads: 1}", "candidates: 5}"), "ExportConfig: field `candidates`: Unexpected keyword",
         "got 5"),
        (GOOD.replace("threads: 1}", "options: {candidates: 5}}"),
         "ExportConfig: target tflite has no option `candidates` (it has no options)", ""),
        (GOOD + "budget: {p50_ms: -1}\n", "Budget: field `p50_ms`: Input should be greater than 0", "got -1"),
        (GOOD + "export: {calibration_size: 10}\n", "ExportConfig: field `calibration_size`: Input should be greater "
         "than or equal to 64", "got 10"),
        (GOOD.replace("name: p", "name: q"), "field `name` must match the file name", "got 'q'"),
        (GOOD.replace("device: phone\n", ""), "Profile: field `device`: Field required", ""),
        (GOOD + "train: {objective: rating}\n", "field `train.objective` must be implicit: a profile exports", ""),
    ],
)  # fmt: skip
def test_bad_profiles_are_one_line_errors_naming_file_and_field(tmp_path, capsys, text, message, value) -> None:
    path = write(tmp_path / "p.yaml", text)
    with pytest.raises(EdgerecError, match=r"p\.yaml") as e:
        load_profile(path)
    assert message in str(e.value) and value in str(e.value)
    # the command prints it as one line and exits 2, before it loads any data or writes anything
    out = tmp_path / "art"
    assert main(["-q", "export", "--profile", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"edgerec: error: {e.value}"] and not out.exists()


def test_unknown_profile_name_lists_the_shipped_ones() -> None:
    with pytest.raises(EdgerecError, match=r"shipped profiles: .*tflite-android-int8"):
        load_profile("no-such-profile")


def run(args: list[str], capsys) -> tuple[int, str, str]:
    rc = main(["-q", *args])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err.strip()


def test_export_profile_runs_steps_reuses_them_and_writes_bench(tmp_path, ckpt, capsys) -> None:
    cache, out = tmp_path / "cache", tmp_path / "art"
    profile = str(tiny_profile("onnx-cpu-int8", tmp_path / "profiles"))
    base = ["export", "--profile", profile, "--model", str(ckpt), "--data", SMALL, "--cache", str(cache)]
    rc, text, _ = run([*base, "--out", str(out), "--dry-run"], capsys)
    assert rc == 0 and "export    to run" in text and not out.exists()
    rc, text, err = run([*base, "--out", str(out)], capsys)
    assert rc == 0, err
    assert "onnx-cpu-int8" in text and "passed" in text
    bench = json.loads((out / "bench.json").read_text())
    assert bench["status"] == "passed" and set(bench["bench"]["latency_ms"]["catalog_top10"]) >= {"p50", "p90", "p99"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["profile"]["name"] == "onnx-cpu-int8" and manifest["calibration"].startswith("calibrated")
    rc, text, _ = run([*base, "--out", str(out), "--dry-run"], capsys)
    assert "export    cached" in text  # the second run reuses the finished export


def test_pruned_phone_profile_prunes_in_steps_distils_and_exports_the_smaller_bundle(tmp_path, ckpt, capsys) -> None:
    out = tmp_path / "art"
    profile = str(tiny_profile("tflite-android-int8-pruned", tmp_path / "profiles"))  # not a test of the HR bound
    rc, _, err = run(["export", "--profile", profile, "--model", str(ckpt), "--data", SMALL,
                         "--out", str(out), "--cache", str(tmp_path / "cache")], capsys)  # fmt: skip
    assert rc == 0, err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["user_vector_dims"] == {"gmf": 4, "mlp": 16}  # half of NeuMF-8's widths
    configs = [json.loads(p.read_text()) for p in (tmp_path / "cache").rglob("config.json")]
    steps = [s["step"] for c in configs for s in c["report"].get("steps", [])]
    assert steps == ["prune 1/2", "distill 1/2", "prune 2/2", "distill"]
    assert json.loads((out / "bench.json").read_text())["status"] == "passed"


def test_export_profile_over_budget_fails_naming_the_budget(tmp_path, ckpt, capsys) -> None:
    text = load_profile("onnx-cpu-int8").to_json()
    text.update(name="tiny-budget", budget={"bytes": 1000, "p50_ms": None, "p99_ms": None, "batch": 0})
    text["export"]["tolerance"]["hr"] = float(TINY_HR)
    import yaml

    path = write(tmp_path / "tiny-budget.yaml", yaml.safe_dump(text))
    out = tmp_path / "art"
    rc, _, err = run(["export", "--profile", str(path), "--model", str(ckpt), "--data", SMALL, "--out", str(out),
                      "--cache", str(tmp_path / "cache")], capsys)  # fmt: skip
    assert rc == 2 and "failed: bytes" in err and "> budget 1,000" in err and len(err.splitlines()) == 1
    assert err.startswith("edgerec: error: profile tiny-budget: ")
    assert (out / "bench.json").exists()  # the measurements that failed the budget are kept for inspection


@without_tensorrt
def test_tensorrt_profile_here_says_why_and_what_was_written(tmp_path, ckpt, capsys) -> None:
    out = tmp_path / "trt"
    profile = str(tiny_profile("tensorrt-t4-int8", tmp_path / "profiles"))
    rc, _, err = run(["export", "--profile", profile, "--model", str(ckpt), "--data", SMALL,
                      "--out", str(out), "--cache", str(tmp_path / "cache")], capsys)  # fmt: skip
    assert rc == 2 and "export-only: TensorRT is not installed" in err and len(err.splitlines()) == 1
    assert err.startswith("edgerec: error: profile tensorrt-t4-int8: ")
    assert {"model.onnx", "trtexec.sh", "manifest.json"} <= {p.name for p in out.iterdir()}
    assert Artifact.load(out).status == "export-only"


def test_bench_artifact_json_keys(tmp_path, ckpt, capsys) -> None:
    art = tmp_path / "art"
    assert main(["-q", "export", "--model", str(ckpt), "--data", SMALL, "--target", "tflite", "--buckets", "1,0",
                 "--out", str(art)]) == 0  # fmt: skip
    capsys.readouterr()
    js = tmp_path / "bench.json"
    rc, text, err = run(["bench", str(art), "--data", SMALL, "--json", str(js), "--min-time", "0.05"], capsys)
    assert rc == 0, err
    rec = json.loads(js.read_text())
    assert set(rec["latency_ms"]) == {"1", "180", "catalog_top10"}
    assert all(set(v) >= {"p50", "p90", "p99"} for v in rec["latency_ms"].values())
    assert rec["bytes"] == (art / "model.tflite").stat().st_size and 0 < rec["metrics"]["hr@10"] <= 1
    assert rec["load_ms"] > 0 and rec["peak_rss_mb"] > 0 and "catalog + top-10" in text


def test_bench_refuses_altered_artifacts_and_other_data(tmp_path, ckpt, capsys) -> None:
    art = tmp_path / "art"
    assert main(["-q", "export", "--model", str(ckpt), "--data", SMALL, "--target", "onnx", "--out", str(art)]) == 0
    capsys.readouterr()
    rc, _, err = run(["bench", str(art), "--data", "synthetic:users=120,items=150"], capsys)
    assert rc == 2 and "fingerprint differs" in err  # other data, matched to the artifact's ids, is still not its data
    (art / "id_maps.json").write_text("{}")
    rc, _, err = run(["bench", str(art)], capsys)
    assert rc == 2 and "sha256 does not match" in err and len(err.splitlines()) == 1
    rc, _, err = run(["bench", str(tmp_path / "nowhere")], capsys)
    assert rc == 2 and "no such folder; expected an artifact folder" in err and len(err.splitlines()) == 1


@without_tensorrt
def test_compare_runs_runnable_profiles_and_explains_the_rest(tmp_path, ckpt, capsys) -> None:
    folder = tmp_path / "profiles"
    folder.mkdir()
    for name in ("onnx-cpu-int8", "tensorrt-t4-int8", "tflite-legacy-int8"):
        tiny_profile(name, folder)
    args = ["--model", str(ckpt), "--data", SMALL, "--cache", str(tmp_path / "cache"), "--min-time", "0.05"]
    rc, text, err = run(["compare", str(folder), "--out", str(tmp_path / "out"), *args], capsys)
    assert rc == 0, err
    rows = {r["profile"]: r for r in json.loads((tmp_path / "out" / "profiles.json").read_text())["rows"]}
    assert rows["onnx-cpu-int8"]["status"] == "passed"
    assert rows["tensorrt-t4-int8"]["status"].startswith("export-only: TensorRT is not installed")
    assert rows["tflite-legacy-int8"]["status"].startswith("export-only: tflite-runtime ==2.14.* is not installed")
    assert rows["pytorch-eager (source)"]["status"] == "baseline"
    md = (tmp_path / "out" / "profiles.md").read_text()
    assert "Generated by `edgerec " in md and (tmp_path / "out" / "profiles.png").stat().st_size > 0
    assert "pytorch-eager" in text


@pytest.mark.parametrize(
    ("yaml_export", "flags"),
    [
        ("{target: onnx, calibration_size: 10}", ["--target", "onnx", "--calibration-size", "10"]),
        ("{target: onnx, options: {candidates: 5}}", ["--target", "onnx", "--candidates", "5"]),
        ("{target: tflite-bundle, options: {candidates: -1}}", ["--target", "tflite-bundle", "--candidates", "-1"]),
        ("{target: tflite, precision: int4}", ["--target", "tflite", "--precision", "int4"]),
        ("{target: coreml}", ["--target", "coreml"]),
    ],
)
def test_a_profile_and_the_flags_give_the_same_one_line_error(tmp_path, ckpt, capsys, yaml_export, flags) -> None:
    """The same value is refused by the same config with the same message, from a YAML profile and from flags."""
    path = write(tmp_path / "p.yaml", f"name: p\ndescription: d\ndevice: x\nexport: {yaml_export}\n")
    with pytest.raises(EdgerecError) as e:
        load_profile(path)
    rc, _, err = run(["export", "--model", str(ckpt), "--out", str(tmp_path / "out"), *flags], capsys)
    assert rc == 2 and len(err.splitlines()) == 1 and not (tmp_path / "out").exists()
    assert err == f"edgerec: error: {str(e.value).removeprefix(f'{path}: ')}"
    assert err.startswith("edgerec: error: ExportConfig: ")
