"""The phone bundle: the folded NeuMF equals NeuMF, runs in LiteRT with top-K in the graph, refuses bad input."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

import edgerec
from edgerec.errors import ConfigError, EdgerecError
from edgerec.exporters.config import ExportConfig
from edgerec.exporters.folded import FoldedNCF, user_vectors
from edgerec.gates import ParityBound
from edgerec.model.ncf import NCF, NCFArch
from edgerec.runtime import load_bundle
from edgerec.runtime.fold import folded_macs


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, ckpt, ds):
    root = tmp_path_factory.mktemp("bundle")
    out = {}
    # fp32 and int8 with the score signature over 20 candidates, int8 also without it (recommend only); "-app": with
    # the on-device functions too (fold_in, explain)
    for name, precision, candidates, app in (
        ("fp32", "fp32", 20, False),
        ("int8", "int8", 20, False),
        ("int8-plain", "int8", 0, False),
        ("fp32-app", "fp32", 20, True),
        ("int8-app", "int8", 20, True),
    ):
        cfg = ExportConfig(
            target="tflite-bundle",
            precision=precision,
            tolerance=ParityBound(hr=0.05),
            options={"candidates": candidates, "explain": app},
        )
        out[name] = edgerec.export(ckpt, cfg, ds, out=root / name)
    return out


def test_folding_the_item_tower_is_exact_and_cuts_the_macs() -> None:
    torch.manual_seed(0)
    model = NCF(NCFArch.paper("neumf", 50, 400, 8)).eval()
    with torch.no_grad():
        for t in model.tables().values():
            t.weight.normal_(0, 0.5)
    folded = FoldedNCF(model, k=10).eval()
    ug, um = user_vectors(model)
    with torch.no_grad():
        for u in (0, 7, 49):
            ref = model(torch.full((400,), u), torch.arange(400))
            assert torch.allclose(folded.scores(ug[u : u + 1], um[u : u + 1]), ref, atol=1e-5)
    assert folded_macs(model.arch) == 688  # DESIGN.md: 2,704 unfolded


def test_fp32_bundle_equals_pytorch_and_ranks_top_k_in_the_graph(bundles, ckpt, ds) -> None:
    art = bundles["fp32"]
    folder = art.folder
    model = edgerec.load(ckpt).model
    scorer = load_bundle(folder)
    ug, um = user_vectors(model)
    for u in (0, 5, 299):
        items, _, every = scorer.recommend(ug[u].numpy(), um[u].numpy())
        with torch.no_grad():
            ref = model(torch.full((ds.n_items,), u), torch.arange(ds.n_items)).numpy()
        assert np.abs(every - ref).max() < 1e-5
        assert list(items) == list(np.argsort(-ref, kind="stable")[:10])
    assert art.verification["deltas"]["hr@10"] == 0.0 and art.status == "verified"
    assert {"model.tflite", "README.md", "id_maps.json", "user_vectors.npy"} <= set(art.manifest["files"])
    assert 'getSignatureRunner("recommend")' in (folder / "README.md").read_text()


def test_int8_bundle_is_small_and_keeps_float_scores(bundles) -> None:
    a32, a8 = bundles["fp32"], bundles["int8"]
    # 180 items: the graph itself (~10 KB with two signatures) is a large part of either file
    assert a8.bytes == a8.manifest["files"]["model.tflite"]["bytes"]
    assert a8.bytes < 0.5 * a32.bytes
    items, scores, _ = load_bundle(a8.folder).recommend(np.zeros(8), np.zeros(32))
    assert items.dtype == np.int32 and scores.dtype == np.float32 and np.all(np.diff(scores) <= 0)
    # weight-only int8: every large constant is int8 (4x smaller), and the records say what was rewritten
    (record,) = a8.manifest["quantization"]["item_constants"]
    assert record["dtype"] == "int8" and record["bytes"] < record["bytes_float32"] / 3.5


def test_int8_compute_runs_the_catalog_mlp_in_int8_and_keeps_float_scores(tmp_path, ckpt, ds) -> None:
    """compute int8: recommend's catalog-wide layers take int8 activations (XNNPACK's integer kernels), the head
    and the scores stay float (no 256-level logits); it verifies and ranks mostly as the weight-only bundle does."""
    from ai_edge_litert.interpreter import Interpreter

    def export(name: str, options: dict) -> edgerec.Artifact:
        cfg = ExportConfig(target="tflite-bundle", precision="int8", tolerance=ParityBound(hr=0.05), options=options)
        return edgerec.export(ckpt, cfg, ds, out=tmp_path / name)

    today, art = export("float", {}), export("int8", {"compute": "int8", "candidates": 20})
    q = art.manifest["quantization"]
    assert art.status == "verified" and q["compute"] == "int8" and q["calibration_users"] > 0
    assert today.manifest["quantization"].get("compute") is None
    interp = Interpreter(model_path=str(art.folder / "model.tflite"))
    ops = interp._get_ops_details()  # the recommend subgraph comes first
    types = {t["index"]: t["dtype"] for t in interp.get_tensor_details()}
    int8_fc = [o for o in ops if o["op_name"] == "FULLY_CONNECTED" and types[o["inputs"][0]] == np.int8]
    assert len(int8_fc) >= 2  # the user projection and the hidden layers over every item
    a, b = load_bundle(today.folder), load_bundle(art.folder)
    ug, um = user_vectors(edgerec.load(ckpt).model)
    overlap = []
    for u in range(0, 300, 10):
        top_a, _, _ = a.recommend(ug[u].numpy(), um[u].numpy())
        top_b, best, every = b.recommend(ug[u].numpy(), um[u].numpy())
        assert every.dtype == np.float32 and len(np.unique(every)) >= 0.98 * ds.n_items
        assert np.allclose(best, every[top_b]) and np.all(np.diff(best) <= 0)
        overlap.append(len(set(top_a) & set(top_b)) / 10)
        items = np.arange(u % 7, ds.n_items, 9)  # `score` quantizes its candidates as recommend does: equal scores
        assert np.array_equal(b.score_items(ug[u].numpy(), um[u].numpy(), items), every[items])
    assert np.mean(overlap) >= 0.7
    with pytest.raises(EdgerecError, match="compute int8 needs precision int8"):
        cfg = ExportConfig(target="tflite-bundle", precision="fp16", options={"compute": "int8"})
        edgerec.export(ckpt, cfg, ds, out=tmp_path / "fp16")


def test_fp16_bundle_stores_the_item_constants_in_float16(tmp_path, ckpt, ds) -> None:
    cfg = ExportConfig(target="tflite-bundle", precision="fp16", tolerance=ParityBound(hr=0.01))
    art = edgerec.export(ckpt, cfg, ds, out=tmp_path / "b")
    (record,) = art.manifest["quantization"]["item_constants"]
    assert record["dtype"] == "float16" and record["bytes"] * 2 == record["bytes_float32"]
    assert art.verification["max_abs_score_error"] < 1e-2


def test_score_signature_equals_pytorch_and_the_catalog_scores(bundles, ckpt, ds) -> None:
    model = edgerec.load(ckpt).model
    ug, um = user_vectors(model)
    rng = np.random.default_rng(0)
    for name in ("fp32", "int8"):
        manifest = bundles[name].manifest
        scorer = load_bundle(bundles[name].folder)
        assert manifest["candidates"] == 20 and "score" in manifest["signatures"]
        assert manifest["buckets"] == [20, ds.n_items]  # bench measures both signatures
        for u, n in ((3, 7), (42, 20), (100, 45)):  # padded, exact, split into three calls
            items = rng.choice(ds.n_items, n, replace=False)
            got = scorer.score_items(ug[u].numpy(), um[u].numpy(), items)
            catalog = scorer.recommend(ug[u].numpy(), um[u].numpy())[2]
            assert np.abs(got - catalog[items]).max() < 1e-5  # the same constants in both signatures
            if name == "fp32":
                with torch.no_grad():
                    ref = model(torch.full((n,), u), torch.as_tensor(items)).numpy()
                assert np.abs(got - ref).max() < 1e-5
            best, best_scores = scorer.recommend_from(ug[u].numpy(), um[u].numpy(), items)
            order = np.argsort(-got, kind="stable")[: min(10, n)]
            assert set(best) == set(items[order]) and np.allclose(best_scores, got[order], atol=1e-6)
        short, _ = scorer.recommend_from(ug[0].numpy(), um[0].numpy(), [5, 9, 1])  # fewer than K: no padding
        assert sorted(short) == [1, 5, 9]
    assert "## Scoring a candidate list" in (bundles["int8"].folder / "README.md").read_text()


def test_retrieve_is_exact_mips_over_the_gmf_half_and_two_stage_reranks_it(bundles, ckpt, ds) -> None:
    """The two-stage path (issue 22): retrieve = the top-C of the GMF half (the same list FAISS returns on the
    server), two_stage = score's re-rank of that list; with C = the catalog it is the exhaustive top-K."""
    from edgerec.benchmarking.config import BenchConfig
    from edgerec.runtime.explain import NumpyModel
    from edgerec.runtime.fold import fold
    from edgerec.runtime.retrieval import GmfIndex, exhaustive_top_k, item_prior, two_stage_top_k

    model = edgerec.load(ckpt).model
    folded = fold({k: v.detach().numpy().astype(np.float64) for k, v in model.state_dict().items()})
    index = GmfIndex.of(folded)
    prior = item_prior(folded, model.mlp_user.weight.detach().numpy().mean(axis=0).astype(np.float64))
    with_prior = GmfIndex.of(folded, prior=prior)
    scorer = load_bundle(bundles["fp32"].folder)
    assert set(bundles["fp32"].manifest["signatures"]) == {"recommend", "score", "retrieve"}
    for u in (0, 17, 250):
        ug, um = scorer.user(u)
        items, scores = scorer.retrieve(ug)
        gmf = folded.G @ ug.astype(np.float64) + prior  # the GMF half plus the item prior
        assert len(items) == 20 and np.allclose(scores, gmf[items], atol=1e-5)
        assert gmf[items].min() >= np.sort(gmf)[-20] - 1e-5  # the 20 best GMF halves (ties aside)
        assert set(with_prior.search(ug[None, :], 20)[0][0]) == set(items)  # FAISS on the server: the same list
        best, _ = scorer.two_stage(ug, um)
        assert np.array_equal(best, scorer.recommend_from(ug, um, items)[0])
        p, q = ug.astype(np.float64), um.astype(np.float64)
        everything = two_stage_top_k(index, folded, p[None, :], q[None, :], n=ds.n_items)[0]
        assert np.array_equal(everything, exhaustive_top_k(folded, p, q))  # N = the catalog: exhaustive
    p = scorer.user(5)[0].astype(np.float64)
    expect = np.argsort(-(folded.G @ p + prior), kind="stable")[:30]
    got = with_prior.search(p[None, :], 30)[0][0]
    assert len(np.intersect1d(got, expect)) >= 29  # exact MIPS on [p, 1] . [G_i, prior_i] (float32 ties aside)
    report = edgerec.bench(bundles["int8"].folder, BenchConfig(min_time_s=0.01, min_calls=5, warmup=2))
    record = report.record
    assert {"retrieve", "two_stage_top10"} <= set(record["latency_ms"])
    two = record["two_stage"]
    assert two["candidates"] == 20 and two["users"] == 200 and 0.0 < two["recall@k"] <= 1.0
    with pytest.raises(EdgerecError, match=rf"must lie in 1\.\.{ds.n_items} \(the catalog\); got {ds.n_items + 1}"):
        index.search(np.zeros((1, 8)), ds.n_items + 1)
    assert NumpyModel.from_checkpoint(ckpt).user_gmf.shape[1] == 8


def test_a_bundle_without_score_reads_the_catalog_scores(bundles, ckpt) -> None:
    plain, mp, m8 = bundles["int8-plain"].folder, bundles["int8-plain"].manifest, bundles["int8"].manifest
    assert "score" not in mp["signatures"] and mp["candidates"] == 0
    assert mp["files"]["model.tflite"]["bytes"] < m8["files"]["model.tflite"]["bytes"]
    assert "## Scoring a candidate list" not in (plain / "README.md").read_text()
    ug, um = user_vectors(edgerec.load(ckpt).model)
    a, b = load_bundle(plain), load_bundle(bundles["int8"].folder)
    items = np.array([4, 2, 77, 150])
    assert np.abs(a.score_items(ug[1], um[1], items) - b.score_items(ug[1], um[1], items)).max() < 1e-5
    assert list(a.recommend_from(ug[1], um[1], items)[0]) == list(b.recommend_from(ug[1], um[1], items)[0])


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([], "the item list is empty"),
        ([3, 10**6], "items must lie in 0..179"),
        ([-1, 2], "items must lie in 0..179"),
        ([1.5, 2.0], "items must be integer ids"),
        ([[1, 2]], "1-D array"),
    ],
)
def test_bad_candidate_lists_are_one_line_errors(bundles, items, message) -> None:
    scorer = load_bundle(bundles["int8"].folder)
    with pytest.raises(EdgerecError, match=message):
        scorer.score_items(np.zeros(8), np.zeros(32), items)
    with pytest.raises(EdgerecError, match=message):
        scorer.recommend_from(np.zeros(8), np.zeros(32), items)


@pytest.mark.parametrize(("name", "candidates"), [("int8", 7), ("int8", -3), ("int8-plain", 20), ("int8", "x")])
def test_a_manifest_whose_candidates_differ_from_the_model_is_refused(tmp_path, bundles, name, candidates) -> None:
    import json

    folder = tmp_path / "b"
    shutil.copytree(bundles[name].folder, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["candidates"] = candidates
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(EdgerecError, match=r"candidates|cannot load"):
        load_bundle(folder)


@pytest.mark.parametrize("extra", [-(10**9), 1])  # fewer than K (5), one more than the catalog
def test_a_candidate_list_shorter_than_k_or_longer_than_the_catalog_is_refused(tmp_path, ckpt, ds, extra) -> None:
    candidates = 5 if extra < 0 else ds.n_items + extra
    cfg = ExportConfig(target="tflite-bundle", options={"candidates": candidates})
    with pytest.raises(
        EdgerecError, match=rf"--candidates must be 0 .* lie in 10\.\.{ds.n_items} .*; got {candidates}"
    ):
        edgerec.export(ckpt, cfg, ds, out=tmp_path / "b")
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(
    ("gmf", "mlp", "message"),
    [
        (np.zeros(7), np.zeros(32), "user_gmf must have 8 values"),
        (np.zeros(8), np.zeros(33), "user_mlp must have 32 values"),
        (np.array([np.nan] * 8), np.zeros(32), "NaN or infinite"),
        (np.array(["a"] * 8), np.zeros(32), "must be a float vector"),
    ],
)
def test_bad_user_vectors_are_one_line_errors(bundles, gmf, mlp, message) -> None:
    with pytest.raises(EdgerecError, match=message):
        load_bundle(bundles["fp32"].folder).recommend(gmf, mlp)


def test_tampered_or_foreign_bundles_are_refused(tmp_path, bundles, ckpt, ds) -> None:
    folder = tmp_path / "b"
    shutil.copytree(bundles["fp32"].folder, folder)
    data = bytearray((folder / "model.tflite").read_bytes())
    data[len(data) // 2] ^= 1
    (folder / "model.tflite").write_bytes(bytes(data))
    with pytest.raises(EdgerecError, match="sha256 does not match"):
        load_bundle(folder)
    (folder / "model.tflite").unlink()
    with pytest.raises(EdgerecError, match="missing"):
        load_bundle(folder)
    onnx = tmp_path / "onnx"
    edgerec.export(ckpt, ExportConfig(target="onnx"), ds, out=onnx)
    with pytest.raises(EdgerecError, match="not a phone bundle"):
        load_bundle(onnx)
    with pytest.raises(EdgerecError, match="k must lie in"):
        load_bundle(bundles["fp32"].folder).top_k(0, k=ds.n_items + 1)


def _reference(bundle_folder, ckpt):
    from edgerec.runtime.config import FoldInConfig
    from edgerec.runtime.explain import Explainer
    from edgerec.runtime.foldin import ItemSide

    manifest = edgerec.load(bundle_folder).manifest
    fi = dict(manifest["fold_in"])
    negatives = np.asarray(fi.pop("negative_items"))
    weights = {k: v.detach().numpy().astype(np.float64) for k, v in edgerec.load(ckpt).model.state_dict().items()}
    side = ItemSide.of(weights)
    return side, Explainer(side), negatives, FoldInConfig(**fi), manifest


def histories(n_items: int, count: int, longest: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.choice(n_items, int(rng.integers(2, longest + 1)), replace=False) for _ in range(count)]


def test_fold_in_recommend_explain_in_the_fp32_bundle_equal_the_numpy_reference(bundles, ckpt) -> None:
    from edgerec.runtime.foldin import fold_in_fixed

    folder = bundles["fp32-app"].folder
    side, explainer, negatives, cfg, manifest = _reference(folder, ckpt)
    assert set(manifest["signatures"]) == {"recommend", "score", "retrieve", "fold_in", "explain"}
    assert list(manifest["signatures"]["recommend"]["outputs"]) == ["top_items", "top_scores", "scores"]
    assert cfg.steps == 40 and len(negatives) == min(1024, side.n_items) and manifest["max_history"] == 128
    b = load_bundle(folder)
    for history in histories(side.n_items, 12, 60):
        ug, um = b.fold_in(history)
        rp, rq = fold_in_fixed(side, history, negatives, cfg)
        assert np.abs(ug - rp).max() < 1e-5 and np.abs(um - rq).max() < 1e-5
        top = b.recommend(ug, um)[0]
        assert (top == b.recommend(rp, rq)[0]).all()
        reasons, weights = b.explain(ug, um, history, top)
        h = np.unique(history)
        sim = explainer.similarity(h, top)  # [K, L]
        order = np.argsort(-sim, axis=1, kind="stable")[:, : manifest["reasons"]]
        assert (reasons == h[order]).all()
        assert np.abs(weights - np.take_along_axis(sim, order, axis=1)).max() < 1e-5
        # a repeated item counts once, as in the numpy reference (which takes the unique history)
        again = b.fold_in(np.concatenate([history, history[:2]]))
        assert np.abs(again[0] - ug).max() < 1e-5


def test_the_int8_bundles_fold_in_ranks_like_the_fp32_one(bundles) -> None:
    """int8 item constants move the folded-in vectors a little; the top-10 they give stays close to fp32's."""
    fp32, int8 = load_bundle(bundles["fp32-app"].folder), load_bundle(bundles["int8-app"].folder)
    overlap = []
    for history in histories(fp32.n_items, 20, 60, seed=1):
        a = fp32.recommend(*fp32.fold_in(history))[0]
        b = int8.recommend(*int8.fold_in(history))[0]
        overlap.append(len(set(a) & set(b)) / len(a))
    assert np.mean(overlap) >= 0.8, overlap


@pytest.mark.parametrize(
    ("history", "message"),
    [
        ([], "the history is empty"),
        (list(range(129)), "the history has 129 items; this bundle takes at most 128"),
        ([3, 999], "history must lie in 0..179"),
        ([1.5, 2], "history"),
    ],
)
def test_bad_histories_are_one_line_errors(bundles, history, message) -> None:
    b = load_bundle(bundles["int8-app"].folder)
    with pytest.raises(EdgerecError, match=message) as e:
        b.fold_in(np.asarray(history))
    assert "\n" not in str(e.value)


def test_a_bundle_without_the_on_device_functions_says_which_flag_adds_them(bundles) -> None:
    b = load_bundle(bundles["int8-plain"].folder)
    with pytest.raises(EdgerecError, match="no fold_in / explain signatures \\(export it with --explain\\)"):
        b.fold_in([1, 2])
    assert "fold_in" not in (bundles["int8-plain"].folder / "README.md").read_text()
    assert 'getSignatureRunner("fold_in")' in (bundles["int8-app"].folder / "README.md").read_text()


def test_an_artifact_carries_no_path_of_the_machine_that_made_it(bundles, ckpt) -> None:
    import json

    text = (bundles["int8-app"].folder / "manifest.json").read_text()
    manifest = json.loads(text)
    assert manifest["source"]["checkpoint"] == ckpt.name and manifest["source"]["weights_sha256"]
    assert str(ckpt.parent) not in text and str(bundles["int8-app"].folder) not in text


def test_what_the_on_device_functions_add_to_the_bundle(bundles) -> None:
    """Recorded, not a budget: the unrolled fold-in is most of the added bytes (graph structure, not weights)."""
    added = bundles["int8-app"].bytes - bundles["int8"].bytes
    assert 0 < added < 1_000_000, added


def test_a_shortlist_recommend_reranks_the_best_first_stage_items(tmp_path, ckpt, ds) -> None:
    """shortlist S: recommend takes the S items of best GMF half + item prior (retrieve's score) in the graph and
    ranks them by the whole NeuMF: its top-K is the shortlist's best K, each shortlist score is what `score` gives
    that item; the gate's recall against the uncompressed model's exhaustive top-K is recorded; `score` (added with
    C = S) scores any item, so verification and full ranking still see every item."""
    from edgerec.runtime.fold import fold
    from edgerec.runtime.retrieval import exhaustive_top_k, item_prior

    s = 40
    cfg = ExportConfig(target="tflite-bundle", precision="fp32", options={"shortlist": s, "table_recall": 0.0})
    art = edgerec.export(ckpt, cfg, ds, out=tmp_path / "b")
    m = art.manifest
    assert art.status == "verified" and m["candidates"] == s and m["shortlist"]["size"] == s
    outputs = m["signatures"]["recommend"]["outputs"]
    assert list(outputs) == ["top_items", "top_scores", "shortlist", "shortlist_scores"]
    model = edgerec.load(ckpt).model
    folded = fold({k: v.detach().numpy().astype(np.float64) for k, v in model.state_dict().items()})
    prior = item_prior(folded, model.mlp_user.weight.detach().numpy().mean(axis=0).astype(np.float64))
    scorer = load_bundle(art.folder)
    hits = []
    for u in range(0, 300, 7):
        ug, um = scorer.user(u)
        items, scores = scorer.shortlisted(ug, um)
        first = folded.G @ ug.astype(np.float64) + prior
        assert len(np.unique(items)) == s and first[items].min() >= np.sort(first)[-s] - 1e-5
        np.testing.assert_allclose(scores, scorer.score_items(ug, um, items), rtol=0, atol=1e-5)
        top, top_scores, every = scorer.recommend(ug, um)
        assert every is None
        order = np.argsort(-scores, kind="stable")[: scorer.k]
        assert set(top) == set(items[order]) and np.allclose(top_scores, scores[order], atol=1e-6)
        exhaustive = exhaustive_top_k(folded, ug.astype(np.float64), um.astype(np.float64), scorer.k)
        hits.append(len(np.intersect1d(top, exhaustive)) / scorer.k)
    gate = m["shortlist"]["gate"]
    assert gate["users"] == 200 and 0.5 <= gate["recall_at_k"] <= 1.0 and np.mean(hits) >= 0.5
    # full ranking through `score`: every item scored, as the fp32 source does
    assert abs(art.verification["deltas"]["full_hr@10"]) <= 0.01
    from edgerec.benchmarking.config import BenchConfig

    record = edgerec.bench(art.folder, BenchConfig(min_time_s=0.01, min_calls=5, warmup=2)).record
    assert {"catalog_top10", "retrieve", "two_stage_top10"} <= set(record["latency_ms"])
    assert abs(record["two_stage"]["recall@k"] - gate["recall_at_k"]) <= 0.05  # against `score` over every item


def test_a_shortlist_in_int8_compute_scores_as_score_does(tmp_path, ckpt, ds) -> None:
    """int8 compute with a shortlist: recommend and score quantize the looked-up item rows alike, so a shortlisted
    item's score in recommend equals its score from `score` exactly."""
    options = {"shortlist": 30, "compute": "int8", "table_recall": 0.0}
    cfg = ExportConfig(target="tflite-bundle", precision="int8", tolerance=ParityBound(hr=0.05), options=options)
    art = edgerec.export(ckpt, cfg, ds, out=tmp_path / "b")
    assert art.manifest["quantization"]["compute"] == "int8"
    scorer = load_bundle(art.folder)
    for u in (0, 99, 298):
        ug, um = scorer.user(u)
        items, scores = scorer.shortlisted(ug, um)
        assert np.array_equal(scorer.score_items(ug, um, items), scores)


def test_a_shortlist_below_the_gate_or_out_of_range_is_refused(tmp_path, ckpt, ds) -> None:
    """A shortlist whose recall@K misses table_recall: one line with the recall and the shortfall, nothing written;
    a shortlist shorter than K or longer than the catalog: one line."""
    cfg = ExportConfig(target="tflite-bundle", options={"shortlist": 10, "table_recall": 1.0})
    with pytest.raises(EdgerecError, match=r"shortlist 10: recall@10 of recommend 0\.\d+ .* short of 1\.0 by"):
        edgerec.export(ckpt, cfg, ds, out=tmp_path / "b")
    assert not (tmp_path / "b").exists()
    for s in (5, ds.n_items + 1):
        cfg = ExportConfig(target="tflite-bundle", options={"shortlist": s})
        with pytest.raises(EdgerecError, match=rf"--shortlist must be 0 .* lie in 10\.\.{ds.n_items} .*; got {s}"):
            edgerec.export(ckpt, cfg, ds, out=tmp_path / "c")
        assert not (tmp_path / "c").exists()
    with pytest.raises(ConfigError, match="a shortlist reads the int8 item table; item_table int4"):
        ExportConfig(target="tflite-bundle", options={"shortlist": 40, "item_table": "int4"})
    plain = edgerec.export(ckpt, ExportConfig(target="tflite-bundle"), ds, out=tmp_path / "d")
    with pytest.raises(EdgerecError, match="ranks the whole catalog"):
        load_bundle(plain.folder).shortlisted(np.zeros(8), np.zeros(32))
