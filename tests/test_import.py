"""`edgerec import` / `edgerec.import_model`: every format on fixtures written the way the foreign tools write them,
the imported model equal to the source, the restricted unpickler, and bad input refused with nothing written."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import edgerec
from edgerec.cli.main import main
from edgerec.errors import EdgerecError
from edgerec.importers import pickled
from edgerec.model.checkpoint import load
from edgerec.model.ncf import NCF, NCFArch, neumf_from_pretrained

from .foreign_files import (
    dle_state,
    keras_h5,
    linears,
    recbole_checkpoint,
    recbole_dataset,
    recbole_state,
)

DATA = "synthetic:users=120,items=130,seed=5"


def model(kind: str = "neumf", users: int = 40, items: int = 50, seed: int = 0) -> NCF:
    torch.manual_seed(seed)
    m = NCF(NCFArch.paper(kind, users, items, 4, (16, 8, 4)))
    with torch.no_grad():  # non-zero biases, so that a dropped or misplaced bias shows
        for p in m.parameters():
            if p.ndim == 1:
                p.normal_(0, 0.3)
    return m.eval()


def same_logits(ck, source: NCF, atol: float = 0.0) -> None:
    u = torch.arange(source.arch.n_users).repeat_interleave(3)
    i = torch.randint(0, source.arch.n_items, (len(u),), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(ck.model(u, i), source(u, i), rtol=0, atol=atol)


def one_line_error(capsys, args: list[str], match: str) -> str:
    assert main(["-q", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("edgerec: error: "), err
    assert match in err, err
    return err


# -- Keras (the NCF authors' code) -------------------------------------------------------------------------------


@pytest.mark.parametrize("keras", [1, 2])
@pytest.mark.parametrize("kind", ["gmf", "mlp", "neumf"])
def test_keras_h5_imports_exactly(tmp_path: Path, kind: str, keras: int) -> None:
    src = model(kind)
    ck = edgerec.import_model(keras_h5(tmp_path / "w.h5", src, keras=keras), "keras-h5")
    assert ck.model.arch == src.arch
    same_logits(ck, src)
    assert list(ck.user_ids) == list(range(40)) and list(ck.item_ids) == list(range(50))
    info = ck.config["imported"]
    assert info["format"] == "keras-h5" and info["fidelity"]["max_abs_logit_error"] <= 1e-5
    sha = __import__("hashlib").sha256((tmp_path / "w.h5").read_bytes()).hexdigest()
    assert info["sources"][0]["sha256"] == sha
    if kind != "gmf":
        wn = "layer1/layer1_W" if keras == 1 else "layer1/layer1/kernel:0"
        assert info["mapping"]["mlp.0.weight"] == f"{wn} (transposed)"


def test_keras_gmf_mlp_pair_is_the_papers_pretraining(tmp_path: Path) -> None:
    gmf, mlp = model("gmf", seed=1), model("mlp", seed=2)
    files = [keras_h5(tmp_path / "MLP.h5", mlp), keras_h5(tmp_path / "GMF.h5", gmf)]  # either order
    ck = edgerec.import_model(files, "keras-h5")
    assert ck.model.arch.kind == "neumf"
    same_logits(ck, neumf_from_pretrained(gmf, mlp), atol=1e-6)
    u, i = torch.arange(40), torch.arange(40)
    torch.testing.assert_close(ck.model(u, i), 0.5 * (gmf(u, i) + mlp(u, i)), rtol=0, atol=1e-6)
    with pytest.raises(EdgerecError, match="a GMF file and an MLP file"):
        edgerec.import_model([files[1], files[1]], "keras-h5")


def test_keras_full_model_save_is_read_through_model_weights(tmp_path: Path) -> None:
    import h5py

    src = model()
    inner = keras_h5(tmp_path / "w.h5", src)
    with h5py.File(tmp_path / "full.h5", "w") as f, h5py.File(inner, "r") as g:
        g.copy(g["/"], f, name="model_weights")  # model.save(): the weights sit under /model_weights
        f["model_weights"].attrs.update(dict(g.attrs))
        f.attrs["model_config"] = b"{}"
    same_logits(edgerec.import_model(tmp_path / "full.h5", "keras-h5"), src)


# -- NVIDIA DLE and any state_dict -------------------------------------------------------------------------------


@pytest.mark.parametrize("fp16", [False, True])
@pytest.mark.parametrize("module", [False, True])
def test_dle_state_dict(tmp_path: Path, fp16: bool, module: bool) -> None:
    src = model()
    torch.save(dle_state(src, fp16=fp16, module=module), tmp_path / "model.pth")
    ck = edgerec.import_model(tmp_path / "model.pth", "dle")
    if fp16:  # the import equals the fp16 weights exactly; those are the fp32 source rounded
        half = model()
        half.load_state_dict({k: v.half().float() for k, v in src.state_dict().items()})
        same_logits(ck, half, atol=1e-6)
    else:
        same_logits(ck, src)
    assert ck.config["imported"]["notes"]["module_prefix_stripped"] is module
    assert ck.config["imported"]["notes"]["dtypes"] == (["float16"] if fp16 else ["float32"])


def custom_state(src: NCF, mlp_first: bool, bias: bool = True) -> dict[str, torch.Tensor]:
    d = src.arch.gmf_dim
    sd = {"emb.gu": src.gmf_user.weight, "emb.gi": src.gmf_item.weight}
    sd |= {"emb.mu": src.mlp_user.weight, "emb.mi": src.mlp_item.weight}
    for k, lin in enumerate(linears(src)):
        sd[f"tower.fc{k}.weight"], sd[f"tower.fc{k}.bias"] = lin.weight, lin.bias
    w = src.predict.weight
    sd["head.weight"] = torch.cat([w[:, d:], w[:, :d]], 1) if mlp_first else w
    if bias:
        sd["head.bias"] = src.predict.bias
    return {k: v.detach().clone().contiguous() for k, v in sd.items()}


ROLES = "gmf_user=emb.gu,gmf_item=emb.gi,mlp_user=emb.mu,mlp_item=emb.mi,mlp=tower.fc0+tower.fc1,predict=head"


@pytest.mark.parametrize("mlp_first", [False, True])
def test_state_dict_through_a_mapping(tmp_path: Path, mlp_first: bool) -> None:
    src = model()
    save_file(custom_state(src, mlp_first), tmp_path / "m.safetensors")
    order = "mlp-first" if mlp_first else "gmf-first"
    args = ["import", "--format", "state-dict", str(tmp_path / "m.safetensors"), "--map", ROLES, "--concat", order]
    assert main(["-q", *args, "--out", str(tmp_path / "ck")]) == 0
    same_logits(load(tmp_path / "ck"), src)


def test_state_dict_yaml_mapping_numbered_layers_and_missing_bias(tmp_path: Path) -> None:
    src = model()
    sd = custom_state(src, mlp_first=False, bias=False)
    sd = {k.replace("tower.fc", "tower."): v for k, v in sd.items()}  # a ModuleList: tower.0, tower.1
    torch.save(sd, tmp_path / "m.pth")
    roles = "gmf_user: emb.gu\ngmf_item: emb.gi\nmlp_user: emb.mu\nmlp_item: emb.mi\nmlp: tower\npredict: head\n"
    (tmp_path / "map.yaml").write_text(roles)
    ck = edgerec.import_model(
        tmp_path / "m.pth", edgerec.ImportConfig(format="state-dict", map=_yaml(tmp_path / "map.yaml"))
    )
    u, i = torch.arange(40), torch.arange(40)
    torch.testing.assert_close(ck.model(u, i), src(u, i) - src.predict.bias, rtol=0, atol=1e-6)
    assert ck.config["imported"]["mapping"]["predict.bias"].startswith("0 ")


def _yaml(path: Path) -> dict[str, str]:
    from edgerec.importers.config import parse_map

    return parse_map(str(path))


# -- RecBole -----------------------------------------------------------------------------------------------------


def test_recbole_checkpoint_and_dataset(tmp_path: Path) -> None:
    src = model()
    users = [f"u{k}" for k in range(40)]
    items = [str(1000 + k) for k in range(50)]
    files = [
        recbole_checkpoint(tmp_path / "NeuMF.pth", src, {"mf_train": True, "mlp_train": True}),
        recbole_dataset(tmp_path / "ml-dataset.pth", users, items),
    ]
    ck = edgerec.import_model(files, "recbole")
    same_logits(ck, src)  # row 0 ([PAD]) dropped: dense index k is RecBole's internal id k + 1
    assert list(ck.user_ids) == users and list(ck.item_ids) == [1000 + k for k in range(50)]
    assert ck.config["imported"]["mapping"]["gmf_user.weight"].startswith("user_mf_embedding.weight rows 1..")


def test_recbole_one_tower_variants_and_id_maps_json(tmp_path: Path) -> None:
    full = model()
    gmf_only = model("gmf")
    with torch.no_grad():
        gmf_only.gmf_user.weight.copy_(full.gmf_user.weight)
        gmf_only.gmf_item.weight.copy_(full.gmf_item.weight)
    extra = {"predict_layer.weight": gmf_only.predict.weight.detach(), "predict_layer.bias": gmf_only.predict.bias}
    path = recbole_checkpoint(tmp_path / "gmf.pth", full, {"mf_train": True, "mlp_train": False}, extra)
    maps = tmp_path / "ids.json"
    maps.write_text(json.dumps({"users": ["[PAD]", *range(40)], "items": list(range(50))}))
    ck = edgerec.import_model(path, edgerec.ImportConfig(format="recbole", id_maps=str(maps)))
    assert ck.model.arch.kind == "gmf"
    same_logits(ck, gmf_only, atol=1e-6)
    with pytest.raises(EdgerecError, match="give the id map"):
        edgerec.import_model(path, "recbole")


def test_recbole_batch_norm_is_refused(tmp_path: Path) -> None:
    extra = {"mlp_layers.mlp_layers.2.running_mean": torch.zeros(8)}
    path = recbole_checkpoint(tmp_path / "bn.pth", model(), {}, extra)
    with pytest.raises(EdgerecError, match="batch normalisation"):
        edgerec.import_model(path, edgerec.ImportConfig(format="recbole", id_maps=None))


class _RunsACommand:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (subprocess.check_call, (["touch", str(self.marker)],))


class _ImportsAModule:
    def __reduce__(self):
        return (__import__, ("edgerec_never_imported_module",))


def test_a_pickle_that_would_run_a_command_is_read_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    src = model()
    bad = {"state_dict": recbole_state(src), "config": _RunsACommand(marker), "other_parameter": _ImportsAModule()}
    torch.save(bad, tmp_path / "evil.pth")
    before = set(sys.modules)
    obj = pickled.load(tmp_path / "evil.pth")
    assert not marker.exists()
    assert set(sys.modules) == before  # nothing the pickle names was imported
    assert isinstance(obj["config"], pickled.Inert) and obj["config"].qualname == "subprocess.check_call"
    assert obj["config"].args == (["touch", str(marker)],)
    with (tmp_path / "plain.pkl").open("wb") as fh:
        pickle.dump(_RunsACommand(marker), fh, protocol=4)
    assert isinstance(pickled.load(tmp_path / "plain.pkl"), pickled.Inert) and not marker.exists()
    # the import itself goes through: the tensors and the stubbed config come out, nothing runs
    maps = tmp_path / "ids.json"
    maps.write_text(json.dumps({"users": list(range(40)), "items": list(range(50))}))
    ck = edgerec.import_model(tmp_path / "evil.pth", edgerec.ImportConfig(format="recbole", id_maps=str(maps)))
    same_logits(ck, src)
    assert not marker.exists()
    # the other formats load pickles with torch.load(weights_only=True): refused, with how to re-save
    torch.save({**dle_state(src), "hook": _RunsACommand(marker)}, tmp_path / "dle.pth")
    with pytest.raises(EdgerecError, match=r"refused: loading this pickle would import and call code.*state_dict"):
        edgerec.import_model(tmp_path / "dle.pth", "dle")
    assert not marker.exists()


def test_tensor_rebuild_is_bounds_checked(tmp_path: Path) -> None:
    storage = pickled.Storage(np.arange(6, dtype=np.float32).tobytes(), "FloatStorage")
    assert pickled._rebuild_tensor(storage, 2, (2, 2), (1, 2)).tolist() == [[2.0, 4.0], [3.0, 5.0]]
    with pytest.raises(EdgerecError, match="past the end"):
        pickled._rebuild_tensor(storage, 4, (2, 2), (2, 1))


# -- the imported checkpoint in the other commands ----------------------------------------------------------------


def test_data_is_matched_by_original_id_whatever_the_order(tmp_path: Path) -> None:
    """A RecBole model of a trained edgerec NeuMF whose tokens are in another order than edgerec's loader gives:
    evaluated, its metrics are the original's exactly; export and bench take it as it is."""
    trained = edgerec.train(DATA, edgerec.TrainConfig(epochs=2, factors=4, layers=(16, 8, 4)))
    ds = edgerec.dataset(DATA)
    rng = np.random.default_rng(0)
    pu, pi = rng.permutation(ds.n_users), rng.permutation(ds.n_items)  # RecBole's row k+1 = edgerec's row p[k]
    src = model(users=ds.n_users, items=ds.n_items)
    src.load_state_dict(trained.model.state_dict())
    with torch.no_grad():
        for name in ("gmf_user", "mlp_user"):
            getattr(src, name).weight.copy_(getattr(trained.model, name).weight[pu])
        for name in ("gmf_item", "mlp_item"):
            getattr(src, name).weight.copy_(getattr(trained.model, name).weight[pi])
    files = [
        recbole_checkpoint(tmp_path / "NeuMF.pth", src, {}),
        recbole_dataset(
            tmp_path / "ds.pth", [str(x) for x in ds.train.user_ids[pu]], [str(x) for x in ds.train.item_ids[pi]]
        ),
    ]
    out = tmp_path / "imported"
    assert main(["-q", "import", "--format", "recbole", *map(str, files), "--data", DATA, "--out", str(out)]) == 0
    ck = load(out)
    for k in ("hr@10", "ndcg@10", "full_hr@10", "full_ndcg@10"):
        assert ck.metrics[k] == pytest.approx(trained.metrics[k], abs=1e-12), k
    assert edgerec.evaluate(ck, DATA).metrics["full_ndcg@10"] == pytest.approx(
        trained.metrics["full_ndcg@10"], abs=1e-6
    )
    art = edgerec.export(ck, edgerec.ExportConfig(target="onnx", precision="fp32"), data=DATA, out=tmp_path / "art")
    report = edgerec.bench(art, edgerec.BenchConfig(min_time_s=0.01, warmup=1, warmup_s=0.0, min_calls=1), data=DATA)
    assert report.record["metrics"]["hr@10"] == pytest.approx(trained.metrics["hr@10"], abs=1e-9)


def test_unknown_ids_are_counted_and_a_mismatch_is_an_error(tmp_path: Path, caplog) -> None:
    from edgerec.data.align import align

    ds = edgerec.dataset(DATA)
    keep_users = ds.train.user_ids[: ds.n_users - 10]  # the model knows all but ten users
    aligned, report = align(ds, keep_users, ds.train.item_ids)
    assert report.unknown_users == 10 and report.dropped_test == int(
        np.isin(ds.test_users, range(ds.n_users - 10, ds.n_users)).sum()
    )
    assert aligned.n_users == ds.n_users - 10 and len(aligned.test_users) == len(ds.test_users) - report.dropped_test
    strangers = np.asarray([f"x{k}" for k in range(ds.n_users)])
    with pytest.raises(EdgerecError, match="do not match"):
        align(ds, strangers, ds.train.item_ids)


def test_train_init_continues_from_an_imported_model(tmp_path: Path) -> None:
    ds = edgerec.dataset(DATA)
    src = model(users=ds.n_users, items=ds.n_items)
    keras_h5(tmp_path / "w.h5", src)
    assert main(["-q", "import", "--format", "keras-h5", str(tmp_path / "w.h5"), "--out", str(tmp_path / "ck")]) == 0
    args = [
        "-q",
        "train",
        "--data",
        DATA,
        "--init",
        str(tmp_path / "ck"),
        "--epochs",
        "1",
        "--out",
        str(tmp_path / "t"),
    ]
    assert main(args) == 0
    tuned = load(tmp_path / "t")
    assert tuned.model.arch == src.arch
    assert tuned.report["init"] and not torch.equal(tuned.model.gmf_user.weight, src.gmf_user.weight)


# -- bad input: one line, exit 2, nothing written ----------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    src = model()
    out = {"h5": keras_h5(tmp_path / "w.h5", src), "rb": recbole_checkpoint(tmp_path / "rb.pth", src, {})}
    torch.save(dle_state(src), tmp_path / "dle.pth")
    out["dle"] = tmp_path / "dle.pth"
    return out


def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path, files: dict[str, Path], capsys) -> None:
    out = tmp_path / "out"
    src = model()

    def refused(args: list[str], match: str) -> None:
        one_line_error(capsys, ["import", *args, "--out", str(out)], match)
        assert not out.exists()

    refused(["--format", "dle", str(files["h5"])], "not a dle file (it looks like hdf5: try --format keras-h5)")
    refused(["--format", "keras-h5", str(files["dle"])], "not a keras-h5 file")
    refused(["--format", "dle", str(tmp_path / "missing.pth")], "no such file")
    sd = dle_state(src)
    torch.save({k: v for k, v in sd.items() if k != "mlp.1.bias"}, tmp_path / "short.pth")
    refused(["--format", "dle", str(tmp_path / "short.pth")], "missing mlp.1.bias")
    torch.save({**sd, "extra.weight": torch.zeros(3)}, tmp_path / "long.pth")
    refused(["--format", "dle", str(tmp_path / "long.pth")], "extra extra.weight")
    torch.save({**sd, "mlp.1.weight": torch.zeros(4, 9)}, tmp_path / "shape.pth")
    refused(
        ["--format", "dle", str(tmp_path / "shape.pth")],
        "mlp.1.weight [4x9] takes 9 inputs but mlp.0.weight outputs is 8",
    )
    torch.save({**sd, "final.weight": torch.zeros(1, 5)}, tmp_path / "head.pth")
    refused(
        ["--format", "dle", str(tmp_path / "head.pth")], "final.weight [1x5] / final.bias [1] do not fit the towers"
    )
    torch.save({**sd, "mf_item_embed.weight": torch.zeros(50, 3)}, tmp_path / "width.pth")
    refused(["--format", "dle", str(tmp_path / "width.pth")], "GMF tables differ in width")
    (tmp_path / "ids.json").write_text(json.dumps({"users": list(range(39)), "items": list(range(50))}))
    refused(
        ["--format", "dle", str(files["dle"]), "--id-maps", str(tmp_path / "ids.json")],
        "has 39 users but the model's tables hold 40",
    )
    refused(
        ["--format", "recbole", str(files["rb"]), "--id-maps", str(tmp_path / "ids.json")], "39 users in the id map"
    )
    import h5py

    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f["x"] = np.zeros(3)
    refused(["--format", "keras-h5", str(tmp_path / "plain.h5")], "without the 'layer_names' attribute")
    with h5py.File(tmp_path / "w.h5", "a") as f:
        del f["layer2"]
    refused(
        ["--format", "keras-h5", str(tmp_path / "w.h5")],
        "layer 'layer2' is listed in layer_names but has no weight_names",
    )
    refused(["--format", "state-dict", str(files["dle"])], "state-dict needs --map")
    refused(["--format", "dle", str(files["dle"]), "--map", ROLES], "map and concat apply to format state-dict only")
    (tmp_path / "torn.pth").write_bytes(files["dle"].read_bytes()[:200])
    refused(["--format", "dle", str(tmp_path / "torn.pth")], "truncated or corrupt zip file")
    (tmp_path / "junk.pth").write_bytes(b"\x80\x02not really a pickle")
    refused(["--format", "dle", str(tmp_path / "junk.pth")], "not a readable PyTorch file")
    refused(["--format", "recbole", str(tmp_path / "junk.pth")], "not a readable pickle")


def test_fidelity_failure_writes_nothing(tmp_path: Path, files: dict[str, Path], capsys, monkeypatch) -> None:
    from edgerec.importers import state_dict

    real = state_dict._map

    def off_by_a_little(*args, **kwargs):
        f = real(*args, **kwargs)
        ref = f.reference
        f.reference = lambda u, i: ref(u, i) + 1e-4
        return f

    monkeypatch.setattr(state_dict, "_map", off_by_a_little)
    out = tmp_path / "out"
    err = one_line_error(
        capsys, ["import", "--format", "dle", str(files["dle"]), "--out", str(out)], "fidelity check failed"
    )
    assert "1e-04" in err or "0.0001" in err
    assert not out.exists()
