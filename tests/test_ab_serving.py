"""Experiments served by a real Triton server (edgerec experiment start / shadow / stop / promote): the router's
answers carry the version that produced them, each user keeps their arm across requests, protocols and a restart,
the share of users on the candidate matches the split, answers equal each version's own scores; feedback with the
version feeds the A/B report; a shadow answers exactly as the live version alone, fills its log, and a candidate
that fails on every request fails no live request; stop and promote leave the expected version policy; bad input is
one line, exit 2, nothing written."""

from __future__ import annotations

import json
import math
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import text_format

import edgerec
from edgerec.cli.main import main
from edgerec.errors import ConfigError, EdgerecError
from edgerec.experiments.assign import arm
from edgerec.manifest import read_manifest, write_manifest
from edgerec.serving import triton_config
from edgerec.serving.client import Client
from edgerec.serving.events import read_log
from edgerec.serving.server import TritonServer, free_ports

from .conftest import SMALL
from .test_triton import neumf_top, serve_env  # noqa: F401 (the session fixture)

NOW = int(time.time())
SALT, TRAFFIC = "t36", 0.3


@pytest.fixture(scope="module")
def candidate(tmp_path_factory, ds) -> Path:
    """Another NeuMF on the same data (another seed): the candidate."""
    return edgerec.train(ds, edgerec.TrainConfig(epochs=3, seed=7)).save(tmp_path_factory.mktemp("cand") / "b")


@pytest.fixture
def repo(tmp_path, ckpt) -> Path:
    return edgerec.export(edgerec.load(ckpt), edgerec.ExportConfig(target="triton"), data=SMALL,
                          out=tmp_path / "repo").folder  # fmt: skip


def _serve(repo: Path, env, log: Path | None = None, shadow: Path | None = None) -> TritonServer:
    http, grpc = free_ports(2)
    return TritonServer(repo, http_port=http, grpc_port=grpc, env=env, poll_seconds=1, log_dir=log, shadow_log=shadow)


def _policy(repo: Path) -> str:
    c = triton_config.parse(repo / "recommend" / triton_config.CONFIG)
    return str(c.version_policy).replace("\n", " ").strip()


def _wait(cond, what: str, timeout: float = 40) -> None:
    """Until cond() holds. While the polling server loads a change model by model (the policy of recommend before
    the router folder), the client may say the server is between states: that is waited out too."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            if cond():
                return
        except EdgerecError as e:
            last = e
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}" + (f" (last: {last})" if last else ""))


def test_bad_input_is_one_line_and_writes_nothing(repo, candidate, tmp_path, capsys) -> None:
    before = (repo / "manifest.json").read_bytes()
    cases = [
        (["experiment", "start", str(tmp_path / "nowhere"), "--model", str(candidate)], "no such artifact folder"),
        (["experiment", "start", str(repo), "--model", str(candidate), "--traffic", "1.5"], "traffic"),
        (["experiment", "start", str(repo), "--model", str(tmp_path / "none")], "no such checkpoint folder"),
        (["experiment", "promote", str(repo)], "no experiment is running"),
        (["experiment", "stop", str(repo)], "no experiment is running"),
    ]
    for args, words in cases:
        assert main(["-q", *args]) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], (args, err)
    assert (repo / "manifest.json").read_bytes() == before and not (repo / "experiment").exists()
    with pytest.raises(ConfigError, match="mode"):
        edgerec.ExperimentConfig(mode="canary")


def test_router_and_feedback_configs_parse_back(repo, tmp_path) -> None:
    mc = triton_config.pb()
    old = triton_config.build(triton_config.FEEDBACK, edgerec.TritonConfig(), {})
    del old.input[-1]  # a repository written before events carried a version
    folder = tmp_path / "feedback"
    folder.mkdir()
    (folder / "config.pbtxt").write_text(text_format.MessageToString(old))
    triton_config.check_feedback(folder / "config.pbtxt")
    params = {"control": 1, "candidate": 2, "salt": "s", "traffic": 0.5, "mode": "ab"}
    router = tmp_path / triton_config.ROUTER
    router.mkdir()
    triton_config.write(triton_config.ROUTER, edgerec.TritonConfig(), params, router)
    c = triton_config.check_router(router / "config.pbtxt")
    assert [o.name for o in c.output] == ["top_items", "top_scores", "version", "item_ids"]
    assert mc.DataType.Name(c.output[3].data_type) == "TYPE_STRING"
    text = (router / "config.pbtxt").read_text()
    (router / "config.pbtxt").write_text(text.replace('key: "salt"', 'key: "pepper"'))
    with pytest.raises(EdgerecError, match="no salt parameter"):
        triton_config.check_router(router / "config.pbtxt")
    assert (repo / "recommend" / "1" / "__pycache__").is_file()  # no bytecode cache can be written there


def test_ab_experiment_on_a_real_server(repo, ckpt, candidate, tmp_path, serve_env, capsys) -> None:  # noqa: F811
    state = edgerec.experiment_start(repo, candidate, edgerec.ExperimentConfig(traffic=TRAFFIC, salt=SALT), SMALL)
    assert state.running["control"] == 1 and state.running["candidate"] == 2 and state.served == 1
    assert "specific" in _policy(repo) and "versions: 1" in _policy(repo) and "versions: 2" in _policy(repo)
    read_manifest(repo)  # the router's files are in the manifest
    before = (repo / "manifest.json").read_bytes()
    assert main(["-q", "experiment", "start", str(repo), "--model", str(candidate)]) == 2
    assert "running already" in capsys.readouterr().err
    with pytest.raises(EdgerecError, match="an experiment is running"):
        edgerec.rollback(repo, 1)
    assert (repo / "manifest.json").read_bytes() == before

    ids = {v: json.loads((repo / "recommend" / str(v) / "id_maps.json").read_text()) for v in (1, 2)}
    n_users = len(ids[1]["users"])
    want_b = {u for u in range(n_users) if arm(str(ids[1]["users"][u]), SALT, TRAFFIC) == "B"}
    models = {1: edgerec.load(ckpt), 2: edgerec.load(candidate)}
    log = tmp_path / "log"
    seen: dict[int, int] = {}
    with _serve(repo, serve_env, log) as server:
        for proto, url in (("http", server.http_url), ("grpc", server.grpc_url)):
            with Client(url, proto) as c:
                batched = c.recommend_experiment(np.arange(n_users)[: min(n_users, 64)])  # one request of 64 users
                for u in range(n_users):
                    a = c.recommend_experiment([u])
                    v = int(a.versions[0])
                    assert seen.setdefault(u, v) == v  # sticky across requests and protocols
                    if u < len(batched.versions):
                        assert int(batched.versions[u]) == v
                        np.testing.assert_array_equal(batched.items[u], a.items[0])
                    if proto == "http":
                        shown = [str(i) for i in a.item_ids[0]]
                        assert shown == [str(ids[v]["items"][i]) for i in a.items[0]]
                        c.feedback(str(ids[1]["users"][u]), "impression", NOW, shown=shown, version=v)
                        if u % 3 == 0:
                            c.feedback(str(ids[1]["users"][u]), "click", NOW, item=shown[0], version=v)
        in_b = {u for u, v in seen.items() if v == 2}
        assert in_b == want_b  # the hash of the original id, as assign.arm computes it
        sd = math.sqrt(n_users * TRAFFIC * (1 - TRAFFIC))
        assert abs(len(in_b) - n_users * TRAFFIC) < 4 * sd
        for v in (1, 2):  # each answer is its version's own top-K
            users = np.array(sorted(u for u, w in seen.items() if w == v)[:40])
            dense = np.array([ids[v]["users"].index(ids[1]["users"][u]) for u in users])
            want_items, want_scores = neumf_top(models[v], dense)
            with Client(server.http_url) as c:
                got = c.recommend_experiment(users)
            np.testing.assert_array_equal(got.versions, v)
            np.testing.assert_array_equal(got.items, want_items)
            np.testing.assert_allclose(got.scores, want_scores, atol=1e-4)
    records = [r for s in read_log(log)[0] for r in s.records]
    assert {r["version"] for r in records} == {"1", "2"}
    report = tmp_path / "report.json"
    assert main(["-q", "experiment", "report", str(log), "--versions", "1,2", "--traffic", str(TRAFFIC),
                 "--json", str(report)]) == 0  # fmt: skip
    arms = json.loads(report.read_text())["arms"]
    assert [a["users"] for a in arms] == [n_users - len(want_b), len(want_b)]

    with _serve(repo, serve_env, log) as server, Client(server.grpc_url, "grpc") as c:  # a restart
        again = c.recommend_experiment(np.arange(n_users)[:64])
        assert [int(v) for v in again.versions] == [seen[u] for u in range(64)]
        assert main(["-q", "experiment", "stop", str(repo)]) == 0
        assert "specific" in _policy(repo) and "versions: 2" not in _policy(repo)
        _wait(lambda: c.served_versions() == ["1"], "version 1 alone")
        _wait(lambda: set(c.recommend_experiment(np.arange(8)).versions) == {1}, "the router gone")
        assert edgerec.experiment_status(repo).ended[-1]["outcome"] == "stopped"
        # a second experiment, promoted: the candidate (version 3) served alone
        state = edgerec.experiment_start(repo, candidate, edgerec.ExperimentConfig(traffic=0.5, salt="p"), SMALL)
        assert state.running["candidate"] == 3
        _wait(lambda: set(c.recommend_experiment(np.arange(64)).versions) == {1, 3}, "both arms served")
        assert main(["-q", "experiment", "promote", str(repo)]) == 0
        assert "latest" in _policy(repo)
        _wait(lambda: c.served_versions() == ["3"], "version 3 alone")
        m = read_manifest(repo)
        assert m["triton"]["version"] == 3 and "experiment" not in m and m["rollouts"][-1]["action"] == "promote"
        assert [e["outcome"] for e in m["experiments"]] == ["stopped", "promoted"]


def _raising_candidate(repo: Path, version: int) -> None:
    """Fault injection: the candidate's model.py raises on every request (the manifest re-hashed, as if shipped so)."""
    path = repo / "recommend" / str(version) / "model.py"
    text = path.read_text().replace(
        "    def execute(self, requests: list[Any]) -> list[Any]:\n",
        "    def execute(self, requests: list[Any]) -> list[Any]:\n        raise RuntimeError('candidate broken')\n",
    )
    assert "candidate broken" in text
    path.write_text(text)
    m = read_manifest(repo, verify=False)
    write_manifest(repo, {k: v for k, v in m.items() if k not in ("files", "format", "format_version")})


def test_shadow_answers_as_the_live_version_alone(repo, candidate, tmp_path, serve_env) -> None:  # noqa: F811
    users = np.arange(120)
    with _serve(repo, serve_env) as server, Client(server.http_url) as c:
        halves = [c.recommend(part) for part in (users[:60], users[60:])]  # at most 64 users per request
        alone = (np.concatenate([h[0] for h in halves]), np.concatenate([h[1] for h in halves]))
    state = edgerec.experiment_shadow(repo, candidate, edgerec.ExperimentConfig(), SMALL)
    assert state.running["mode"] == "shadow"
    shadow = tmp_path / "shadow.jsonl"
    with _serve(repo, serve_env, shadow=shadow) as server, Client(server.http_url) as c:
        for u in users:
            a = c.recommend_experiment([u])
            assert int(a.versions[0]) == 1
            np.testing.assert_array_equal(a.items[0], alone[0][u])
            np.testing.assert_array_equal(a.scores[0], alone[1][u])
        _wait(lambda: shadow.is_file() and len(shadow.read_text().splitlines()) >= len(users), "the shadow log")
    rep = edgerec.shadow_report(shadow)
    assert rep.users == len(users) and rep.answered == len(users) and rep.errors == 0
    assert 0.0 <= rep.overlap <= 1.0 and rep.latency_ms["p50"] > 0
    line = json.loads(shadow.read_text().splitlines()[0])
    assert len(line["live"]) == 10 and len(line["shadow"]) == 10 and line["candidate"] == 2

    _raising_candidate(repo, 2)
    broken = tmp_path / "broken.jsonl"
    failed: list[str] = []
    answered = [0]
    with _serve(repo, serve_env, shadow=broken) as server:

        def load(worker: int) -> None:
            with Client(server.grpc_url, "grpc") as c:
                for k in range(60):
                    try:
                        a = c.recommend_experiment([(worker * 61 + k) % len(users)])
                        assert int(a.versions[0]) == 1
                        answered[0] += 1
                    except EdgerecError as e:
                        failed.append(str(e))

        threads = [threading.Thread(target=load, args=(w,)) for w in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(120)
        _wait(lambda: broken.is_file() and len(broken.read_text().splitlines()) > 0, "the broken shadow's log")
    assert failed == [] and answered[0] == 240
    rep = edgerec.shadow_report(broken)
    assert rep.answered == 0 and rep.errors == rep.users > 0 and "candidate broken" in rep.first_error
    shutil.rmtree(tmp_path / "repo")
