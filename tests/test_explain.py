"""Explanations: the exact explainer is the leave-one-out re-fit it claims to be, the cheap one is the cosine it
claims to be, and `edgerec recommend --explain` prints them for a known user and for a history (fold-in)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgerec.cli.main import main
from edgerec.errors import EdgerecError
from edgerec.runtime.config import FoldInConfig
from edgerec.runtime.explain import Explainer, NumpyModel, batched_logits, fold_in_variants
from edgerec.runtime.foldin import fold_in

from .conftest import SMALL


@pytest.fixture(scope="module")
def model(ckpt) -> NumpyModel:
    return NumpyModel.from_checkpoint(ckpt)


def test_batched_fit_equals_the_single_fold_in(model) -> None:
    history = np.array([3, 17, 40, 41, 99])
    P, Q = fold_in_variants(model.side, history, np.ones((1, 5), dtype=bool))
    p, q = fold_in(model.side, history)
    np.testing.assert_allclose(P[0], p, atol=1e-5)  # the same draws: the same fit (fold_in returns float32)
    np.testing.assert_allclose(Q[0], q, atol=1e-5)


def test_exact_is_the_logit_drop_of_a_refit_without_the_item(model) -> None:
    history, item = np.array([3, 17, 40, 41, 99]), 7
    cfg = FoldInConfig(steps=200)
    drops = Explainer(model.side).exact(history, [item], cfg)[0]
    full = fold_in_variants(model.side, history, np.ones((1, 5), dtype=bool), cfg)
    base = batched_logits(model.side, *full, np.array([[item]]))[0][0, 0]
    for k in range(5):  # one variant at a time, the masked-out item kept in the outside set as the batch does
        mask = np.ones((1, 5), dtype=bool)
        mask[0, k] = False
        P, Q = fold_in_variants(model.side, history, mask, cfg)
        assert drops[k] == pytest.approx(base - batched_logits(model.side, P, Q, np.array([[item]]))[0][0, 0], abs=1e-9)
    assert np.ptp(drops) > 0  # the items do not all matter equally


def test_similarity_is_the_cosine_in_the_item_spaces(model) -> None:
    side = model.side
    e = np.concatenate([side.G, side.A], axis=1)
    sim = Explainer(side).similarity([5, 9, 12], [30])[0]
    want = [e[h] @ e[30] / np.linalg.norm(e[h]) / np.linalg.norm(e[30]) for h in (5, 9, 12)]
    np.testing.assert_allclose(sim, want, rtol=1e-12)


def test_bad_explanation_input(model) -> None:
    ex = Explainer(model.side)
    with pytest.raises(EdgerecError, match="at least two items"):
        ex.similarity([4], [1])
    with pytest.raises(EdgerecError, match="history items must lie in"):
        ex.similarity([4, 10**6], [1])
    with pytest.raises(EdgerecError, match="recommended items must lie in"):
        ex.exact([4, 5], [-1])
    with pytest.raises(EdgerecError, match="k must lie in"):
        model.top_k(model.user_gmf[0], model.user_mlp[0], 10**6, np.array([], dtype=np.int64))


def test_recommend_cli_explains_known_and_new_users(ckpt, tmp_path: Path, capsys) -> None:
    out = tmp_path / "rec.json"
    args = ["-q", "recommend", "--model", str(ckpt), "--user", "3", "--data", SMALL, "--explain", "similarity"]
    assert main([*args, "--k", "5", "--json", str(out)]) == 0
    rec = json.loads(out.read_text())["recommendations"]
    assert len(rec) == 5 and all(len(r["reasons"]) == 3 for r in rec)
    assert "because of (similarity)" in capsys.readouterr().out
    args = ["-q", "recommend", "--model", str(ckpt), "--history", "1,2,3,4,5,6", "--explain", "exact", "--top", "2"]
    assert main([*args, "--json", str(out)]) == 0
    rec = json.loads(out.read_text())["recommendations"]
    assert len(rec) == 10 and {r["item"] for r in rec}.isdisjoint({"1", "2", "3", "4", "5", "6"})
    assert all(len(r["reasons"]) == 2 and r["reasons"][0][1] >= r["reasons"][1][1] for r in rec)


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--user", "no-such-user"], "unknown user id 'no-such-user'"),
        (["--history", "1,nope"], "unknown item id 'nope'"),
        (["--history", "1", "--explain", "exact"], "at least two items"),
        (["--user", "3", "--explain", "similarity"], "needs --data"),
        (["--user", "3", "--k", "0"], "k must lie in"),
    ],
)
def test_recommend_bad_input_is_one_line(ckpt, extra, match, capsys) -> None:
    assert main(["-q", "recommend", "--model", str(ckpt), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err, err


def test_a_bundle_exported_with_explain_explains_on_its_own(ckpt, tmp_path: Path, capsys) -> None:
    import edgerec

    ck = edgerec.load(ckpt)
    plain = edgerec.export(ck, edgerec.ExportConfig(target="tflite-bundle"), data=SMALL, out=tmp_path / "plain")
    cfg = edgerec.ExportConfig(target="tflite-bundle", precision="int8", options={"explain": True})
    art = edgerec.export(ck, cfg, data=SMALL, out=tmp_path / "bundle")
    assert art.manifest["explainers"] == ["similarity", "exact"] and "item_side.safetensors" in art.manifest["files"]
    assert "item_side.safetensors" in art.manifest["bundle_files"]
    phone = NumpyModel.from_bundle(art.folder)
    full = NumpyModel.from_checkpoint(ckpt)
    history = [2, 8, 15, 23, 42]
    np.testing.assert_allclose(  # the fp16 item side explains as the fp32 model does, to fp16 precision
        Explainer(phone.side).similarity(history, [3, 60]), Explainer(full.side).similarity(history, [3, 60]), atol=2e-3
    )
    (art.folder / "user_vectors.npy").unlink()  # what a phone has: no other user's vectors
    args = ["-q", "recommend", "--model", str(art.folder), "--history", "2,8,15,23,42", "--explain", "similarity"]
    assert main([*args, "--json", str(tmp_path / "r.json")]) == 0
    assert len(json.loads((tmp_path / "r.json").read_text())["recommendations"]) == 10
    capsys.readouterr()
    assert main(["-q", "recommend", "--model", str(plain.folder), "--history", "1,2"]) == 2
    assert "exported without explanations; export it with --explain" in capsys.readouterr().err
    with pytest.raises(edgerec.ConfigError, match=r"target onnx has no option `explain` \(it has no options\)"):
        edgerec.ExportConfig(target="onnx", options={"explain": True})
    with pytest.raises(edgerec.ConfigError, match=r"target triton has no option `explain` \(its options: backend, "):
        edgerec.ExportConfig(target="triton", options={"explain": True})
