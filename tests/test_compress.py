from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import edgerec
from edgerec import metrics
from edgerec.compression.config import CompressConfig, DistillConfig, PrecisionPlan, PruneConfig
from edgerec.compression.distill import distill, distillation_loss
from edgerec.compression.gate import StepReport, compare
from edgerec.compression.prune import prune
from edgerec.compression.size import macs_per_item, model_bytes
from edgerec.data import load_dataset
from edgerec.errors import ConfigError, EdgerecError, GateFailed
from edgerec.gates import DropTolerance
from edgerec.metrics import item_pop_scorer
from edgerec.model.checkpoint import Checkpoint
from edgerec.model.config import TrainConfig
from edgerec.model.ncf import NCF, NCFArch
from edgerec.model.training import fit, torch_scorer


def neumf8() -> NCF:
    torch.manual_seed(0)
    return NCF(NCFArch.paper("neumf", 6040, 3706, 8))


def test_half_pruning_gives_the_documented_shapes_and_parameter_count() -> None:
    p = prune(neumf8(), PruneConfig(mlp=0.5, gmf=0.5, mlp_embedding=0.5))
    assert (p.arch.gmf_dim, p.arch.mlp_user_dim, p.arch.mlp_item_dim, p.arch.mlp_layers) == (4, 16, 16, (16, 8, 4))
    assert sum(x.numel() for x in p.parameters()) == 195_629  # DESIGN.md: NeuMF-8 392,601 -> 195,629
    assert macs_per_item(p.arch) == 32 * 16 + 16 * 8 + 8 * 4 + 8


def test_per_component_ratios_and_extreme_ratios_keep_one_channel() -> None:
    p = prune(neumf8(), PruneConfig(mlp=0.0, gmf=0.75, mlp_embedding=0.0))
    assert (p.arch.gmf_dim, p.arch.mlp_user_dim, p.arch.mlp_layers) == (2, 32, (32, 16, 8))
    q = prune(neumf8(), PruneConfig(mlp=0.99, gmf=0.99, mlp_embedding=0.99))
    assert min(q.arch.gmf_dim, q.arch.mlp_user_dim, *q.arch.mlp_layers) == 1


def test_iterative_pruning_reaches_the_one_shot_widths_in_equal_steps() -> None:
    cfg = PruneConfig.uniform(0.5, steps=2)
    first, second = cfg.step(1), cfg.step(2)
    assert (first.mlp, first.steps) == (0.25, 1) and math.isclose(second.gmf, 1 / 3)
    p = prune(prune(neumf8(), first), second)
    assert p.arch == prune(neumf8(), PruneConfig.uniform(0.5)).arch


def test_iterative_pruning_distils_after_every_step() -> None:
    torch.set_num_threads(1)
    ds = load_dataset("synthetic:users=120,items=120,seed=3")
    torch.manual_seed(0)
    teacher = Checkpoint.create(NCF(NCFArch.paper("neumf", ds.n_users, ds.n_items, 8)), ds, report={})
    cfg = CompressConfig(
        prune=PruneConfig.uniform(0.5, steps=2),
        distill=DistillConfig(),
        train=TrainConfig(epochs=1, batch_size=512, patience=1),
    )
    small = edgerec.compress(teacher, ds, cfg)
    steps = small.report["steps"]
    assert [r["step"] for r in steps] == ["prune 1/2", "distill 1/2", "prune 2/2", "distill"]
    assert small.model.arch.mlp_layers == (16, 8, 4)
    assert steps[1]["bytes"] > steps[2]["bytes"] == steps[3]["bytes"]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"mlp": 1.0}, "field `mlp`: Input should be less than 1"),
        ({"gmf": -0.1}, "field `gmf`: Input should be greater than or equal to 0"),
        ({"importance": "magic"}, "field `importance`: Input should be 'l1', 'l2', 'taylor' or 'random'"),
        ({"steps": 0}, "field `steps`: Input should be greater than or equal to 1"),
    ],
)
def test_bad_prune_settings_are_refused(bad: dict, message: str) -> None:
    # refused when the config is built, before any model is touched
    with pytest.raises(ConfigError, match=f"^PruneConfig: {message}"):
        PruneConfig(**bad)


@pytest.mark.parametrize("importance", ["l1", "l2"])
def test_pruned_model_scores_exactly_like_its_masked_twin(importance: str) -> None:
    """Zero half of every prunable channel group; magnitude pruning must remove exactly those, so the pruned
    model computes the same scores as the masked full model."""
    torch.manual_seed(1)
    m = NCF(NCFArch.paper("neumf", 50, 60, 8))
    linears = [x for x in m.mlp if isinstance(x, nn.Linear)]
    with torch.no_grad():
        dead = torch.arange(0, 8, 2)  # GMF dims 0, 2, 4, 6
        m.gmf_user.weight[:, dead] = 0
        m.gmf_item.weight[:, dead] = 0
        m.predict.weight[:, dead] = 0
        for emb, offset in ((m.mlp_user, 0), (m.mlp_item, 32)):
            cols = torch.arange(1, 32, 2)
            emb.weight[:, cols] = 0
            linears[0].weight[:, offset + cols] = 0
        for k, lin in enumerate(linears):
            rows = torch.arange(0, lin.out_features, 2)
            lin.weight[rows] = 0
            lin.bias[rows] = 0
            nxt = linears[k + 1] if k + 1 < len(linears) else None
            if nxt is not None:
                nxt.weight[:, rows] = 0
            else:
                m.predict.weight[:, 8 + rows] = 0
    p = prune(m, PruneConfig(mlp=0.5, gmf=0.5, mlp_embedding=0.5, importance=importance))
    u, i = torch.arange(50).repeat(3), torch.arange(150) % 60
    torch.testing.assert_close(p(u, i), m(u, i), rtol=1e-5, atol=1e-6)
    assert p.arch.mlp_layers == (16, 8, 4)


def test_taylor_importance_needs_and_uses_data() -> None:
    ds = load_dataset("synthetic:users=120,items=130,seed=1")
    m = NCF(NCFArch.paper("neumf", ds.n_users, ds.n_items, 8))
    with pytest.raises(EdgerecError, match="needs training data"):
        prune(m, PruneConfig(importance="taylor"))
    assert prune(m, PruneConfig(importance="taylor"), ds).arch.gmf_dim == 4


def test_distillation_loss_on_a_tiny_case() -> None:
    s, t = torch.tensor([0.0, 2.0]), torch.tensor([0.0, -2.0])
    # T = 1: mean of BCE(sigmoid(s), sigmoid(t)); first pair p = q = 0.5 -> ln 2; second p = sig(2), q = sig(-2)
    q = 1 / (1 + math.exp(2))
    second = -(q * math.log(1 / (1 + math.exp(-2))) + (1 - q) * math.log(1 / (1 + math.exp(2))))
    assert distillation_loss(s, t, 1.0).item() == pytest.approx((math.log(2) + second) / 2, rel=1e-6)
    # T = 2 scales logits by 1/2 and the loss by 4
    q2 = 1 / (1 + math.exp(1))
    second2 = -(q2 * math.log(1 / (1 + math.exp(-1))) + (1 - q2) * math.log(1 / (1 + math.exp(1))))
    assert distillation_loss(s, t, 2.0).item() == pytest.approx(4 * (math.log(2) + second2) / 2, rel=1e-6)
    # the gradient vanishes where the student equals the teacher
    x = t.clone().requires_grad_(True)
    distillation_loss(x, t, 3.0).backward()
    assert torch.allclose(x.grad, torch.zeros(2), atol=1e-7)


def test_distilled_student_moves_towards_its_teacher() -> None:
    torch.set_num_threads(1)
    ds = load_dataset("synthetic:users=300,items=200,seed=3")
    cfg = TrainConfig(epochs=3, batch_size=512, lr=5e-3, patience=3)
    teacher = fit(NCF(NCFArch.paper("neumf", ds.n_users, ds.n_items, 8)), ds, cfg).model
    arch = NCFArch.paper("neumf", ds.n_users, ds.n_items, 4, (16, 8, 4))
    torch.manual_seed(5)
    plain = fit(NCF(arch), ds, cfg).model
    torch.manual_seed(5)
    student = distill(NCF(arch), teacher, ds, DistillConfig(weight=2.0, rank_k=10, rank_weight=0.2), cfg).model
    u, i = np.repeat(np.arange(ds.n_users), 20), np.tile(np.arange(20), ds.n_users)
    t = torch_scorer(teacher)(u, i)
    err_plain = np.abs(torch_scorer(plain)(u, i) - t).mean()
    err_student = np.abs(torch_scorer(student)(u, i) - t).mean()
    assert err_student < err_plain


def test_bytes_per_precision_plan() -> None:
    m = NCF(NCFArch.paper("neumf", 6040, 3706, 8))
    fp32 = model_bytes(m)
    assert fp32 == 392_601 * 4
    assert model_bytes(m, PrecisionPlan(embeddings="fp16", mlp="fp16")) == 392_601 * 2
    int8 = model_bytes(m, PrecisionPlan(embeddings="int8", mlp="int8"))
    rows = 2 * (6040 + 3706)
    assert int8 == (9746 * 40) + rows * 4 + (64 * 32 + 32 * 16 + 16 * 8 + 16) + 8 * (32 + 16 + 8 + 1)
    assert int8 / fp32 < 0.30
    assert model_bytes(m, PrecisionPlan(embeddings="int4", mlp="int8")) < int8
    with pytest.raises(
        ConfigError, match="PrecisionPlan: field `embeddings`: Input should be 'fp32', 'fp16', 'int8' or 'int4'"
    ):
        model_bytes(m, PrecisionPlan(embeddings="int2", mlp="fp32"))


def test_gate_fails_with_a_one_line_reason_and_passes_within_tolerance() -> None:
    ds = load_dataset("synthetic:users=150,items=140,seed=2")
    pop = item_pop_scorer(ds)
    reversed_pop = lambda u, i: -pop(u, i)  # noqa: E731  (recommends the least popular items: clearly worse)
    rep = compare("noise", reversed_pop, pop, ds, sizes=(10, 20), macs=(1, 2))
    assert isinstance(rep, StepReport) and 0 <= rep.agreement < 1
    assert rep.to_json()["size_ratio"] == 0.5
    same = compare("same", pop, pop, ds, sizes=(20, 20), macs=(2, 2))
    assert same.agreement == 1.0 and same.deltas["hr@10"] == 0.0
    same.gate(DropTolerance(hr=0.0, ndcg=0.0, agreement=1.0))
    assert rep.deltas["hr@10"] < -0.1
    with pytest.raises(GateFailed, match=r"^noise: HR@10 fell by") as e:
        rep.gate(DropTolerance(hr=0.05))
    assert e.value.report is rep  # the refused step's numbers travel with the error
    rep.gate(DropTolerance(hr=1.0))  # a loose tolerance passes
    with pytest.raises(GateFailed, match=r"^noise: top-10 agreement with the reference is") as e:
        rep.gate(DropTolerance(hr=None, agreement=0.99))
    assert e.value.report is rep


def test_agreement_is_measured_on_full_rankings_sample_beyond_its_size(monkeypatch) -> None:
    ds = load_dataset("synthetic:users=150,items=140,seed=2")
    pop = item_pop_scorer(ds)
    reversed_pop = lambda u, i: -pop(u, i)  # noqa: E731
    assert compare("all", reversed_pop, pop, ds, sizes=(1, 1), macs=(1, 1)).agreement_users == ds.n_users
    monkeypatch.setattr(metrics, "FULL_PAIRS", 50 * ds.n_items)  # full ranking (and agreement) on 50 test users
    monkeypatch.setattr(metrics, "MIN_FULL_USERS", 10)
    users = metrics.agreement_users(ds)
    assert users is not None and len(users) == 50 and set(users) <= set(ds.test_users)
    rep = compare("sample", reversed_pop, pop, ds, sizes=(1, 1), macs=(1, 1))
    expected = metrics.jaccard(
        metrics.catalog_top_k(reversed_pop, ds, users=users), metrics.catalog_top_k(pop, ds, users=users)
    )
    assert rep.agreement_users == 50 and rep.agreement == expected
