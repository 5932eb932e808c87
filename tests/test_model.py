from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import edgerec
from edgerec.data import load_dataset
from edgerec.errors import EdgerecError
from edgerec.metrics import evaluate, hr_ndcg, item_pop_scorer, sampled_ranks
from edgerec.model.checkpoint import Checkpoint, load
from edgerec.model.config import TrainConfig
from edgerec.model.ncf import NCF, NCFArch, neumf_from_pretrained
from edgerec.model.training import Callback, FitOptions, fit, torch_scorer, validation_split


def test_paper_shorthand_gives_the_design_parameter_count() -> None:
    arch = NCFArch.paper("neumf", 6040, 3706, 8, (64, 32, 16, 8))
    assert (arch.gmf_dim, arch.mlp_user_dim, arch.mlp_layers) == (8, 32, (32, 16, 8))
    assert sum(p.numel() for p in NCF(arch).parameters()) == 392_601  # DESIGN.md's NeuMF-8 on ML-1M
    assert NCFArch.paper("neumf", 10, 10, 64).mlp_layers == (256, 128, 64)


@pytest.mark.parametrize("bad", [(63, 32), (64,), (64, 0)])
def test_bad_layers_are_refused(bad: tuple[int, ...]) -> None:
    with pytest.raises(EdgerecError, match="layers must be"):
        NCFArch.paper("neumf", 10, 10, 8, bad)


def test_neumf_from_pretrained_mixes_the_two_towers_half_and_half() -> None:
    torch.manual_seed(0)
    gmf = NCF(NCFArch.paper("gmf", 20, 30, 4))
    mlp = NCF(NCFArch.paper("mlp", 20, 30, 4))
    neu = neumf_from_pretrained(gmf, mlp)
    u, i = torch.arange(20), torch.arange(20) % 30
    # the NeuMF logit is the mean of the two logits, exactly
    torch.testing.assert_close(neu(u, i), 0.5 * (gmf(u, i) + mlp(u, i)))


def test_checkpoint_round_trip_and_integrity_checks(tmp_path: Path) -> None:
    ds = load_dataset("synthetic:users=120,items=130,seed=1")
    model = NCF(NCFArch.paper("neumf", ds.n_users, ds.n_items, 4, (16, 8, 4)))
    out = Checkpoint.create(model, ds, report={"metrics": {"hr@10": 0.5}}).save(tmp_path / "ck")
    assert out == tmp_path / "ck"
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "id_maps.json", "metrics.json", "model.safetensors"]
    ck = load(out)
    assert ck.align(ds) is ds  # the same id maps: the data as it is
    u, i = torch.arange(50), torch.arange(50)
    torch.testing.assert_close(ck.model(u, i), model(u, i), rtol=0, atol=0)
    assert ck.metrics == {"hr@10": 0.5} and ck.model.arch == model.arch

    raw = bytearray((out / "model.safetensors").read_bytes())
    raw[-1] ^= 1
    (out / "model.safetensors").write_bytes(raw)
    with pytest.raises(EdgerecError, match="sha256 does not match"):
        load(out)


def test_pruned_architecture_is_recorded_and_loads_without_constructor_arguments(tmp_path: Path) -> None:
    ds = load_dataset("synthetic:users=120,items=130,seed=1")
    arch = NCFArch("neumf", ds.n_users, ds.n_items, gmf_dim=3, mlp_user_dim=5, mlp_item_dim=7, mlp_layers=(6, 2))
    Checkpoint.create(NCF(arch), ds, report={}).save(tmp_path / "ck")
    assert load(tmp_path / "ck").model.arch == arch


def test_pickle_files_are_refused(tmp_path: Path) -> None:
    torch.save({"x": torch.zeros(1)}, tmp_path / "model.pt")
    with pytest.raises(EdgerecError, match="refusing a pickled file"):
        load(tmp_path / "model.pt")
    with pytest.raises(EdgerecError, match=r"model.pt, which is pickled and is never loaded"):
        load(tmp_path)


def test_config_json_that_lies_about_shapes_is_refused(tmp_path: Path) -> None:
    ds = load_dataset("synthetic:users=120,items=130,seed=1")
    Checkpoint.create(NCF(NCFArch.paper("gmf", ds.n_users, ds.n_items, 4)), ds, report={}).save(tmp_path / "ck")
    cfg = json.loads((tmp_path / "ck" / "config.json").read_text())
    cfg["arch"]["gmf_dim"] = 5
    (tmp_path / "ck" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(EdgerecError, match="do not match the architecture"):
        load(tmp_path / "ck")


def test_training_beats_itempop_on_synthetic_and_is_reproducible() -> None:
    torch.set_num_threads(1)
    ds = load_dataset("synthetic:users=400,items=200,seed=2")
    cfg = TrainConfig(model="neumf", factors=8, epochs=6, batch_size=512, lr=5e-3, patience=6)
    ck = edgerec.train(ds, cfg)
    report = ck.report
    pop = evaluate(item_pop_scorer(ds), ds)
    assert report["itempop"] == pop  # the report measures ItemPop beside the model
    assert ck.metrics == report["metrics"]
    assert report["metrics"]["hr@10"] > pop["hr@10"] + 0.03
    assert report["metrics"]["full_hr@10"] > pop["full_hr@10"]
    ck2 = edgerec.train(ds, cfg)
    assert ck2.report["metrics"]["hr@10"] == report["metrics"]["hr@10"]
    u, i = np.arange(100), np.arange(100) % ds.n_items
    np.testing.assert_array_equal(torch_scorer(ck.model)(u, i), torch_scorer(ck2.model)(u, i))
    assert ck.weights_sha256 == ck2.weights_sha256


def test_l2_shrinks_the_embeddings_and_fine_tuning_recipes_leave_it_off() -> None:
    from edgerec.model.config import fine_tune_config
    from edgerec.updates.config import UpdateConfig

    torch.set_num_threads(1)
    ds = load_dataset("synthetic:users=200,items=150,seed=2")
    norms = {}
    for l2 in (0.0, 0.05):
        torch.manual_seed(0)
        res = fit(NCF(NCFArch.paper("neumf", ds.n_users, ds.n_items, 4)), ds, TrainConfig(epochs=1, l2=l2))
        norms[l2] = sum(float(t.weight.detach().pow(2).sum()) for t in res.model.tables().values())
    assert norms[0.05] < 0.8 * norms[0.0]  # 0.68 measured after one epoch
    assert TrainConfig().l2 > 0
    assert fine_tune_config(3).l2 == 0.0 and UpdateConfig().train_config().l2 == 0.0


def test_l2_gradient_added_by_fit_equals_the_gradient_of_the_penalty() -> None:
    from edgerec.model.row_grads import RowGrads, add_l2_grad

    torch.manual_seed(0)
    model = NCF(NCFArch.paper("neumf", 30, 40, 4, (16, 8, 4)))
    u, i, y = torch.randint(0, 30, (64,)), torch.randint(0, 40, (64,)), (torch.rand(64) < 0.3).float()
    l2 = 0.01
    grads = []
    for in_loss in (True, False):
        rows = RowGrads(model).gather(u, i)  # the rows fit trains: leaf tensors of the batch's table rows
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model.combine(rows), y)
        if in_loss:
            loss = loss + l2 * sum(r.pow(2).sum(dim=-1).mean() for r in rows.values())
        loss.backward()
        if not in_loss:
            add_l2_grad(rows, l2)
        grads.append({n: r.grad for n, r in rows.items()})
    for n in grads[0]:
        torch.testing.assert_close(grads[1][n], grads[0][n])


def test_pretraining_trains_gmf_and_mlp_first() -> None:
    ds = load_dataset("synthetic:users=200,items=150,seed=2")
    cfg = TrainConfig(model="neumf", factors=4, pretrain=True, epochs=2, batch_size=1024, patience=2)
    report = edgerec.train(ds, cfg).report
    assert list(report["stages"]) == ["gmf", "mlp", "neumf"]
    assert report["train_config"]["optimizer"] == "sgd"


def test_row_gradients_equal_autograds_dense_embedding_gradients() -> None:
    from edgerec.model.row_grads import RowGrads

    torch.manual_seed(0)
    model = NCF(NCFArch.paper("neumf", 30, 40, 4, (16, 8, 4)))
    rg = RowGrads(model)
    for step in range(3):  # later steps exercise the clearing of the previous step's rows
        u, i = torch.randint(0, 30, (64,)), torch.randint(0, 40, (64,))
        y = (torch.rand(64) < 0.3).float()
        model.zero_grad(set_to_none=True)
        torch.nn.functional.binary_cross_entropy_with_logits(model(u, i), y).backward()
        expected = {n: t.weight.grad.clone() for n, t in model.tables().items()}
        model.zero_grad(set_to_none=True)
        rows = rg.gather(u, i)
        torch.nn.functional.binary_cross_entropy_with_logits(model.combine(rows), y).backward()
        rg.scatter()
        for n, t in model.tables().items():
            torch.testing.assert_close(t.weight.grad, expected[n], rtol=1e-5, atol=1e-8, msg=f"{n} step {step}")


def test_lazy_adam_moves_only_the_rows_a_batch_touched_and_trains_as_well() -> None:
    """lazy-adam (issue 22): the tables get sparse row gradients equal to autograd's, SparseAdam moves only those
    rows (dense Adam keeps moving every row on its momentum), and on the synthetic data it trains like Adam."""
    from edgerec.errors import ConfigError
    from edgerec.model.row_grads import RowGrads, optimizers

    torch.manual_seed(0)
    model = NCF(NCFArch.paper("neumf", 30, 40, 4, (16, 8, 4)))
    cfg = TrainConfig(optimizer="lazy-adam", batch_size=64, lr=0.01)
    opts = optimizers(model, cfg)
    assert [type(o).__name__ for o in opts] == ["SparseAdam", "Adam"]
    rg = RowGrads(model, sparse=True)
    for step in range(3):
        u, i = torch.randint(0, 15, (64,)), torch.randint(0, 20, (64,))  # rows 15.. / 20.. never touched
        y = (torch.rand(64) < 0.3).float()
        model.zero_grad(set_to_none=True)
        torch.nn.functional.binary_cross_entropy_with_logits(model(u, i), y).backward()
        expected = {n: t.weight.grad.clone() for n, t in model.tables().items()}
        before = {n: t.weight.detach().clone() for n, t in model.tables().items()}
        for o in opts:
            o.zero_grad(set_to_none=True)
        torch.nn.functional.binary_cross_entropy_with_logits(model.combine(rg.gather(u, i)), y).backward()
        rg.scatter()
        for n, t in model.tables().items():
            torch.testing.assert_close(t.weight.grad.to_dense(), expected[n], rtol=1e-5, atol=1e-8)
        for o in opts:
            o.step()
        for n, t in model.tables().items():
            untouched = 15 if n.endswith("_user") else 20
            assert torch.equal(t.weight[untouched:], before[n][untouched:]), (n, step)
            assert not torch.equal(t.weight[:untouched], before[n][:untouched])
    with pytest.raises(ConfigError, match="lazy-adam trains in one process"):
        TrainConfig(optimizer="lazy-adam", nproc=2)
    ds = load_dataset("synthetic")
    lazy = edgerec.train(ds, TrainConfig(optimizer="lazy-adam", epochs=6)).report["metrics"]["hr@10"]
    dense = edgerec.train(ds, TrainConfig(epochs=6)).report["metrics"]["hr@10"]
    assert lazy > dense - 0.02, (lazy, dense)


def test_weight_averaging_returns_the_mean_of_the_epoch_end_weights() -> None:
    torch.set_num_threads(1)
    ds = load_dataset("synthetic:users=200,items=150,seed=3")
    torch.manual_seed(0)
    model = NCF(NCFArch.paper("neumf", ds.n_users, ds.n_items, 4, (16, 8, 4)))
    snapshots = {0: {k: v.clone() for k, v in model.state_dict().items()}}

    def after_epoch(stage: str, done: int, total: int, info: dict) -> None:
        if done == total:  # the epoch's last step: the model holds this epoch's weights
            snapshots[info["epoch"]] = {k: v.clone() for k, v in model.state_dict().items()}

    class Averaged(Callback):
        def __init__(self) -> None:
            self.epochs: list[tuple[int, bool]] = []

        def on_epoch_end(self, epoch: int, trained: NCF, candidate: NCF) -> None:
            self.epochs.append((epoch, candidate is not trained))

    averaged = Averaged()
    cfg = TrainConfig(epochs=5, batch_size=256, lr=5e-3, patience=5, average_from=3)
    res = fit(model, ds, cfg, FitOptions(progress=after_epoch, callbacks=(averaged,)))
    assert [h.epoch for h in res.history] == [1, 2, 3, 4, 5]
    assert averaged.epochs == [(1, False), (2, False), (3, True), (4, True), (5, True)]  # the candidate: the mean
    best = res.best_epoch
    assert best > 3  # validation still improves on this data, so the kept model is a mean of several epochs
    for k, v in res.model.state_dict().items():
        mean = torch.stack([snapshots[e][k] for e in range(3, best + 1)]).mean(dim=0)
        torch.testing.assert_close(v, mean, rtol=1e-5, atol=1e-7, msg=k)
        assert not torch.equal(v, snapshots[best][k]) or k.endswith("bias")
    # the averaged candidate is what was validated: re-validating the returned model gives the logged NDCG
    val = validation_split(ds, cfg.seed)
    assert hr_ndcg(sampled_ranks(torch_scorer(res.model), val))[1] == pytest.approx(res.history[best - 1].val_ndcg)


def test_validation_items_are_never_sampled_as_negatives(monkeypatch: pytest.MonkeyPatch) -> None:
    import edgerec.model.batches as batches

    ds = load_dataset("synthetic:users=100,items=120,seed=4")
    val = validation_split(ds, 0)
    seen: list[np.ndarray] = []
    real = batches.sample_negatives

    def spy(users: np.ndarray, n_items: int, neg: int, known: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        negs = real(users, n_items, neg, known, rng)
        seen.append(users[:, None].astype(np.int64) * n_items + negs)
        return negs

    monkeypatch.setattr(batches, "sample_negatives", spy)
    fit(NCF(NCFArch.paper("gmf", ds.n_users, ds.n_items, 4)), ds, TrainConfig(epochs=2, batch_size=512))
    val_keys = val.test_users * ds.n_items + val.test_items
    assert len(val_keys) > 50 and seen
    assert not np.isin(np.concatenate([s.ravel() for s in seen]), val_keys).any()


def test_the_automatic_batch_and_rate() -> None:
    from edgerec.model.config import auto_batch, auto_lr, resolved

    assert auto_batch(60_000) == 256 and auto_lr(256) == pytest.approx(2e-3)  # small data: the paper's batch
    assert auto_batch(988_000 * 5) == 16_384 and auto_lr(16_384) == pytest.approx(1.6e-2)  # ML-1M
    assert auto_batch(20_000_000 * 5) == 16_384  # capped at the largest measured batch
    cfg = resolved(TrainConfig(), 988_000)
    assert (cfg.batch_size, cfg.lr) == (16_384, pytest.approx(1.6e-2))
    assert resolved(TrainConfig(batch_size=512, lr=1e-3), 988_000) == TrainConfig(batch_size=512, lr=1e-3)


def test_training_records_the_batch_and_rate_it_used() -> None:
    import edgerec

    ck = edgerec.train("synthetic:users=300,items=180,seed=3", TrainConfig(epochs=1))
    used = ck.report["train_config"]
    assert (used["batch_size"], used["lr"]) == (256, pytest.approx(2e-3))
