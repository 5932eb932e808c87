"""The target contract: every target is a pair of same-named modules (exporters/<t>.py, runtime/<t>.py) read by name
through edgerec.targets, and a target from outside the package is added with one `register` call: here a toy target
from this test folder is exported, verified in its own runtime and gated, with no file of the package edited."""

from __future__ import annotations

import pytest

import edgerec
from edgerec import targets
from edgerec.runtime import load_scorer

from .conftest import SMALL


@pytest.fixture
def toy():
    targets.register("toy-npz", "tests.toy_target", "tests.toy_target_runtime")
    yield "toy-npz"
    targets.INDEX.pop("toy-npz")


def test_every_target_is_a_pair_of_same_named_modules_whose_runtimes_have_scorers() -> None:
    for name in targets.names():
        module = name.replace("-", "_")
        assert targets.INDEX[name] == (f"edgerec.exporters.{module}", f"edgerec.runtime.{module}")
        t = targets.target(name)
        assert t.name == name and t.runtimes and set(t.verified_in) <= set(t.runtimes)
        assert all(targets.scorer_class(name, r) for r in t.runtimes)


def test_a_target_registered_from_outside_the_package_exports_verifies_and_refuses_foreign_options(
    toy, ckpt, tmp_path
) -> None:
    cfg = edgerec.ExportConfig(target=toy, options={"dtype": "float16"})
    art = edgerec.export(ckpt, cfg, data=SMALL, out=tmp_path / "toy")
    assert art.status == "verified" and art.manifest["dtype"] == "float16" and art.model_file.name == "model.npz"
    assert abs(art.verification["deltas"]["hr@10"]) <= 0.001  # the fp16 weights, gated like any other target
    scorer = load_scorer(art.folder)
    assert type(scorer).__name__ == "NpzScorer" and scorer.top_k(0, 5)[0].shape == (5,)
    with pytest.raises(edgerec.ConfigError, match=r"target toy-npz has no option `candidates` \(its options: dtype\)"):
        edgerec.ExportConfig(target=toy, options={"candidates": 5})
    with pytest.raises(edgerec.ConfigError, match=r"ExportConfig: target toy-npz: NpzOptions: field `dtype`"):
        edgerec.ExportConfig(target=toy, options={"dtype": "int4"})
    with pytest.raises(edgerec.EdgerecError, match="already registered"):
        targets.register(toy, "tests.toy_target", "tests.toy_target_runtime")
