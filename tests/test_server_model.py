"""The server model (target onnx-server): user ids in, the catalog's top-K out of one ONNX graph, equal to the NeuMF."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import edgerec
from edgerec.errors import EdgerecError
from edgerec.runtime import load_scorer

from .conftest import SMALL


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_the_server_model_equals_the_neumf(ckpt, tmp_path: Path, precision: str) -> None:
    ck = edgerec.load(ckpt)
    art = edgerec.export(
        ck, edgerec.ExportConfig(target="onnx-server", precision=precision), data=SMALL, out=tmp_path / "s"
    )
    assert art.manifest["inputs"] == ["users"] and art.manifest["k"] == 10
    scorer = load_scorer(art.folder)
    users = np.arange(0, ck.model.arch.n_users, 37)
    items, scores = scorer.recommend(users)
    n = ck.model.arch.n_items
    with torch.no_grad():
        full = ck.model(torch.from_numpy(np.repeat(users, n)), torch.arange(n).repeat(len(users))).view(len(users), n)
    want = torch.topk(full, 10, dim=1)
    tol = 1e-5 if precision == "fp32" else 2e-2
    np.testing.assert_allclose(scores, want.values.numpy(), atol=tol)
    if precision == "fp32":
        np.testing.assert_array_equal(items, want.indices.numpy())  # the same top-10, in the same order
        assert art.verification["max_abs_score_error"] <= 1e-5
    u = np.array([3, 3, 9])
    i = np.array([0, 5, 7])
    with torch.no_grad():
        pairs = ck.model(torch.from_numpy(u), torch.from_numpy(i)).numpy()
    np.testing.assert_allclose(scorer.score(u, i), pairs, atol=tol)  # score(users, items) from the catalog scores


def test_server_model_bad_input(ckpt, tmp_path: Path) -> None:
    ck = edgerec.load(ckpt)
    art = edgerec.export(ck, edgerec.ExportConfig(target="onnx-server"), data=SMALL, out=tmp_path / "s")
    scorer = load_scorer(art.folder)
    with pytest.raises(EdgerecError, match=r"users must lie in 0\.\."):
        scorer.recommend([ck.model.arch.n_users])
    with pytest.raises(EdgerecError, match="users must be integer ids"):
        scorer.recommend(np.array([1.5]))
    with pytest.raises(EdgerecError, match="empty request"):
        scorer.recommend(np.array([], dtype=np.int64))
    with pytest.raises(edgerec.ConfigError, match="onnx-server supports precision fp32, fp16"):
        edgerec.ExportConfig(target="onnx-server", precision="int8")
