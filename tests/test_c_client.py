"""The native client (examples/c/bundle_client.c, the LiteRT C API of libLiteRt.so) gives Python LiteRT's answers.

The client is built with gcc into a temporary folder with libLiteRt.so beside it and run with an empty environment
(no Python, no LD_LIBRARY_PATH). Its request file names the signature, the inputs and the wanted outputs; every name
comes from the bundle's manifest here, none is built into the C program. Outputs named output_0, output_1, ... are
given their roles by the manifest's order.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import edgerec
from edgerec.apps.native import Tensor, build_client, decode, encode
from edgerec.exporters.config import ExportConfig
from edgerec.gates import ParityBound
from edgerec.runtime import load_bundle

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "examples" / "c"
# each signature's output roles, in the manifest's order (for bundles whose outputs are named output_N)
ROLES = {
    "recommend": ["top_items", "top_scores", "scores"],
    "score": ["scores", "top_items", "top_scores"],
    "retrieve": ["items", "scores"],
    "fold_in": ["user_gmf", "user_mlp"],
    "explain": ["reasons", "reason_weights"],
}
SCORE_TOL, CHAIN_TOL = 1e-5, 1e-4
TIMEOUT = 120  # seconds for one run of the client (a few milliseconds in practice)


def run_client(client: Path, *args: str | Path) -> subprocess.CompletedProcess:
    """The client with an empty environment; subprocess.run waits for it (and kills it past the timeout)."""
    return subprocess.run(
        [str(client), *map(str, args)], env={}, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


def roles(manifest: dict[str, Any], sig: str) -> dict[str, str]:
    """{role: the output's name in the model}: the name itself once outputs are named, else the manifest's order."""
    names = list(manifest["signatures"][sig]["outputs"])
    if all(re.fullmatch(r"output_\d+", n) for n in names):
        return dict(zip(ROLES[sig], names, strict=True))
    return {n: n for n in names}


def call(tmp_path: Path, client: Path, model: Path, requests: list) -> list[dict[str, np.ndarray]]:
    (tmp_path / "requests.bin").write_bytes(encode(requests))
    out = tmp_path / "outputs.bin"
    proc = run_client(client, model, tmp_path / "requests.bin", out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # LiteRT's own log lines are silenced unless --verbose
    return decode(out.read_bytes())


def assert_same(sig: str, manifest: dict[str, Any], got: dict[str, np.ndarray], want: dict[str, Any], tol: float):
    """Integer outputs (item indices, reasons) identical, float ones within tol; dtypes and shapes as the manifest."""
    assert set(got) == set(manifest["signatures"][sig]["outputs"])
    for name, spec in manifest["signatures"][sig]["outputs"].items():
        assert str(got[name].dtype) == spec[0] and list(got[name].shape) == spec[1], (sig, name)
        ref = np.asarray(want[name])
        if got[name].dtype.kind == "f":
            np.testing.assert_allclose(got[name], ref, rtol=0, atol=tol, err_msg=f"{sig} {name}")
        else:
            np.testing.assert_array_equal(got[name], ref, err_msg=f"{sig} {name}")


@pytest.fixture(scope="module")
def client(tmp_path_factory) -> Path:
    """bundle_client built by examples/c/build.sh, libLiteRt.so beside it."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed: the C client cannot be built here (CI has gcc)")
    out = tmp_path_factory.mktemp("cclient")
    client = build_client(SOURCE, out)
    assert sorted(p.name for p in out.iterdir()) == ["bundle_client", "libLiteRt.so"]
    return client


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, ckpt, ds) -> tuple[Path, dict[str, Any]]:
    """The int8 phone bundle of SMALL with the score and retrieve signatures over 20 candidates."""
    cfg = ExportConfig(
        target="tflite-bundle",
        precision="int8",
        tolerance=ParityBound(hr=0.05),
        options={"candidates": 20, "explain": True},
    )
    art = edgerec.export(ckpt, cfg, ds, out=tmp_path_factory.mktemp("cbundle") / "b")
    return art.folder, art.manifest


@pytest.fixture(scope="module")
def litert(bundle):
    """Python's LiteRT on the same model: {signature: runner(**inputs) -> {output name: array}}."""
    from ai_edge_litert.interpreter import Interpreter

    folder, manifest = bundle
    interp = Interpreter(model_path=str(folder / manifest["model_file"]), num_threads=1)
    return {sig: interp.get_signature_runner(sig) for sig in manifest["signatures"]}


def user_vectors(folder: Path, manifest: dict[str, Any], users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    g, d = int(manifest["user_vector_dims"]["gmf"]), int(manifest["user_vector_dims"]["mlp"])
    vectors = np.load(folder / manifest["user_vectors"])[users].astype(np.float32)
    assert vectors.shape[1] == g + d
    return vectors[:, :g].reshape(-1, 1, g), vectors[:, g:].reshape(-1, 1, d)


def test_the_client_reads_the_signatures_the_manifest_describes(client, bundle) -> None:
    """Signature keys, tensor names, dtypes and shapes through the C API (LiteRtRankedTensorType, LiteRtLayout: the
    declared ABI) equal the manifest's."""
    folder, manifest = bundle
    proc = run_client(client, folder / "model.tflite", "--list")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    listed: dict[str, dict[str, dict[str, list]]] = {}
    for line in proc.stdout.splitlines():
        words = line.split()
        if words[0] == "signature":
            sig = listed.setdefault(words[1], {"inputs": {}, "outputs": {}})
        else:
            shape = [] if words[3] == "scalar" else [int(x) for x in words[3].split(",")]
            sig[words[0] + "s"][words[1]] = [words[2], shape]
    want = {
        key: {part: {name: spec[:2] for name, spec in s[part].items()} for part in ("inputs", "outputs")}
        for key, s in manifest["signatures"].items()
    }
    assert listed == want


def test_recommend_score_and_retrieve_equal_python_litert(tmp_path, client, bundle, litert) -> None:
    """recommend for 30 users, score on their candidate lists (one padded with -1), retrieve, and retrieve -> score
    chained inside the client: top-K items identical, scores within 1e-5 of Python's LiteRT."""
    folder, manifest = bundle
    sigs = manifest["signatures"]
    rng = np.random.default_rng(0)
    users = rng.choice(int(manifest["n_users"]), size=30, replace=False)
    ug, um = user_vectors(folder, manifest, users)
    n_items, k = int(manifest["n_items"]), int(manifest["k"])
    requests, expected = [], []
    for i in range(len(users)):
        vec = {"user_gmf": ug[i], "user_mlp": um[i]}
        requests.append(("recommend", {n: Tensor(v) for n, v in vec.items()}, list(sigs["recommend"]["outputs"])))
        expected.append(("recommend", litert["recommend"](**vec)))
        if "score" in sigs:
            (c,) = sigs["score"]["inputs"]["items"][1]
            items = rng.choice(n_items, size=c, replace=False).astype(np.int32)
            if i == 0:
                items[c // 2 :] = -1  # a shorter list, padded
            inputs = {**vec, "items": items}
            requests.append(("score", {n: Tensor(v) for n, v in inputs.items()}, list(sigs["score"]["outputs"])))
            expected.append(("score", litert["score"](**inputs)))
        if "retrieve" in sigs and "score" in sigs:  # the two-stage path: retrieve's items re-ranked by score
            retrieved = roles(manifest, "retrieve")["items"]
            requests.append(("retrieve", {"user_gmf": Tensor(ug[i])}, list(sigs["retrieve"]["outputs"])))
            want = litert["retrieve"](user_gmf=ug[i])
            expected.append(("retrieve", want))
            chained = {"user_gmf": Tensor(ug[i]), "user_mlp": Tensor(um[i])}
            chained["items"] = Tensor(request=len(requests) - 1, name=retrieved, dtype="int32")
            requests.append(("score", chained, list(sigs["score"]["outputs"])))
            expected.append(("score", litert["score"](**vec, items=want[retrieved])))
    got = call(tmp_path, client, folder / "model.tflite", requests)
    assert len(got) == len(expected)
    for out, (sig, want) in zip(got, expected, strict=True):
        assert_same(sig, manifest, out, want, SCORE_TOL)

    # and edgerec's own API on the bundle agrees with the C client on every user's top-K
    scorer = load_bundle(folder)
    top = roles(manifest, "recommend")
    recs = [out for out, (sig, _) in zip(got, expected, strict=True) if sig == "recommend"]
    for i, out in enumerate(recs):
        items, scores, _ = scorer.recommend(ug[i], um[i])
        assert len(out[top["top_items"]]) == k
        np.testing.assert_array_equal(out[top["top_items"]], items)
        np.testing.assert_allclose(out[top["top_scores"]], scores, rtol=0, atol=SCORE_TOL)


def test_fold_in_recommend_explain_chained_in_the_client_equal_python_litert(tmp_path, client, bundle, litert):
    """10 seeded histories: fold_in -> recommend -> explain inside the client, each step fed the previous step's
    outputs; Python's LiteRT does the same chain. Items and reasons identical, scores within 1e-4."""
    folder, manifest = bundle
    sigs = manifest["signatures"]
    missing = [s for s in ("fold_in", "explain") if s not in sigs]
    if missing:
        pytest.skip(f"the bundle lacks the {' and '.join(missing)} signature(s) (its manifest lists {sorted(sigs)})")
    h, n_items = int(manifest["max_history"]), int(manifest["n_items"])
    fold, rec = roles(manifest, "fold_in"), roles(manifest, "recommend")
    rng = np.random.default_rng(7)
    requests, expected = [], []
    for _ in range(10):
        length = int(rng.integers(1, h + 1))
        history = np.zeros(h, dtype=np.int32)
        mask = np.zeros(h, dtype=np.float32)
        history[:length] = rng.choice(n_items, size=length, replace=False)
        mask[:length] = 1.0
        base = len(requests)
        requests.append(
            (
                "fold_in",
                {"history": Tensor(history), "history_mask": Tensor(mask)},
                list(sigs["fold_in"]["outputs"]),
            )
        )
        vectors = {v: Tensor(request=base, name=fold[v], dtype="float32") for v in ("user_gmf", "user_mlp")}
        requests.append(("recommend", vectors, list(sigs["recommend"]["outputs"])))
        explain_in = {
            **vectors,
            "history": Tensor(history),
            "history_mask": Tensor(mask),
            "items": Tensor(request=base + 1, name=rec["top_items"], dtype="int32"),
        }
        requests.append(("explain", explain_in, list(sigs["explain"]["outputs"])))
        folded = litert["fold_in"](history=history, history_mask=mask)
        vec = {v: folded[fold[v]] for v in ("user_gmf", "user_mlp")}
        recommended = litert["recommend"](**vec)
        explained = litert["explain"](**vec, history=history, history_mask=mask, items=recommended[rec["top_items"]])
        expected += [("fold_in", folded), ("recommend", recommended), ("explain", explained)]
    got = call(tmp_path, client, folder / "model.tflite", requests)
    for out, (sig, want) in zip(got, expected, strict=True):
        assert_same(sig, manifest, out, want, CHAIN_TOL)


def test_bench_prints_p50_and_p99_of_each_signature(tmp_path, client, bundle) -> None:
    folder, manifest = bundle
    ug, um = user_vectors(folder, manifest, np.array([3]))
    wanted = [roles(manifest, "recommend")["top_items"]]
    (tmp_path / "requests.bin").write_bytes(
        encode([("recommend", {"user_gmf": Tensor(ug[0]), "user_mlp": Tensor(um[0])}, wanted)])
    )
    proc = run_client(client, folder / "model.tflite", tmp_path / "requests.bin", "--bench", "200")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    (line,) = proc.stdout.splitlines()
    m = re.fullmatch(r"bench recommend calls=200 warmup=20 threads=1 p50_us=(\S+) p99_us=(\S+) mean_us=\S+", line)
    assert m and 0 < float(m[1]) <= float(m[2]), line


def _bad_requests(manifest: dict[str, Any], ug: np.ndarray, um: np.ndarray) -> dict[str, tuple[bytes, str]]:
    """Request files the client must refuse: {case: (file bytes, what its one stderr line says)}."""
    outs = list(manifest["signatures"]["recommend"]["outputs"])
    ok = {"user_gmf": Tensor(ug), "user_mlp": Tensor(um)}
    return {
        "wrong input size": (
            encode([("recommend", {**ok, "user_mlp": Tensor(um[:, :-1])}, outs)]),
            r"recommend input user_mlp needs \d+ bytes, got \d+",
        ),
        "missing signature": (encode([("no_such_signature", ok, outs)]), "has no signature no_such_signature"),
        "wrong dtype": (
            encode([("recommend", {**ok, "user_gmf": Tensor(ug.astype(np.float64))}, outs)]),
            "user_gmf is float32, not float64",
        ),
        "missing input": (encode([("recommend", {"user_gmf": ok["user_gmf"]}, outs)]), "user_mlp is missing"),
        "unknown output": (encode([("recommend", ok, ["no_such_output"])]), "has no output no_such_output"),
        "truncated file": (encode([("recommend", ok, outs)])[:-3], "truncated|bad length"),
        "reference to a later request": (
            encode([("recommend", {**ok, "user_gmf": Tensor(request=1, name=outs[0], dtype="float32")}, outs)]),
            "not an earlier wanted output",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing model",
        "not a model",
        "wrong input size",
        "missing signature",
        "wrong dtype",
        "missing input",
        "unknown output",
        "truncated file",
        "reference to a later request",
    ],
)
def test_bad_input_is_one_stderr_line_and_exit_2(tmp_path, client, bundle, case) -> None:
    folder, manifest = bundle
    ug, um = user_vectors(folder, manifest, np.array([0]))
    model, pattern = folder / "model.tflite", ""
    requests = encode([("recommend", {"user_gmf": Tensor(ug[0]), "user_mlp": Tensor(um[0])}, [])])
    if case == "missing model":
        model, pattern = tmp_path / "nowhere" / "model.tflite", "cannot open model .*No such file"
    elif case == "not a model":
        model, pattern = folder / "manifest.json", "LiteRtCreateModelFromFile failed .*kLiteRtStatusError"
    else:
        requests, pattern = _bad_requests(manifest, ug[0], um[0])[case]
    (tmp_path / "requests.bin").write_bytes(requests)
    out = tmp_path / "outputs.bin"
    proc = run_client(client, model, tmp_path / "requests.bin", out)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and proc.stderr.endswith("\n"), proc.stderr
    assert re.match(r"bundle_client: .*(" + pattern + ")", lines[0]), lines[0]
    assert proc.stdout == "" and not out.exists()


def test_a_shortlist_recommend_equals_python_litert(tmp_path, client, ckpt, ds) -> None:
    """A bundle whose recommend ranks a shortlist: all four outputs (top-K, the shortlist and its scores) from the C
    client equal Python's LiteRT for 20 users."""
    from ai_edge_litert.interpreter import Interpreter

    cfg = ExportConfig(target="tflite-bundle", precision="int8", options={"shortlist": 40, "table_recall": 0.0})
    art = edgerec.export(ckpt, cfg, ds, out=tmp_path / "b")
    folder, manifest = art.folder, art.manifest
    outputs = list(manifest["signatures"]["recommend"]["outputs"])
    assert outputs == ["top_items", "top_scores", "shortlist", "shortlist_scores"]
    runner = Interpreter(model_path=str(folder / "model.tflite"), num_threads=1).get_signature_runner("recommend")
    ug, um = user_vectors(folder, manifest, np.arange(0, 300, 15))
    requests, expected = [], []
    for i in range(len(ug)):
        vec = {"user_gmf": ug[i], "user_mlp": um[i]}
        requests.append(("recommend", {n: Tensor(v) for n, v in vec.items()}, outputs))
        expected.append(("recommend", runner(**vec)))
    got = call(tmp_path, client, folder / "model.tflite", requests)
    for out, (sig, want) in zip(got, expected, strict=True):
        assert_same(sig, manifest, out, want, SCORE_TOL)
