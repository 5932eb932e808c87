"""The phone bundle: the folded NeuMF equals NeuMF, runs in LiteRT with top-K in the graph, refuses bad input."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from edgerec import load_checkpoint
from edgerec.errors import EdgerecError
from edgerec.export import ExportConfig, ExportTolerance, export
from edgerec.export.bundle import folded_macs
from edgerec.export.folded import FoldedNCF, user_vectors
from edgerec.model import NCF, NCFArch
from edgerec.runtime import load_bundle


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, ckpt, ds):
    root = tmp_path_factory.mktemp("bundle")
    out = {}
    for precision in ("fp32", "int8"):
        cfg = ExportConfig(target="tflite-bundle", precision=precision, tolerance=ExportTolerance(hr=0.05))
        out[precision] = (root / precision, export(ckpt, ds, root / precision, cfg))
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
    assert folded_macs(model) == 688  # DESIGN.md: 2,704 unfolded


def test_fp32_bundle_equals_pytorch_and_ranks_top_k_in_the_graph(bundles, ckpt, ds) -> None:
    folder, manifest = bundles["fp32"]
    model = load_checkpoint(ckpt).model
    scorer = load_bundle(folder)
    ug, um = user_vectors(model)
    for u in (0, 5, 299):
        items, _, every = scorer.recommend(ug[u].numpy(), um[u].numpy())
        with torch.no_grad():
            ref = model(torch.full((ds.n_items,), u), torch.arange(ds.n_items)).numpy()
        assert np.abs(every - ref).max() < 1e-5
        assert list(items) == list(np.argsort(-ref, kind="stable")[:10])
    assert manifest["verification"]["deltas"]["hr@10"] == 0.0
    assert {"model.tflite", "README.md", "id_maps.json", "user_vectors.npy"} <= set(manifest["files"])
    assert 'getSignatureRunner("recommend")' in (folder / "README.md").read_text()


def test_int8_bundle_is_small_and_keeps_float_scores(bundles) -> None:
    (_, m32), (f8, m8) = bundles["fp32"], bundles["int8"]
    assert m8["files"]["model.tflite"]["bytes"] < 0.4 * m32["files"]["model.tflite"]["bytes"]
    items, scores, _ = load_bundle(f8).recommend(np.zeros(8), np.zeros(32))
    assert items.dtype == np.int32 and scores.dtype == np.float32 and np.all(np.diff(scores) <= 0)


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
        load_bundle(bundles["fp32"][0]).recommend(gmf, mlp)


def test_tampered_or_foreign_bundles_are_refused(tmp_path, bundles, ckpt, ds) -> None:
    folder = tmp_path / "b"
    shutil.copytree(bundles["fp32"][0], folder)
    data = bytearray((folder / "model.tflite").read_bytes())
    data[len(data) // 2] ^= 1
    (folder / "model.tflite").write_bytes(bytes(data))
    with pytest.raises(EdgerecError, match="sha256 does not match"):
        load_bundle(folder)
    (folder / "model.tflite").unlink()
    with pytest.raises(EdgerecError, match="missing"):
        load_bundle(folder)
    onnx = tmp_path / "onnx"
    export(ckpt, ds, onnx, ExportConfig(target="onnx"))
    with pytest.raises(EdgerecError, match="not a phone bundle"):
        load_bundle(onnx)
    with pytest.raises(EdgerecError, match="k must lie in"):
        load_bundle(bundles["fp32"][0]).top_k(0, k=ds.n_items + 1)
