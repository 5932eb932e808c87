"""Explanations: the exact explainer is the leave-one-out re-fit it claims to be, bounded on a long history to the
candidates its estimate ranks highest; the cheap one is the cosine it claims to be; and `edgerec recommend
--explain` prints them for a known user and for a history (fold-in)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgerec.cli.main import main
from edgerec.errors import ConfigError, EdgerecError
from edgerec.runtime import explain
from edgerec.runtime.config import ExplainConfig, FoldInConfig
from edgerec.runtime.explain import Explainer, NumpyModel, batched_logits, fold_in_variants
from edgerec.runtime.foldin import fold_in

from .conftest import SMALL


@pytest.fixture(scope="module")
def model(ckpt) -> NumpyModel:
    return NumpyModel.from_checkpoint(ckpt)


def test_batched_fit_equals_the_single_fold_in(model) -> None:
    history = np.array([3, 17, 40, 41, 99])
    P, Q, _ = fold_in_variants(model.side, history, np.ones((1, 5), dtype=bool))
    p, q = fold_in(model.side, history)
    np.testing.assert_allclose(P[0], p, atol=1e-5)  # the same draws: the same fit (fold_in returns float32)
    np.testing.assert_allclose(Q[0], q, atol=1e-5)


def test_exact_is_the_logit_drop_of_a_refit_without_the_item(model) -> None:
    history, item = np.array([3, 17, 40, 41, 99]), 7
    cfg = FoldInConfig(steps=200)
    drops, refit = Explainer(model.side).exact(history, [item], ExplainConfig(foldin=cfg))
    assert refit.all()  # a history no longer than exact_candidates: every item re-fitted
    P, Q, _ = fold_in_variants(model.side, history, np.ones((1, 5), dtype=bool), cfg)
    base = batched_logits(model.side, P, Q, np.array([item]))[0][0, 0]
    for k in range(5):  # one variant at a time, the masked-out item kept in the outside set as the batch does
        mask = np.ones((1, 5), dtype=bool)
        mask[0, k] = False
        P, Q, _ = fold_in_variants(model.side, history, mask, cfg)
        left_out = batched_logits(model.side, P, Q, np.array([item]))[0][0, 0]
        assert drops[0, k] == pytest.approx(base - left_out, abs=1e-9)
    assert np.ptp(drops) > 0  # the items do not all matter equally


def full_leave_one_out(side, history: np.ndarray, items: np.ndarray, cfg: FoldInConfig) -> np.ndarray:
    """[K, L] what exact computed before it was bounded: every history item left out, negatives uncapped."""
    L = len(history)
    mask = np.ones((L + 1, L), dtype=bool)
    mask[np.arange(1, L + 1), np.arange(L)] = False
    P, Q, _ = fold_in_variants(side, history, mask, cfg)
    logits = batched_logits(side, P, Q, items)[0]
    return (logits[0][None, :] - logits[1:]).T


def test_bounded_exact_equals_the_full_method_on_a_history_shorter_than_the_candidates(model) -> None:
    history, items, cfg = np.array([2, 5, 11, 19, 30, 44, 61, 90, 120, 150]), np.array([7, 70]), ExplainConfig()
    assert len(history) <= cfg.exact_candidates and len(history) * cfg.foldin.negatives <= cfg.exact_negatives
    weights, refit = Explainer(model.side).exact(history, items, cfg)
    assert refit.all()
    np.testing.assert_array_equal(weights, full_leave_one_out(model.side, history, items, cfg.foldin))


def test_bounded_exact_on_a_long_history_refits_a_bounded_number_of_candidates(model, monkeypatch) -> None:
    side, items = model.side, np.array([7, 70])
    cfg = ExplainConfig(method="exact", top=2, exact_candidates=4, exact_negatives=64, foldin=FoldInConfig(steps=30))
    fits, steps = [], []
    real_fit, real_logits = explain.fold_in_variants, explain.batched_logits

    def fit(side, history, mask, *args, **kwargs):
        fits.append(mask.shape)
        return real_fit(side, history, mask, *args, **kwargs)

    def logits(side, P, Q, items):
        steps.append(len(items))
        return real_logits(side, P, Q, items)

    monkeypatch.setattr(explain, "fold_in_variants", fit)
    monkeypatch.setattr(explain, "batched_logits", logits)
    rng = np.random.default_rng(0)
    for L in (40, 120):  # the variants and the terms per step are capped whatever the history's length
        history = np.sort(rng.choice(np.setdiff1d(np.arange(side.n_items), items), L, replace=False))
        fits.clear()
        steps.clear()
        weights, refit = Explainer(side).exact(history, items, cfg)
        assert fits[0] == (1, L) and len(fits) == 2  # the first fit alone (traced), then the batch
        assert fits[1] == (1 + refit.sum(), L) and refit.sum() <= len(items) * cfg.exact_candidates
        assert max(steps) == L + cfg.exact_negatives  # positives + capped negatives per step
        # the re-fitted items are each recommended item's top exact_candidates by the traced estimate
        whole = np.ones((1, L), dtype=bool)
        estimate = real_fit(side, history, whole, cfg.foldin, cfg.exact_negatives, traced=items).estimate
        want = np.zeros(L, dtype=bool)
        want[np.argsort(-estimate, axis=1, kind="stable")[:, : cfg.exact_candidates]] = True
        np.testing.assert_array_equal(refit, want)
        np.testing.assert_array_equal(weights[:, ~refit], estimate[:, ~refit])  # the others keep their estimate
        # the top reasons are re-fitted ones, in order of their drop; and a second call gives the same
        reasons = Explainer(side).explain(history, items, cfg)
        for row, rs in zip(weights, reasons, strict=True):
            got = np.searchsorted(history, [r.item for r in rs])
            best = np.flatnonzero(refit)[np.argsort(-row[refit], kind="stable")]
            assert refit[got].all() and list(got) == list(best[:2])
        again = Explainer(side).exact(history, items, cfg)
        np.testing.assert_array_equal(again.weights, weights)


def test_tracing_the_estimate_leaves_the_fit_as_it_is(model) -> None:
    history, mask, cfg = np.array([3, 17, 40, 41, 99, 120]), np.ones((1, 6), dtype=bool), FoldInConfig(steps=40)
    plain = fold_in_variants(model.side, history, mask, cfg)
    traced = fold_in_variants(model.side, history, mask, cfg, traced=np.array([7, 9, 11]))
    np.testing.assert_array_equal(plain.P, traced.P)
    np.testing.assert_array_equal(plain.Q, traced.Q)
    assert plain.estimate.shape == (0, 6) and traced.estimate.shape == (3, 6)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"exact_candidates": 0}, "field `exact_candidates`: Input should be greater than or equal to 1"),
        ({"exact_candidates": 5000}, "field `exact_candidates`: Input should be less than or equal to 1024"),
        ({"exact_negatives": 4}, "field `exact_negatives`: Input should be greater than or equal to 16"),
        ({"method": "exact", "top": 5, "exact_candidates": 4}, r"exact_candidates \(4\) must be at least top \(5\)"),
    ],
)
def test_bad_explain_config_is_one_line(kwargs, match) -> None:
    with pytest.raises(ConfigError, match=match) as e:
        ExplainConfig(**kwargs)
    assert "\n" not in str(e.value)


def test_the_candidates_rule_binds_the_exact_explainer_only() -> None:
    assert ExplainConfig(method="similarity", top=5, exact_candidates=4).top == 5  # similarity re-fits nothing


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
        (["--history", "1,2", "--explain", "exact", "--exact-candidates", "2"], "must be at least top (3)"),
        (["--history", "1,2", "--explain", "exact", "--exact-candidates", "0"], "field `exact_candidates`"),
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
