"""NeuMF with user and item features (edgerec.model.features): training, the checkpoint's round trip, folding for
the steps that read plain NeuMF weights, new items scored by their features, the CLI flags; id-only models as
before."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import edgerec
from edgerec.cli.main import main
from edgerec.data.features import FEATURES_JSON, FEATURES_TENSORS, Encoded, pool, read_features
from edgerec.errors import ConfigError, EdgerecError
from edgerec.model.checkpoint import load
from edgerec.model.config import FeaturesConfig, TrainConfig
from edgerec.model.features import FeatureNCF, add_ids, fold, folded_state_dict
from edgerec.model.ncf import NCF

TINY = "synthetic:users=150,items=140,seed=4"


def feature_files(folder: Path, ds: edgerec.Dataset, missing_items: int = 0) -> tuple[Path, Path]:
    """An item table (genres, year, title) without the last `missing_items` items, and a user table."""
    rng = np.random.default_rng(0)
    items, users = folder / "items.csv", folder / "users.tsv"
    lines = ["item,genres,year,title"]
    for i in ds.train.item_ids[: len(ds.train.item_ids) - missing_items]:
        genres = "|".join(rng.choice(["drama", "comedy", "action", "horror"], size=2, replace=False))
        lines.append(f"{i},{genres},{rng.integers(1980, 2000)},the film {rng.integers(0, 30)} part {rng.integers(3)}")
    items.write_text("\n".join(lines) + "\n")
    users.write_text("user\tgroup\n" + "".join(f"{u}\t{rng.choice(['a', 'b', 'c'])}\n" for u in ds.train.user_ids))
    return items, users


def all_pairs(n_users: int, n_items: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.arange(n_users).repeat_interleave(n_items), torch.arange(n_items).repeat(n_users)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[edgerec.Checkpoint, edgerec.Dataset, Path, Path]:
    folder = tmp_path_factory.mktemp("features")
    ds = edgerec.dataset(TINY)
    items, users = feature_files(folder, ds, missing_items=5)
    cfg = TrainConfig(factors=4, epochs=2, features=FeaturesConfig(user=str(users), item=str(items)))
    torch.set_num_threads(1)
    return edgerec.train(ds, cfg), ds, items, users


def test_training_and_checkpoint_round_trip(trained, tmp_path: Path) -> None:
    ck, ds, _, _ = trained
    assert isinstance(ck.model, FeatureNCF)
    report = ck.report["features"]
    assert report["item"]["without_row"] == 5 and report["user"]["matched"] == ds.n_users
    assert {FEATURES_JSON, FEATURES_TENSORS} <= set(ck.files) and ck.config["features"]["sides"] == ["item", "user"]
    ck.save(tmp_path / "ck")
    again = load(tmp_path / "ck")
    assert isinstance(again.model, FeatureNCF)
    assert again.model.features.encoders == ck.model.features.encoders
    u, i = all_pairs(ds.n_users, ds.n_items)
    with torch.no_grad():
        torch.testing.assert_close(again.model(u, i), ck.model(u, i), rtol=0, atol=0)
    assert edgerec.evaluate(tmp_path / "ck", ds, full=False).metrics["hr@10"] == ck.metrics["hr@10"]
    assert (
        again.model.features.neighbours
        == ck.model.features.neighbours
        == {"item": ck.model.features.neighbours["item"]}
    )
    # what changed in the loaded model in place (a cold fit's choice) is what the next save writes
    again.model.features = replace(again.model.features, neighbours={"item": 3})
    assert load(again.save(tmp_path / "again")).model.features.neighbours == {"item": 3}
    record = json.loads((tmp_path / "ck" / FEATURES_JSON).read_text())
    for bad in ({"item": -1}, {"shop": 5}, {"user": 5}):  # users are placed by their bags, as on the phone
        shutil.rmtree(tmp_path / "bad", ignore_errors=True)
        shutil.copytree(tmp_path / "ck", tmp_path / "bad")
        (tmp_path / "bad" / FEATURES_JSON).write_text(json.dumps({**record, "neighbours": bad}))
        config = json.loads((tmp_path / "bad" / "config.json").read_text())
        config["extra_files"][FEATURES_JSON] = hashlib.sha256(
            (tmp_path / "bad" / FEATURES_JSON).read_bytes()
        ).hexdigest()
        (tmp_path / "bad" / "config.json").write_text(json.dumps(config))
        with pytest.raises(EdgerecError, match="neighbours"):
            load(tmp_path / "bad")
    # a changed features file is refused
    shutil.copytree(tmp_path / "ck", tmp_path / "changed")
    (tmp_path / "changed" / FEATURES_JSON).write_text(json.dumps({"changed": True}))
    with pytest.raises(EdgerecError, match="sha256 does not match"):
        load(tmp_path / "changed")


def test_id_dropout_trains_the_feature_path_only_in_training(trained) -> None:
    ck, ds, _, _ = trained
    model = ck.model
    u, i = all_pairs(4, ds.n_items)
    with torch.no_grad():
        model.eval()
        a, b = model(u, i), model(u, i)
        torch.testing.assert_close(a, b, rtol=0, atol=0)  # no dropout at inference
        model.train()
        c = model(u, i)
        model.eval()
    assert not torch.equal(a, c)


def test_the_items_own_id_dropout_zeroes_item_rows_only(trained) -> None:

    ck, ds, _, _ = trained
    model = copy.deepcopy(ck.model)
    model.features = replace(model.features, id_dropout=0.0, item_id_dropout=0.9)
    u, i = all_pairs(4, ds.n_items)
    rows = model.lookup(u, i)
    with torch.no_grad():
        model.eval()
        plain = model.represent(rows, u, i)
        model.train()
        dropped = model.represent(rows, u, i)
    for name in plain:
        assert torch.equal(plain[name], dropped[name]) == name.endswith("_user")


def test_the_feature_loss_adds_each_side_scored_by_its_features_alone(trained) -> None:
    """FeaturesConfig.feature_loss: a training step's loss is the BCE of the model plus, per side, the weight times
    the BCE of the same model with that side's id rows zeroed (how a new id is scored), and the bags learn from it."""

    from edgerec.model.training import FitOptions, _Steps

    ck, ds, _, _ = trained
    u, i = torch.tensor([0, 3, 3, 9, 20]), torch.tensor([1, 1, 5, ds.n_items - 1, 7])
    y = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0])
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    cfg = TrainConfig(factors=4, batch_size=8, lr=1e-2, l2=0.0)
    grads = {}
    for weight in (0.0, 0.5):
        model = copy.deepcopy(ck.model)
        model.features = replace(model.features, id_dropout=0.0, feature_loss=weight)
        with torch.no_grad():
            expected = bce(model(u, i), y)
            for side in ("user", "item"):
                alone = copy.deepcopy(model)
                for name, table in alone.tables().items():
                    if name.endswith(f"_{side}"):
                        table.weight.zero_()
                expected += weight * bce(alone(u, i), y)
        model.train()
        steps = _Steps(model, cfg, FitOptions(), None, 1)
        torch.testing.assert_close(steps.step(u, i, y), expected)
        grads[weight] = model.bags()["gmf_item"].weight.grad.clone()
    assert not torch.allclose(grads[0.0], grads[0.5])


def test_feature_rows_get_the_l2_of_the_rows_a_batch_reads(trained) -> None:
    ck, ds, _, _ = trained
    model, l2 = ck.model, 1e-3
    u, i = torch.tensor([0, 3, 3, 9]), torch.tensor([1, 1, 5, ds.n_items - 1])
    for bag in model.bags().values():
        bag.weight.grad = torch.zeros_like(bag.weight)
    model.add_l2_grad(u, i, l2)
    for name, bag in model.bags().items():
        side, ids = ("user", u) if name.endswith("_user") else ("item", i)
        weight = bag.weight.detach().clone().requires_grad_()
        idx = getattr(model, f"{side}_feature_indices")[ids]
        w = getattr(model, f"{side}_feature_weights")[ids].abs()
        penalty = l2 / len(ids) * (w[..., None] * weight[idx] ** 2).sum()
        penalty.backward()
        torch.testing.assert_close(bag.weight.grad, weight.grad)
        bag.weight.grad = None


@pytest.mark.parametrize("side", ["item", "user"])
def test_the_cold_fit_refits_one_sides_bags_and_keeps_every_known_pairs_score(trained, side: str) -> None:
    """Training ends with the cold fits (edgerec.model.cold_fit), items then users: one side's bags fitted for
    ids known by their features alone, each known id's rows moved so that every score stays what it was."""
    from edgerec.model.cold_fit import MIXED_TOLERANCE, ColdFit, fit_cold, place_new_items

    ck, ds, _, _ = trained
    ran = ck.report["stages"][f"cold_{side}s"]
    assert [h["epoch"] for h in ran["history"]] == [1, 2, 3] and 1 <= ran["kept_epoch"] <= 3
    own = ds.train.items if side == "item" else ds.train.users
    assert ran["side"] == side and ran["held_out"] == round(0.1 * len(np.unique(own)))
    # the item fit also chooses how new items are placed: k of their feature neighbours (0: their bags alone)
    assert ("kept_neighbours" in ran) == (side == "item")
    if side == "item":
        best = max(h["recall@10"] for h in ran["history"])
        assert set(ran["neighbours"]) == set(ran["mixed"]) == {"0", "5", "10", "20", "40"}
        assert ran["neighbours"]["0"] == pytest.approx(best, abs=1e-6)  # the bags alone: the fit's best epoch
        assert ck.model.features.neighbours == {"item": ran["kept_neighbours"]}
        # the best among themselves of the k that rank new items against the known ones no worse than the bags
        allowed = [k for k, v in ran["mixed"].items() if v >= ran["mixed"]["0"] - MIXED_TOLERANCE]
        assert str(ran["kept_neighbours"]) in allowed
        assert ran["neighbours"][str(ran["kept_neighbours"])] == max(ran["neighbours"][k] for k in allowed)
        # the step alone on the fitted model holds out the same items and chooses the same (the user fit since
        # moved user rows by float rounding only)
        alone = place_new_items(copy.deepcopy(ck.model), ds, ColdFit("item", seed=ck.report["train_config"]["seed"]))
        assert alone["kept_neighbours"] == ran["kept_neighbours"]
        for key in ("neighbours", "mixed"):
            assert alone[key] == pytest.approx(ran[key], abs=1e-3)
    model = copy.deepcopy(ck.model)
    bags = {name: bag.weight.detach().clone() for name, bag in model.bags().items()}
    u, i = all_pairs(ds.n_users, ds.n_items)
    with torch.no_grad():
        before = model(u, i)
    record = fit_cold(model, ds, ColdFit(side, epochs=2, seed=1))  # type: ignore[arg-type]
    assert [h["epoch"] for h in record["history"]] == [1, 2] and record["kept_epoch"] in (1, 2)
    assert all(0 <= h["recall@10"] <= 1 and h["loss"] > 0 for h in record["history"])
    with torch.no_grad():
        torch.testing.assert_close(model(u, i), before, rtol=0, atol=1e-5)
    for name, bag in model.bags().items():
        changed = not torch.equal(bag.weight, bags[name])
        assert changed == name.endswith(f"_{side}"), name  # the other side's bags are not this fit's
    assert all(p.requires_grad for p in model.parameters())  # the model is handed back trainable


@pytest.mark.parametrize("side", ["item", "user"])
def test_the_cold_fit_leaves_a_side_too_small_to_hold_ids_out(trained, side: str) -> None:
    from edgerec.model.cold_fit import ColdFit, fit_cold

    ck, ds, _, _ = trained
    model = copy.deepcopy(ck.model)
    own = ds.train.items if side == "item" else ds.train.users
    keep = own == own[0]  # every interaction of one id: it is held out, nothing is left
    train = replace(ds.train, users=ds.train.users[keep], items=ds.train.items[keep], timestamps=None, ratings=None)
    one = replace(ds, train=train)
    u, i = all_pairs(ds.n_users, ds.n_items)
    with torch.no_grad():
        before = model(u, i)
    assert fit_cold(model, one, ColdFit(side))["kept_epoch"] == 0  # type: ignore[arg-type]
    with torch.no_grad():
        torch.testing.assert_close(model(u, i), before, rtol=0, atol=0)


def test_the_cold_fits_are_off_at_zero_epochs(tmp_path: Path) -> None:
    ds = edgerec.dataset(TINY)
    items, users = feature_files(tmp_path, ds)
    features = FeaturesConfig(user=str(users), item=str(items), cold_item_epochs=0, cold_user_epochs=2)
    stages = edgerec.train(ds, TrainConfig(factors=4, epochs=1, features=features)).report["stages"]
    assert "cold_items" not in stages and len(stages["cold_users"]["history"]) == 2
    features = replace(features, cold_item_epochs=1, cold_user_epochs=0)
    stages = edgerec.train(ds, TrainConfig(factors=4, epochs=1, features=features)).report["stages"]
    assert "cold_users" not in stages and len(stages["cold_items"]["history"]) == 1


def test_folding_scores_every_known_id_as_the_model(trained) -> None:
    ck, ds, _, _ = trained
    plain = fold(ck.model)
    assert type(plain) is NCF and set(plain.state_dict()) == set(NCF(ck.model.arch).state_dict())
    u, i = all_pairs(ds.n_users, ds.n_items)
    with torch.no_grad():
        torch.testing.assert_close(plain(u, i), ck.model(u, i), rtol=1e-5, atol=1e-6)
    folded = ck.folded()
    assert type(folded.model) is NCF and FEATURES_JSON not in folded.files and "features" not in folded.config
    # a plain model folds to itself
    assert fold(plain) is plain and folded_state_dict(plain).keys() == plain.state_dict().keys()


def test_numpy_readers_fold_the_features(trained, tmp_path: Path) -> None:
    from edgerec.runtime.explain import NumpyModel

    ck, ds, _, _ = trained
    ck.save(tmp_path / "ck")
    numpy_model = NumpyModel.from_checkpoint(tmp_path / "ck")
    items = np.arange(ds.n_items)
    for user in (0, 7):
        logits, _ = numpy_model.side.logits(numpy_model.user_gmf[user], numpy_model.user_mlp[user], items)
        with torch.no_grad():
            expected = ck.model(torch.full((ds.n_items,), user), torch.from_numpy(items)).numpy()
        np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-5)


def test_export_reads_the_folded_model(trained, tmp_path: Path) -> None:
    ck, ds, _, _ = trained
    art = edgerec.export(ck, edgerec.ExportConfig(target="onnx"), data=ds, out=tmp_path / "onnx")
    users, items = np.repeat(np.arange(3), ds.n_items), np.tile(np.arange(ds.n_items), 3)
    with torch.no_grad():
        expected = ck.model(torch.from_numpy(users), torch.from_numpy(items)).numpy()
    np.testing.assert_allclose(art.scorer().score(users, items), expected, rtol=1e-4, atol=1e-5)


def kept_columns(before: np.ndarray, after: np.ndarray) -> list[int]:
    """The columns of `before` that `after` kept, in order (each matched by its values)."""
    return [int(np.flatnonzero((before == after[:, [j]]).all(0))[0]) for j in range(after.shape[1])]


def test_pruning_takes_each_dimension_from_the_id_and_the_feature_tables_together(trained) -> None:
    from edgerec.compression.prune import prune

    ck = trained[0]
    model = ck.model
    pruned = prune(model, edgerec.PruneConfig())
    assert isinstance(pruned, FeatureNCF) and pruned.arch.gmf_dim == model.arch.gmf_dim // 2
    for name, table in model.tables().items():
        kept = kept_columns(table.weight.detach().numpy(), pruned.tables()[name].weight.detach().numpy())
        bag = pruned.bags()[name].weight.detach().numpy()
        assert len(kept) < table.embedding_dim and bag.shape[1] == len(kept)
        np.testing.assert_array_equal(bag, model.bags()[name].weight.detach().numpy()[:, kept])
        # so the pruned model's folded rows are the teacher's folded rows in the kept dimensions
        folded = fold(model).tables()[name].weight.detach().numpy()
        np.testing.assert_allclose(fold(pruned).tables()[name].weight.detach().numpy(), folded[:, kept], atol=1e-6)


@pytest.mark.parametrize("folded", [False, True])
def test_pruning_with_data_removes_dead_mlp_channels_before_live_ones(trained, folded: bool) -> None:
    """Half of every hidden layer made dead (a ReLU never positive) with weights larger than the live ones': a
    magnitude criterion alone keeps them and cuts the live ones; with the training data the pruned model keeps
    exactly the live channels, so it scores every pair as the full model does."""
    from torch import nn

    from edgerec.compression.prune import prune

    ck, ds, _, _ = trained
    model = fold(ck.model) if folded else copy.deepcopy(ck.model)
    linears = [x for x in model.mlp if isinstance(x, nn.Linear)]
    nexts = [*linears[1:], None]
    with torch.no_grad():
        for lin, nxt in zip(linears, nexts, strict=True):
            dead = torch.arange(0, lin.out_features, 2)
            lin.weight[dead] *= 100
            lin.bias[dead] = -1e6
            if nxt is not None:
                nxt.weight[:, dead] *= 100
    cfg = edgerec.PruneConfig(mlp=0.5, gmf=0.0, mlp_embedding=0.0)
    u, i = all_pairs(ds.n_users, ds.n_items)
    magnitude, pruned = prune(model, cfg), prune(model, cfg, ds)
    assert pruned.arch.mlp_layers == tuple(x.out_features // 2 for x in linears)
    with torch.no_grad():
        full = model.eval()(u, i)
        assert not torch.allclose(magnitude(u, i), full, atol=1e-3)  # magnitude alone: the live ones cut
        torch.testing.assert_close(pruned(u, i), full, rtol=1e-5, atol=1e-5)


def test_compression_keeps_the_feature_model_and_add_items_works_on_it(trained, tmp_path: Path) -> None:
    """prune -> distill -> int8 of a feature model is a feature model: it carries the encoders, new items are added
    to the compressed checkpoint by their features (its calibration carried for the grown tables), and it exports
    and verifies in ONNX int8."""
    from edgerec.compression.quantize import runtime_model, spec_of
    from edgerec.model.config import fine_tune_config

    ck, ds, _, _ = trained
    cfg = edgerec.CompressConfig(
        prune=edgerec.PruneConfig(), distill=edgerec.DistillConfig(), quantize=edgerec.QuantConfig(),
        train=fine_tune_config(1),
    )  # fmt: skip
    small = edgerec.compress(ck, ds, cfg)
    assert isinstance(small.model, FeatureNCF) and small.model.arch.gmf_dim == ck.model.arch.gmf_dim // 2
    assert small.model.features.encoders == ck.model.features.encoders
    assert {FEATURES_JSON, FEATURES_TENSORS, "quant.json", "quant.safetensors", "compress.json"} <= set(small.files)
    small.save(tmp_path / "small")
    loaded = load(tmp_path / "small")
    assert isinstance(loaded.model, FeatureNCF)
    # evaluate runs the integer simulation of the folded rows: the numbers compress reported for its last step
    assert edgerec.evaluate(loaded, ds).metrics["hr@10"] == small.report["steps"][-1]["metrics"]["hr@10"]

    new = tmp_path / "new.csv"
    new.write_text("item,genres,year,title\n9001,drama|comedy,1990,the film 3 part 1\n9002,western,2020,\n")
    edgerec.add_items(tmp_path / "small", new, tmp_path / "grown")
    grown = load(tmp_path / "grown")
    assert isinstance(grown.model, FeatureNCF) and len(grown.item_ids) == ds.n_items + 2
    assert {"quant.json", "quant.safetensors", "compress.json"} <= set(grown.files)
    assert spec_of(grown) == spec_of(loaded) and grown.config["compression"] == loaded.config["compression"]
    encoded = loaded.model.features.encoders["item"].encode_ids(read_features(new, "item"), np.array([9001, 9002]))
    want = add_ids(loaded.model, "item", encoded)  # the compressed model's feature path
    u = torch.arange(ds.n_users).repeat_interleave(ds.n_items + 2)
    i = torch.arange(ds.n_items + 2).repeat(ds.n_users)
    with torch.no_grad():
        torch.testing.assert_close(grown.model(u, i), want(u, i), rtol=0, atol=0)
        # quantized as it runs: the known items' rows are untouched, the new ones are folded rows like any other
        q_grown, q_small = runtime_model(grown)(u, i), runtime_model(loaded)
        known = i < ds.n_items
        torch.testing.assert_close(q_grown[known], q_small(u[known], i[known]), rtol=0, atol=0)
        fp32 = want(u, i)
        assert (q_grown[~known] - fp32[~known]).abs().max() < 0.1 * fp32[~known].abs().max()
    # the parity bound against the fp32 source, loosened for 150 test users (one user is 0.0067 of HR@10); the
    # artifact's scores are checked against the integer simulation below
    bound = edgerec.ParityBound(hr=0.05)
    export_cfg = edgerec.ExportConfig(target="onnx", precision="int8", tolerance=bound)
    art = edgerec.export(grown, export_cfg, ds, out=tmp_path / "onnx")
    assert art.manifest["n_items"] == ds.n_items + 2 and art.manifest["verification"]["gate"]["passed"]
    got = art.scorer().score(u.numpy(), i.numpy())
    assert np.median(np.abs(got - q_grown.numpy())) < 2e-3  # ONNX stores the row scales in fp16 (test_export's bound)


def placed_by_hand(model: FeatureNCF, encoded, k: int) -> dict[str, np.ndarray]:
    """A new item's representation per item table, by new_rows' rule written out in numpy: its bags alone (k = 0),
    else the cosine-weighted mean of the representations of its k known items nearest in both bags' outputs,
    rescaled to their weighted mean length."""
    bags = {name: bag.weight.detach().numpy().astype(np.float64) for name, bag in model.bags().items()}
    names = sorted(name for name in bags if name.endswith("_item"))
    own = {name: pool(bags[name], encoded)[0] for name in names}
    if not k:
        return own
    known = {name: pool(bags[name], model.features.encoded["item"]) for name in names}
    rep = {name: getattr(model, name).weight.detach().numpy() + known[name] for name in names}
    a = np.concatenate([own[name] for name in names])
    b = np.concatenate([known[name] for name in names], axis=1)
    sims = b @ a / (np.linalg.norm(b, axis=1) * np.linalg.norm(a))
    top = np.argsort(-sims)[:k]
    w = np.clip(sims[top], 0, None) + 1e-6
    w = w / w.sum()
    out = {}
    for name in names:
        mean, length = w @ rep[name][top], w @ np.linalg.norm(rep[name][top], axis=1)
        out[name] = mean * length / np.linalg.norm(mean)  # the mean's direction, the neighbours' mean length
    return out


@pytest.mark.parametrize("k", [0, 3])
def test_new_items_are_placed_by_their_features(trained, tmp_path: Path, k: int) -> None:
    """add_ids places a new item by its bags alone (neighbours 0) or by its k feature neighbours; known items'
    scores stay as they were."""
    ck, ds, _, _ = trained
    model = copy.deepcopy(ck.model)
    model.features = replace(model.features, neighbours={"item": k})
    new = tmp_path / "new.csv"
    new.write_text("item,genres,year,title\n9001,drama|comedy,1990,the film 3 part 1\n9002,western,2020,\n")
    encoder = model.features.encoders["item"]
    encoded = encoder.encode_ids(read_features(new, "item"), np.array([9001, 9002]))
    grown = add_ids(model, "item", encoded)
    assert grown.arch.n_items == ds.n_items + 2 and grown.features.neighbours == {"item": k}
    u = torch.arange(ds.n_users)
    with torch.no_grad():
        known = grown(u.repeat_interleave(3), torch.tensor([0, 1, 2]).repeat(ds.n_users))
        torch.testing.assert_close(known, model(u.repeat_interleave(3), torch.tensor([0, 1, 2]).repeat(ds.n_users)))
        cold = grown(u, torch.full_like(u, ds.n_items))
        reps = model.represent(model.lookup(u, torch.zeros_like(u)), u, torch.zeros_like(u))
        for name, vec in placed_by_hand(model, Encoded(encoded.indices[:1], encoded.weights[:1]), k).items():
            reps[name] = torch.from_numpy(vec).float().expand(len(u), -1)
        torch.testing.assert_close(cold, model.combine(reps), rtol=1e-5, atol=1e-5)


def test_a_new_item_without_feature_values_is_placed_by_its_bags(trained) -> None:
    """No feature values, no neighbours: its id rows stay zero, whatever k (not the mean of k arbitrary items)."""
    ck, _, _, _ = trained
    model = copy.deepcopy(ck.model)
    model.features = replace(model.features, neighbours={"item": 5})
    width = model.features.encoded["item"].indices.shape[1]
    grown = add_ids(model, "item", Encoded(np.zeros((1, width), np.int64), np.zeros((1, width), np.float32)))
    for name, table in grown.tables().items():
        if name.endswith("_item"):
            assert not table.weight[-1].any(), name


def test_a_new_item_with_a_known_items_features_is_placed_on_it(trained) -> None:
    """With one neighbour, a new item whose features are a known item's own is scored as that item by every user."""
    ck, ds, _, _ = trained
    model = copy.deepcopy(ck.model)
    model.features = replace(model.features, neighbours={"item": 1})
    enc = model.features.encoded["item"]
    rows = [tuple(zip(i, w, strict=True)) for i, w in zip(enc.indices.tolist(), enc.weights.tolist(), strict=True)]
    item = next(j for j, r in enumerate(rows) if rows.count(r) == 1 and enc.mask[j].any())  # features its own alone
    grown = add_ids(model, "item", Encoded(enc.indices[item : item + 1], enc.weights[item : item + 1]))
    u = torch.arange(ds.n_users)
    with torch.no_grad():
        torch.testing.assert_close(grown(u, torch.full_like(u, ds.n_items)), model(u, torch.full_like(u, item)))


def test_id_only_checkpoints_are_unchanged(tmp_path: Path) -> None:
    ds = edgerec.dataset(TINY)
    ck = edgerec.train(ds, TrainConfig(factors=4, epochs=1))
    assert type(ck.model) is NCF and ck.files == {} and "features" not in ck.config and "features" not in ck.report
    assert ck.folded() is ck
    ck.save(tmp_path / "ck")
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == [
        "config.json", "id_maps.json", "metrics.json", "model.safetensors"
    ]  # fmt: skip
    assert type(load(tmp_path / "ck").model) is NCF


def test_cli_flags(tmp_path: Path, capsys) -> None:
    from edgerec.cli.train import cold_fit_line

    ds = edgerec.dataset(TINY)
    items, users = feature_files(tmp_path, ds)
    out = tmp_path / "ck"
    args = ["-q", "train", "--data", TINY, "--factors", "4", "--epochs", "1", "--threads", "1", "--out", str(out)]
    # train says what each cold fit kept and how new items will be placed
    assert main([*args[1:], "--item-features", str(items), "--user-features", str(users)]) == 0
    printed, stages = capsys.readouterr().out, load(out).report["stages"]
    k = stages["cold_items"]["kept_neighbours"]
    placement = f"placed by their {k} nearest known items" if k else "placed by their feature bags"
    assert f"cold-item fit: epoch {stages['cold_items']['kept_epoch']} of 3 kept" in printed and placement in printed
    assert "cold-user fit: epoch" in printed and "new users placed by their feature bags" in printed
    assert cold_fit_line("item", {"kept_epoch": 0, "history": []}).startswith("cold-item fit: too few items")
    bags = {"kept_epoch": 1, "history": [{"recall@10": 0.5}], "kept_neighbours": 0, "neighbours": {"0": 0.5}}
    assert cold_fit_line("item", bags).endswith("new items placed by their feature bags")
    assert main([*args, "--item-features", str(items), "--user-features", str(users), "--id-dropout", "0.5"]) == 0
    ck = load(out)
    assert isinstance(ck.model, FeatureNCF) and ck.model.features.id_dropout == 0.5
    assert main([*args, "--item-features", str(items), "--feature-loss", "0.25", "--item-id-dropout", "0.3"]) == 0
    features = load(out).model.features
    assert features.feature_loss == 0.25 and load(out).config["features"]["feature_loss"] == 0.25
    assert (features.dropout("item"), features.dropout("user")) == (0.3, FeaturesConfig(item="x").id_dropout)
    assert main([*args, "--item-features", str(items), "--feature-loss", "-1"]) == 2
    for side, table, epochs, bad in (("item", items, 1, "-1"), ("user", users, 2, "51")):
        flags = [*args, f"--{side}-features", str(table), f"--cold-{side}-epochs"]
        assert main([*flags, str(epochs)]) == 0
        report = load(out).report
        assert len(report["stages"][f"cold_{side}s"]["history"]) == epochs
        assert report["train_config"]["features"][f"cold_{side}_epochs"] == epochs
        assert main([*flags, "0"]) == 0 and f"cold_{side}s" not in load(out).report["stages"]
        assert main([*flags, bad]) == 2
    assert ck.report["train_config"]["features"]["item"] == str(items)
    assert main([*args, "--item-features", str(tmp_path / "absent.csv")]) == 2


def test_pretraining_and_two_processes_train_feature_models(tmp_path: Path) -> None:
    """--pretrain: the GMF and the MLP are feature models, and the NeuMF starts from both towers' bags; --nproc 2:
    every rank encodes the same features and the bags' gradients are averaged like the rest; both give a feature
    checkpoint that learned."""
    ds = edgerec.dataset(TINY)
    items, users = feature_files(tmp_path, ds)
    features = FeaturesConfig(user=str(users), item=str(items))
    torch.set_num_threads(1)
    pre = edgerec.train(ds, TrainConfig(factors=4, epochs=1, pretrain=True, features=features))
    assert isinstance(pre.model, FeatureNCF)
    assert set(pre.report["stages"]) == {"gmf", "mlp", "neumf", "cold_items", "cold_users"}
    assert set(pre.model.bags()) == {"gmf_user", "gmf_item", "mlp_user", "mlp_item"}
    two = edgerec.train(ds, TrainConfig(factors=4, epochs=1, nproc=2, features=features))
    assert isinstance(two.model, FeatureNCF) and two.report["train_config"]["nproc"] == 2
    assert all(two.report["stages"][f"cold_{s}s"]["kept_epoch"] >= 1 for s in ("item", "user"))  # once, after the ranks
    for ck in (pre, two):
        assert ck.metrics["hr@10"] > ck.report["itempop"]["hr@10"] / 2
        assert any(bag.weight.abs().sum() > 0 for bag in ck.model.bags().values())


def test_config_rules() -> None:
    with pytest.raises(ConfigError, match="name a user or an item"):
        FeaturesConfig()
    with pytest.raises(ConfigError, match="id_dropout"):
        FeaturesConfig(item="x.csv", id_dropout=1.0)
    with pytest.raises(ConfigError, match="feature_loss"):
        FeaturesConfig(item="x.csv", feature_loss=11.0)
    with pytest.raises(ConfigError, match="item_id_dropout"):
        FeaturesConfig(item="x.csv", item_id_dropout=1.0)


def test_a_profiles_train_step_is_keyed_by_the_tables_content(tmp_path: Path) -> None:

    from edgerec.profiles.pipeline import plan
    from edgerec.profiles.schema import load_profile

    ds = edgerec.dataset(TINY)
    items = tmp_path / "items.csv"
    items.write_text("item,genre\n1,a\n")
    base = load_profile("onnx-cpu-int8")
    profile = replace(base, train=replace(base.train, features=FeaturesConfig(item=str(items))))
    keys = [plan(profile, ds, None)[0].key]
    items.write_text("item,genre\n1,b\n")
    keys.append(plan(profile, ds, None)[0].key)
    keys.append(plan(base, ds, None)[0].key)
    assert len(set(keys)) == 3


def test_add_items_cli_grows_the_catalog_and_exports(trained, tmp_path: Path, capsys) -> None:
    """`edgerec add-items`: the unknown items of a table scored by their features (as add_ids), the known ones left;
    the grown checkpoint exports and verifies like any other."""
    ck, ds, _, _ = trained
    ck.save(tmp_path / "ck")
    known = ds.train.item_ids[0]
    new = tmp_path / "new.csv"
    new.write_text(f"item,genres,year,title\n9001,drama|comedy,1990,the film 3 part 1\n9002,western,2020,\n"
                   f"{known},drama,1995,a known film\n")  # fmt: skip
    assert (
        main(["-q", "add-items", "--model", str(tmp_path / "ck"), "--items", str(new), "--out", str(tmp_path / "ck2")])
        == 0
    )
    k = ck.model.features.neighbours["item"]
    how = f", each placed by its {k} nearest known items" if k else ""
    assert f"added 2 item(s) by their features{how}; 1 already known" in capsys.readouterr().out
    grown = load(tmp_path / "ck2")
    assert list(grown.item_ids[-2:]) == [9001, 9002] and len(grown.item_ids) == ds.n_items + 2
    lineage = grown.config["lineage"]  # the next version, naming its parent (a rollout's version)
    assert grown.version == lineage["version"] == 2 and lineage["parent_version"] == 1
    assert lineage["parent_weights_sha256"] == ck.weights_sha256 and lineage["change"]["added_items"]["added"] == 2
    encoded = ck.model.features.encoders["item"].encode_ids(read_features(new, "item"), np.array([9001, 9002]))
    want = add_ids(ck.model, "item", encoded)
    u = torch.arange(ds.n_users).repeat_interleave(2)
    i = torch.tensor([ds.n_items, ds.n_items + 1]).repeat(ds.n_users)
    with torch.no_grad():
        torch.testing.assert_close(grown.model(u, i), want(u, i), rtol=0, atol=0)
    art = edgerec.export(grown, edgerec.ExportConfig(target="onnx"), ds, out=tmp_path / "onnx")
    assert art.manifest["n_items"] == ds.n_items + 2
    for args, words in (
        (["--items", str(new)], "no item features"),  # an id-only model
        (["--items", str(tmp_path / "none.csv")], "none.csv"),
    ):
        model = str(tmp_path / "plain") if words == "no item features" else str(tmp_path / "ck")
        if words == "no item features":
            edgerec.train(ds, TrainConfig(factors=4, epochs=1)).save(tmp_path / "plain")
        assert main(["-q", "add-items", "--model", model, *args, "--out", str(tmp_path / "bad")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], err
        assert not (tmp_path / "bad").exists()


def test_add_users_gives_new_users_vectors_from_their_features(trained, tmp_path: Path, capsys) -> None:
    """`edgerec add-users`: a user with no history but known features gets the feature path's vectors."""
    ck, ds, _, _ = trained
    ck.save(tmp_path / "ck")
    new = tmp_path / "users.tsv"
    new.write_text("user\tgroup\n77001\ta\n77002\tc\n")
    args = ["-q", "add-users", "--model", str(tmp_path / "ck"), "--users", str(new), "--out", str(tmp_path / "ck2")]
    assert main(args) == 0
    assert "added 2 user(s) by their features" in capsys.readouterr().out
    grown = load(tmp_path / "ck2")
    assert list(grown.user_ids[-2:]) == [77001, 77002] and len(grown.user_ids) == ds.n_users + 2
    encoded = ck.model.features.encoders["user"].encode_ids(read_features(new, "user"), np.array([77001, 77002]))
    want = add_ids(ck.model, "user", encoded)
    u = torch.tensor([ds.n_users, ds.n_users + 1]).repeat_interleave(ds.n_items)
    i = torch.arange(ds.n_items).repeat(2)
    with torch.no_grad():
        got = grown.model(u, i)
        torch.testing.assert_close(got, want(u, i), rtol=0, atol=0)
        assert not torch.equal(got[: ds.n_items], got[ds.n_items :])  # different features, different vectors
    rec = edgerec.recommend(tmp_path / "ck2", user="77001", k=5)
    assert len(rec.items) == 5


def test_new_items_reach_a_phone_bundle_by_a_delta(trained, tmp_path: Path) -> None:
    """add-items grows the bundle's item tables (a new layout): the delta is a zstd patch against the phone's bundle,
    a small share of the model, and the patched bundle scores the new items as the grown checkpoint's export."""
    from edgerec.runtime import load_bundle

    ck, ds, _, _ = trained
    ck.save(tmp_path / "ck")
    new = tmp_path / "new.csv"
    new.write_text("item,genres,year,title\n9001,drama|comedy,1990,the film 3 part 1\n9002,horror,1985,\n")
    edgerec.add_items(tmp_path / "ck", new, tmp_path / "ck2")
    cfg = edgerec.ExportConfig(target="tflite-bundle")
    b1 = edgerec.export(tmp_path / "ck", cfg, ds, out=tmp_path / "b1").folder
    b2 = edgerec.export(tmp_path / "ck2", cfg, ds, out=tmp_path / "b2").folder
    record = edgerec.delta(b1, b2, tmp_path / "delta")
    assert record["encoding"] == "zstd-patch" and record["patch_bytes"] < 0.2 * record["model_bytes"]
    assert "user_encoder.json" in record["keep"] and "id_maps.json" in record["files"]  # unchanged: the device's own
    phone = tmp_path / "phone"
    phone.mkdir()
    for name in json.loads((b1 / "manifest.json").read_text())["bundle_files"]:  # what an app ships
        shutil.copyfile(b1 / name, phone / name)
    assert edgerec.apply_delta(phone, tmp_path / "delta", phone)["version"] == 2
    got, want = load_bundle(phone), load_bundle(b2)
    d = json.loads((b2 / "manifest.json").read_text())["user_vector_dims"]["gmf"]
    for vec in np.load(b2 / "user_vectors.npy")[:20]:
        fresh = np.array([ds.n_items, ds.n_items + 1])
        np.testing.assert_array_equal(
            got.score_items(vec[:d], vec[d:], fresh), want.score_items(vec[:d], vec[d:], fresh)
        )
    assert json.loads((phone / "id_maps.json").read_text())["items"][-2:] == [9001, 9002]
