"""The Triton model repository (target triton) and a real Triton Inference Server on it (`edgerec serve`).

The repository's configs are parsed back with Triton's own protobuf for every shipped triton profile; the served
answers (HTTP and gRPC) are non-empty and equal to the local scorer's; bad requests get error responses while the
server keeps serving (HTTP 400 / gRPC INVALID_ARGUMENT for a bad request, 500 / INTERNAL for a fault of the server);
a changed file, a used port, a missing Triton and a backend this Triton lacks are one-line refusals; stopping leaves
no process and no temporary folder behind, and a restart after a kill -9 of `edgerec serve` takes its ports back
from the orphaned tritonserver at once. The server tests need the server environment
(`edgerec serve --setup`): the session fixture creates it when it is missing (about 30 s from pip's cache, 3 min
from the index).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import edgerec
from edgerec.errors import EdgerecError
from edgerec.profiles.pipeline import export_config
from edgerec.profiles.schema import load_profile, shipped_names
from edgerec.serving import runs, triton_config
from edgerec.serving.client import Client
from edgerec.serving.config import LoadConfig
from edgerec.serving.load import bench_server
from edgerec.serving.server import TritonServer, check_repository, free_ports

from .conftest import SMALL

TRITON_PROFILES = [n for n in shipped_names() if n.startswith("triton-")]


@pytest.fixture(scope="module")
def repo(tmp_path_factory, ckpt) -> Path:
    art = edgerec.export(edgerec.load(ckpt), edgerec.ExportConfig(target="triton"), data=SMALL)
    return art.save(tmp_path_factory.mktemp("triton") / "repo")


def neumf_top(ck, users: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    n = ck.model.arch.n_items
    with torch.no_grad():
        full = ck.model(torch.from_numpy(np.repeat(users, n)), torch.arange(n).repeat(len(users))).view(len(users), n)
    top = torch.topk(full, k, dim=1)
    return top.indices.numpy(), top.values.numpy()


def test_the_repository_layout_and_its_local_scores(repo, ckpt) -> None:
    ck = edgerec.load(ckpt)
    m = json.loads((repo / "manifest.json").read_text())
    for path in ("recommend/config.pbtxt", "recommend/1/model.onnx", "recommend/1/model.py", "score/config.pbtxt",
                 "score/1/model.onnx", "score/1/model.py", "id_maps.json", "README.md", "recommend/1/model.json",
                 "recommend/1/id_maps.json", "feedback/config.pbtxt", "feedback/1/model.py",
                 "feedback/1/edgerec_events.py"):  # fmt: skip
        assert path in m["files"], path  # every file hashed, nested paths included
    assert m["target"] == "triton" and m["status"] == "verified" and m["triton"]["backend"] == "python"
    assert m["verification"]["max_abs_score_error"] <= 1e-5
    scorer = edgerec.load(repo).scorer()
    users = np.arange(0, ck.model.arch.n_users, 7)
    items, scores = scorer.recommend(users)
    want_items, want_scores = neumf_top(ck, users)
    np.testing.assert_array_equal(items, want_items)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)
    cand = np.stack([np.arange(20) + u % 50 for u in users])
    with torch.no_grad():
        want = ck.model(torch.from_numpy(np.repeat(users, 20)), torch.from_numpy(cand.reshape(-1))).view(-1, 20)
    np.testing.assert_allclose(scorer.score_candidates(users, cand), want.numpy(), atol=1e-5)


@pytest.mark.parametrize("name", TRITON_PROFILES)
def test_every_triton_profile_writes_configs_that_parse_back(name, ckpt, tmp_path) -> None:
    profile = load_profile(name)
    art = edgerec.export(edgerec.load(ckpt), export_config(profile), data=SMALL, out=tmp_path / "r")
    for model in triton_config.MODELS:
        c = triton_config.check(art.folder / model / "config.pbtxt", art.folder / model / "1" / "model.onnx")
        assert c.max_batch_size == profile.export.options.max_batch_size
        assert list(c.dynamic_batching.preferred_batch_size) == list(profile.export.options.preferred_batch_sizes)
        assert c.dynamic_batching.max_queue_delay_microseconds == profile.export.options.max_queue_delay_us
        kind = "KIND_GPU" if profile.export.options.kind == "gpu" else "KIND_CPU"
        assert triton_config.pb().ModelInstanceGroup.Kind.Name(c.instance_group[0].kind) == kind
        assert c.version_policy.latest.num_versions == profile.export.options.served_versions
    if profile.export.options.backend == "tensorrt_plan":  # no TensorRT here: export-only, with the commands to run
        assert art.status == "export-only" and "build_engines.sh" in art.manifest["export_only"]
        script = (art.folder / "build_engines.sh").read_text()
        assert "--saveEngine=recommend/1/model.plan" in script and "--maxShapes=users:1024" in script
        assert "items:1024x" in script and "--fp16" in script
    else:
        assert art.status == "verified"


def test_configs_are_checked_against_the_model_file(repo, tmp_path) -> None:
    bad = tmp_path / "recommend"
    shutil.copytree(repo / "recommend", bad)
    onnx_file = bad / "1" / "model.onnx"
    text = (bad / "config.pbtxt").read_text()
    for edit, match in (
        (text.replace("max_batch_size: 64", "max_batch_sise: 64"), "not a Triton model config"),
        (text.replace("KIND_CPU", "KIND_TPU"), "not a Triton model config"),
        (text.replace('name: "top_items"', 'name: "items_top"'), "outputs"),
        (text.replace("TYPE_INT64", "TYPE_INT32", 1), "TYPE_INT32 but the model has TYPE_INT64"),
        (text.replace("dims: 10", "dims: 11", 1), "do not match the model's"),
        (text.replace('name: "recommend"', 'name: "other"'), "not the model folder's"),
    ):
        (bad / "config.pbtxt").write_text(edit)
        with pytest.raises(EdgerecError, match=match):
            triton_config.check(bad / "config.pbtxt", onnx_file)


def test_a_changed_file_refuses_to_serve(repo, tmp_path) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(repo, copy)
    with open(copy / "score" / "1" / "model.py", "a") as fh:
        fh.write("\n# changed\n")
    with pytest.raises(EdgerecError, match="sha256 does not match"):
        check_repository(copy)
    with pytest.raises(EdgerecError, match="sha256 does not match"):
        TritonServer(copy).start()  # refused before Triton is even looked for


def test_triton_not_installed_says_what_to_run(repo, tmp_path) -> None:
    with pytest.raises(EdgerecError, match=r"Triton is not installed .*edgerec serve --setup"):
        TritonServer(repo, env_path=tmp_path / "no-env").start()


# -- a real server --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def serve_env():
    from edgerec.serving import env

    try:
        return env.find()
    except EdgerecError:
        return env.setup(say=lambda line: None)


@pytest.fixture(scope="module")
def server(repo, serve_env):
    http, grpc = free_ports(2)
    with TritonServer(repo, http_port=http, grpc_port=grpc, env=serve_env) as s:
        yield s
    assert not s.alive()


def _processes(pattern: str) -> str:
    return subprocess.run(["pgrep", "-af", pattern], capture_output=True, text=True).stdout.strip()


def _gone(pid: int) -> bool:
    """No such process, or a zombie (dead, not yet reaped by whoever inherited it)."""
    try:
        return "zombie" in Path(f"/proc/{pid}/status").read_text(errors="replace")
    except OSError:
        return True


def _processes_in_group(pgid: int) -> str:
    return subprocess.run(["pgrep", "-a", "-g", str(pgid)], capture_output=True, text=True).stdout.strip()


def _children(pid: int) -> list[int]:
    return [int(p) for p in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()]


CLIENT_ERROR = {"http": "400", "grpc": "StatusCode.INVALID_ARGUMENT"}
SERVER_ERROR = {"http": "500", "grpc": "StatusCode.INTERNAL"}


def infer_status(url: str, protocol: str, model: str, arrays: dict[str, np.ndarray]) -> str:
    """One raw tritonclient request: "OK", or the error's status (the HTTP code, or the gRPC StatusCode)."""
    import tritonclient.grpc as tg
    import tritonclient.http as th
    from tritonclient.utils import InferenceServerException

    tc: Any = th if protocol == "http" else tg
    dtypes = {np.dtype(np.int64): "INT64", np.dtype(np.float32): "FP32", np.dtype(object): "BYTES"}
    inputs = []
    for name, a in arrays.items():
        x = tc.InferInput(name, list(a.shape), dtypes[a.dtype])
        x.set_data_from_numpy(a)
        inputs.append(x)
    client = tc.InferenceServerClient(url)
    try:
        client.infer(model, inputs)
        return "OK"
    except InferenceServerException as e:
        return str(e.status())
    finally:
        client.close()


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_served_answers_equal_the_local_scorer(server, repo, protocol) -> None:
    url = server.http_url if protocol == "http" else server.grpc_url
    local = edgerec.load(repo).scorer()
    with Client(url, protocol) as c:
        assert c.k == 10
        users = np.arange(local.n_users)
        items, scores = [], []
        for s in range(0, len(users), 37):  # requests of several users too (each a batch of [b, 1])
            i, sc = c.recommend(users[s : s + 37])
            items.append(i)
            scores.append(sc)
        items, scores = np.concatenate(items), np.concatenate(scores)
        assert items.shape == (local.n_users, 10) and np.isfinite(scores).all()  # non-empty, real answers
        want_items, want_scores = local.recommend(users)
        np.testing.assert_array_equal(items, want_items)
        np.testing.assert_allclose(scores, want_scores, atol=1e-6)
        cand = np.array([[5, 0, 17, 3]])
        np.testing.assert_allclose(c.score([9], cand), local.score_candidates([9], cand), atol=1e-6)
        top3, _ = c.recommend([4], k=3)
        np.testing.assert_array_equal(top3[0], want_items[4, :3])


def test_bad_requests_get_errors_and_the_server_keeps_serving(server) -> None:
    import tritonclient.http as tc
    from tritonclient.utils import InferenceServerException

    local = edgerec.load(server.repo).scorer()
    with Client(server.http_url) as c:
        n_users, n_items = local.n_users, local.n_items
        for call, match in (
            (lambda: c.recommend([n_users]), f"refused the request: unknown user {n_users}"),
            (lambda: c.recommend([-1]), "unknown user -1"),
            (lambda: c.score([1], [[0, n_items]]), f"unknown item {n_items}"),
            (lambda: c.score([1], [list(range(c.max_candidates + 1))]), "candidate lists must hold"),
            (lambda: c.recommend([1], k=11), r"k must lie in 1\.\.10"),
        ):
            with pytest.raises(EdgerecError, match=match):
                call()
        raw = tc.InferenceServerClient(server.http_url)
        for dtype, arr in (("FP32", np.array([[1.0]], np.float32)), ("INT64", np.array([[1, 2]], np.int64))):
            x = tc.InferInput("users", list(arr.shape), dtype)
            x.set_data_from_numpy(arr)
            with pytest.raises(InferenceServerException):  # Triton checks dtypes and shapes against the config
                raw.infer("recommend", [x])
        raw.close()
        items, _ = c.recommend([1])
        assert items.shape == (1, 10)  # still serving
    assert server.alive()


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_bad_requests_are_client_errors_over_both_protocols(server, protocol) -> None:
    """edgerec's own checks (and Triton's) answer a wrong request with 400 / INVALID_ARGUMENT, never a server error."""
    url = server.http_url if protocol == "http" else server.grpc_url
    local = edgerec.load(server.repo).scorer()
    sizes = json.loads((server.repo / "recommend" / "1" / "model.json").read_text())
    n_users, n_items, longest = local.n_users, local.n_items, sizes["max_candidates"]
    i64 = np.int64
    click = {"user": [b"1"], "event": [b"click"], "item": [b"2"]}
    feedback = {k: np.array(v, object) for k, v in click.items()} | {"timestamp": np.array([int(time.time())], i64)}
    bad = {
        "unknown user": ("recommend", {"users": np.array([[n_users]], i64)}),
        "negative user": ("recommend", {"users": np.array([[-1]], i64)}),
        "unknown item": ("score", {"users": np.array([[1]], i64), "items": np.array([[0, n_items]], i64)}),
        "too many candidates": ("score", {"users": np.array([[1]], i64), "items": np.zeros((1, longest + 1), i64)}),
        "no candidates": ("score", {"users": np.array([[1]], i64), "items": np.zeros((1, 0), i64)}),
        "a float user": ("recommend", {"users": np.array([[1.0]], np.float32)}),  # Triton's own check
        "two users in one row": ("recommend", {"users": np.array([[1, 2]], i64)}),  # Triton's own check
        "no candidate list": ("score", {"users": np.array([[1]], i64)}),  # Triton's own check
        "feedback logging off": ("feedback", feedback),
    }
    got = {name: infer_status(url, protocol, model, arrays) for name, (model, arrays) in bad.items()}
    assert got == dict.fromkeys(bad, CLIENT_ERROR[protocol])
    assert infer_status(url, protocol, "recommend", {"users": np.array([[1]], i64)}) == "OK"


def test_a_fault_of_the_server_is_a_server_error(repo, serve_env) -> None:
    """A model's process dies (as under the OOM killer): its requests get 500 / INTERNAL, the others are answered."""
    http, grpc = free_ports(2)
    with TritonServer(repo, http_port=http, grpc_port=grpc, env=serve_env) as server:
        stubs = subprocess.run(["pgrep", "-g", str(server.proc.pid), "-f", "recommend/1/model.py"],
                               capture_output=True, text=True).stdout.split()  # fmt: skip
        assert len(stubs) == 1, stubs
        os.kill(int(stubs[0]), signal.SIGKILL)
        one = {"users": np.array([[1]], np.int64)}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and infer_status(server.http_url, "http", "recommend", one) == "OK":
            time.sleep(0.1)  # the backend notices a dead stub at its next request or health check
        assert infer_status(server.http_url, "http", "recommend", one) == SERVER_ERROR["http"]
        assert infer_status(server.grpc_url, "grpc", "recommend", one) == SERVER_ERROR["grpc"]
        with Client(server.grpc_url, "grpc") as c, pytest.raises(EdgerecError, match=r"failed \(StatusCode.INTERNAL\)"):
            c.recommend([1])
        scores = {"users": one["users"], "items": np.array([[0, 1]], np.int64)}
        assert infer_status(server.http_url, "http", "score", scores) == "OK"  # the other models keep serving


def test_load_at_concurrency_8_has_no_errors_and_batches(server) -> None:
    n_users = edgerec.load(server.repo).manifest["n_users"]
    results = bench_server(server.http_url, LoadConfig(concurrency=(8,), requests=400), n_users, server.grpc_url)
    assert [r.name for r in results] == ["triton http", "triton grpc"]
    for r in results:
        assert r.errors == 0 and r.requests == 400 and r.per_second > 0
        assert r.server["executions"] >= 1 and r.server["batch_mean"] >= 1.0
        assert sum(b * n for b, n in r.server["batches"].items()) == 400  # every request ran, in Triton's batches


def test_a_used_port_is_refused(server, repo, serve_env) -> None:
    """A port held by a live server (its owner alive: never stopped) or by any other process is one line."""
    held_by = rf"{server.http_port} is in use by tritonserver pid {server.proc.pid} serving .* \(started by pid"
    with pytest.raises(EdgerecError, match=held_by):
        TritonServer(repo, http_port=server.http_port, grpc_port=free_ports(1)[0], env=serve_env).start()
    assert server.alive()
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        with pytest.raises(EdgerecError, match=f"^127.0.0.1:{port} is in use: choose another --grpc-port$"):
            TritonServer(repo, http_port=free_ports(1)[0], grpc_port=port, env=serve_env).start()


def test_a_record_never_signals_a_process_that_is_not_its_server(repo, tmp_path, monkeypatch) -> None:
    """A stale record whose pid now belongs to something else (here a sleep on the same ports' record) is dropped;
    the process is left alone."""
    monkeypatch.setenv("EDGEREC_CACHE", str(tmp_path / "cache"))
    owner = subprocess.Popen(["true"])
    owner.wait()
    other = subprocess.Popen(["sleep", "60"])
    try:
        http, grpc = free_ports(2)
        started = runs.start_time(other.pid)
        assert started is not None
        rec = runs.Record(other.pid, started, owner.pid, 1, "127.0.0.1", http, grpc, str(repo), None,
                          str(tmp_path / "edgerec-serve-x"), "edgerec1x00")  # fmt: skip
        runs.save(rec)
        assert runs.records() == [rec]
        said: list[str] = []
        assert runs.take_over("127.0.0.1", (http, grpc), None, said.append) is False
        assert other.poll() is None and not said and runs.records() == []
    finally:
        other.kill()
        other.wait()


def test_a_backend_this_triton_lacks_is_refused(ckpt, serve_env, tmp_path) -> None:
    cfg = edgerec.ExportConfig(target="triton", options=edgerec.TritonConfig(backend="onnxruntime"))
    art = edgerec.export(edgerec.load(ckpt), cfg, data=SMALL, out=tmp_path / "ort")
    with pytest.raises(EdgerecError, match=r"uses Triton's onnxruntime backend; this Triton .* has only python"):
        TritonServer(art.folder, env=serve_env).start()


def _edgerec_serve(repo: Path, http: int, grpc: int, env: dict[str, str]) -> tuple[subprocess.Popen, list[str]]:
    """`edgerec serve` started, and its output up to the line that says it serves (or up to its exit)."""
    ports = ["--http-port", str(http), "--grpc-port", str(grpc)]
    cmd = [sys.executable, "-m", "edgerec.entry", "serve", str(repo), *ports]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines: list[str] = []
    while not any("Ctrl-C" in ln for ln in lines):
        line = proc.stdout.readline()  # the server's --timeout (90 s) bounds this
        if not line:
            break
        lines.append(line)
    return proc, lines


def test_edgerec_serve_starts_answers_and_stops_on_sigterm(repo, serve_env) -> None:
    http, grpc = free_ports(2)
    env = {**os.environ, "EDGEREC_SERVE_ENV": str(serve_env.root)}
    before = set(Path(tempfile.gettempdir()).glob("edgerec-serve-*"))
    proc, lines = _edgerec_serve(repo, http, grpc, env)
    try:
        assert any(f"http://127.0.0.1:{http}/v2/models/recommend/infer" in ln for ln in lines), lines
        with Client(f"127.0.0.1:{grpc}", "grpc") as c:
            assert c.recommend([0])[0].shape == (1, 10)
        tmp = set(Path(tempfile.gettempdir()).glob("edgerec-serve-*")) - before
        assert len(tmp) == 1  # the server's log folder
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and "stopped in" in out, (out, err)
    assert not _processes(f"http-port={http}")  # no orphan tritonserver (the stubs are checked with the group)
    assert not [p for p in tmp if p.exists()]  # its temporary folder is gone


def test_edgerec_serve_without_triton_is_one_line(repo, tmp_path) -> None:
    env = {**os.environ, "EDGEREC_SERVE_ENV": str(tmp_path / "none")}
    done = subprocess.run([sys.executable, "-m", "edgerec.entry", "serve", str(repo)], capture_output=True, text=True,
                          env=env, timeout=60)  # fmt: skip
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "edgerec serve --setup" in done.stderr


def test_a_killed_owner_takes_its_server_along(repo, serve_env) -> None:
    """The process that started the server is SIGKILLed (no clean-up runs in it): the server goes too."""
    code = (
        "from edgerec.serving.server import TritonServer, free_ports\n"
        "from edgerec.serving.env import find\n"
        "h, g = free_ports(2)\n"
        f"s = TritonServer({str(repo)!r}, http_port=h, grpc_port=g, env=find({str(serve_env.root)!r})).start()\n"
        "print(s.proc.pid, flush=True)\n"
        "import time; time.sleep(120)\n"
    )
    owner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    pid = int(owner.stdout.readline())
    owner.kill()
    owner.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        if "zombie" in Path(f"/proc/{pid}/status").read_text(errors="replace"):
            break
        time.sleep(0.2)
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


def test_a_restart_after_kill_9_of_edgerec_serve_takes_its_ports_back(repo, serve_env, tmp_path) -> None:
    """`edgerec serve` is SIGKILLed under load (HTTP clients with open connections, which Triton's graceful exit
    waits for): started again at once on the same ports, it stops the orphaned tritonserver, says so, and serves."""
    http, grpc = free_ports(2)
    env = {**os.environ, "EDGEREC_SERVE_ENV": str(serve_env.root), "EDGEREC_CACHE": str(tmp_path / "cache")}
    local = edgerec.load(repo).scorer()
    started: list[subprocess.Popen] = []
    servers: list[int] = []  # the tritonserver of each `edgerec serve`
    answered = [0, 0]  # before, after the kill
    phase = [0]
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                with Client(f"127.0.0.1:{http}", timeout_s=5) as c:
                    while not stop.is_set():
                        c.recommend([3])
                        answered[phase[0]] += 1
            except EdgerecError:
                time.sleep(0.05)  # the server is gone or not yet up: connect again

    threads = [threading.Thread(target=load, daemon=True) for _ in range(4)]
    try:
        first, lines = _edgerec_serve(repo, http, grpc, env)
        started.append(first)
        assert any("Ctrl-C" in ln for ln in lines), lines
        servers += _children(first.pid)
        assert len(servers) == 1
        for th in threads:
            th.start()
        while answered[0] < 200:
            time.sleep(0.05)
        first.kill()
        first.wait()
        phase[0] = 1
        t0 = time.perf_counter()
        second, lines = _edgerec_serve(repo, http, grpc, env)
        started.append(second)
        restart_s = time.perf_counter() - t0
        out = "".join(lines)
        assert second.poll() is None and "Ctrl-C" in out, (out, "" if second.poll() is None else second.stderr.read())
        assert f"waiting for the previous tritonserver pid {servers[0]} serving {repo.resolve()}" in out
        assert _gone(servers[0])
        servers += _children(second.pid)
        print(f"restarted in {restart_s:.1f} s after the kill")
        with Client(f"127.0.0.1:{grpc}", "grpc") as c:
            users = np.arange(local.n_users)
            items, scores = c.recommend(users[:64])
            assert items.shape == (64, 10) and np.isfinite(scores).all()
            want_items, want_scores = local.recommend(users[:64])
            np.testing.assert_array_equal(items, want_items)
            np.testing.assert_allclose(scores, want_scores, atol=1e-6)
        before = answered[1]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and answered[1] < before + 100:
            time.sleep(0.05)
        assert answered[1] >= before + 100  # the load's clients are answered by the new server
        stop.set()
        for th in threads:
            th.join(30)
        second.send_signal(signal.SIGTERM)
        out, err = second.communicate(timeout=60)
        assert second.returncode == 0 and "stopped in" in out, (out, err)
    finally:
        stop.set()
        for proc in started:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for pid in servers:
            if not _gone(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
    assert all(_gone(pid) for pid in servers), servers  # no orphan tritonserver
    assert not [_processes_in_group(pid) for pid in servers if _processes_in_group(pid)]  # nor any of its stubs
    assert not list((tmp_path / "cache" / "run").glob("*.json"))  # every record forgotten
