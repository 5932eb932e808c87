"""The rating objective (squared error on a seeded 90/10 split of the rated rows), MLP dropout and Adagrad."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import edgerec
from edgerec import api
from edgerec.cli.main import main
from edgerec.compression.config import CompressConfig, QuantConfig
from edgerec.data import load_dataset
from edgerec.data.ratings import TEST_SHARE, rated_rows, split_ratings
from edgerec.errors import ConfigError, EdgerecError
from edgerec.model.config import TrainConfig
from edgerec.model.ncf import NCF, NCFArch
from edgerec.model.row_grads import RowGrads, add_l2_grad, optimizers


def rated_csv(path: Path, users: int = 200, items: int = 160, per_user: int = 30, seed: int = 0) -> Path:
    """Ratings 1..5 from user and item biases plus a rank-3 interaction (learnable, far from constant)."""
    rng = np.random.default_rng(seed)
    ub, ib = rng.normal(0, 0.5, users), rng.normal(0, 0.5, items)
    p, q = rng.normal(0, 0.7, (users, 3)), rng.normal(0, 0.7, (items, 3))
    lines = ["user,item,rating"]
    for u in range(users):
        for i in rng.choice(items, per_user, replace=False):
            r = np.clip(np.rint(3.5 + ub[u] + ib[i] + p[u] @ q[i] + rng.normal(0, 0.3)), 1, 5)
            lines.append(f"u{u},i{i},{int(r)}")
    path.write_text("\n".join(lines) + "\n")
    return path


RATING = TrainConfig(objective="rating", factors=4, epochs=10, batch_size=128, lr=0.01)


def test_the_rating_split_covers_every_rated_row_once_and_follows_the_seed(tmp_path: Path) -> None:
    ds = load_dataset(rated_csv(tmp_path / "r.csv"))
    rows = rated_rows(ds)
    assert len(rows) == 200 * 30 == len(ds.train) + len(ds.test_users)  # the held-out test rows are rows too
    split = split_ratings(ds, 0)
    keys = [s.users * ds.n_items + s.items for s in (split.train, split.val, split.test)]
    assert sum(len(k) for k in keys) == len(rows) == len(np.unique(np.concatenate(keys)))
    assert len(split.test) == round(TEST_SHARE * len(rows))
    assert np.array_equal(split_ratings(ds, 0).test.users, split.test.users)
    assert not np.array_equal(split_ratings(ds, 1).test.items, split.test.items)


def test_the_rating_objective_beats_the_global_mean_and_evaluate_measures_the_same_rows(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    data = rated_csv(tmp_path / "r.csv")
    ck = edgerec.train(data, RATING)
    m, mean = ck.report["metrics"], ck.report["global_mean"]
    assert m["test_ratings"] == m["ratings"] == 600
    assert m["rmse"] < 0.75 * mean["rmse"] and m["mae"] < 0.75 * mean["mae"], (m, mean)
    assert all("val_rmse" in h and "val_hr" not in h for h in ck.report["stages"]["neumf"]["history"])
    ck.save(tmp_path / "ck")
    assert json.loads((tmp_path / "ck" / "config.json").read_text())["objective"] == "rating"
    ev = api.evaluate(tmp_path / "ck", data)
    assert ev.baseline == "global mean" and ev.metrics["rmse"] == pytest.approx(m["rmse"], rel=1e-5)
    assert ev.to_json()["global_mean"]["rmse"] == pytest.approx(mean["rmse"])
    with pytest.raises(EdgerecError, match="held-out rows of the data it was trained on"):
        api.evaluate(tmp_path / "ck", rated_csv(tmp_path / "other.csv", seed=1))


def test_a_rating_model_is_refused_where_an_implicit_score_is_needed(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    data = rated_csv(tmp_path / "r.csv")
    ck = edgerec.train(data, TrainConfig(objective="rating", factors=4, epochs=1))
    ck.save(tmp_path / "ck")
    with pytest.raises(EdgerecError, match=r"outputs a predicted rating.*compression, export and updating"):
        edgerec.load_checkpoint(tmp_path / "ck").folded()  # what export reads
    compress = lambda: edgerec.compress(tmp_path / "ck", data, CompressConfig(quantize=QuantConfig()))  # noqa: E731
    for verb in (compress, lambda: edgerec.update(tmp_path / "ck", data)):
        with pytest.raises(EdgerecError, match=r"outputs a predicted rating.*compression, export and updating"):
            verb()
    with pytest.raises(EdgerecError, match=r"outputs a predicted rating.*recommend"):
        api.recommend(tmp_path / "ck", user="u1")
    with pytest.raises(EdgerecError, match="trained on the rating objective; continue it with that one"):
        edgerec.train(data, TrainConfig(factors=4, epochs=1), init=tmp_path / "ck")


def test_data_without_ratings_is_refused(tmp_path: Path) -> None:
    plain = tmp_path / "plain.csv"
    plain.write_text("user,item\n" + "\n".join(f"{u},{i}" for u in range(30) for i in range(u % 7, 200, 5)) + "\n")
    with pytest.raises(EdgerecError, match="the data has no ratings"):
        edgerec.train(plain, RATING)
    with pytest.raises(EdgerecError, match="nothing to regress"):  # the synthetic data's ratings are all 1
        edgerec.train("synthetic:users=60,items=120,seed=1", RATING)
    with pytest.raises(ConfigError, match="rating objective trains from scratch"):
        TrainConfig(objective="rating", pretrain=True)


def test_cli_rating_objective_prints_rmse_and_evaluate_reads_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(rated_csv(tmp_path / "r.csv", users=120))
    flags = ["--factors", "4", "--epochs", "2", "--batch-size", "128", "--threads", "1"]
    assert main(["-q", "train", "--data", data, "--objective", "rating", *flags, "--out", str(tmp_path / "ck")]) == 0
    printed = capsys.readouterr().out
    assert "RMSE" in printed and "global mean" in printed and "HR@10" not in printed
    assert main(["-q", "evaluate", "--model", str(tmp_path / "ck"), "--data", data]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["rmse"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "synthetic", "--objective", "rating"], "nothing to regress"),
        (["--data", "PLAIN", "--objective", "rating"], "the data has no ratings"),
        (["--data", "synthetic", "--dropout", "1.5"], "dropout"),
        (["--data", "synthetic", "--model", "gmf", "--dropout", "0.2"], "gmf has none"),
    ],
)
def test_cli_refusals_are_one_line_exit_2_and_write_nothing(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / "plain.csv"
    plain.write_text("user,item\n" + "\n".join(f"{u},{i}" for u in range(30) for i in range(u % 7, 200, 5)) + "\n")
    args = [str(plain) if a == "PLAIN" else a for a in args]
    out = tmp_path / "out"
    assert main(["-q", "train", *args, "--epochs", "1", "--threads", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("edgerec: error: ") and message in err[0], err
    assert not out.exists()


def test_dropout_acts_in_training_only_and_leaves_the_graph_alone() -> None:
    torch.manual_seed(0)
    model = NCF(NCFArch.paper("neumf", 20, 30, 4, (16, 8, 4)))
    names = set(model.state_dict())
    u, i = torch.randint(0, 20, (64,)), torch.randint(0, 30, (64,))
    rows = model.lookup(u, i)
    model.train()
    assert not torch.equal(model.combine(rows, 0.5), model.combine(rows))
    model.eval()
    assert torch.equal(model.combine(rows, 0.5), model(u, i))  # identity in evaluation
    assert set(model.state_dict()) == names  # no module of its own: the checkpoint and exported graph are the same
    with pytest.raises(ConfigError, match="gmf has none"):
        TrainConfig(model="gmf", dropout=0.2)
    with pytest.raises(ConfigError, match="dropout"):
        TrainConfig(dropout=1.0)
    ds = load_dataset("synthetic:users=200,items=150,seed=3")
    ck = edgerec.train(ds, TrainConfig(factors=4, epochs=4, dropout=0.2))
    assert ck.metrics["hr@10"] > ck.report["itempop"]["hr@10"]


def test_adagrad_leaves_unread_rows_alone_and_trains() -> None:
    torch.manual_seed(0)
    model = NCF(NCFArch.paper("neumf", 30, 40, 4, (16, 8, 4)))
    opts = optimizers(model, TrainConfig(optimizer="adagrad", lr=0.05))
    assert [type(o).__name__ for o in opts] == ["Adagrad"]
    rg = RowGrads(model)
    for _ in range(3):
        u, i = torch.randint(0, 15, (64,)), torch.randint(0, 20, (64,))  # rows 15.. / 20.. never read
        before = {n: t.weight.detach().clone() for n, t in model.tables().items()}
        rows = rg.gather(u, i)
        y = (torch.rand(64) < 0.3).float()
        opts[0].zero_grad(set_to_none=True)
        torch.nn.functional.binary_cross_entropy_with_logits(model.combine(rows), y).backward()
        add_l2_grad(rows, 1e-3)
        rg.scatter()
        opts[0].step()
        for n, t in model.tables().items():
            untouched = 15 if n.endswith("_user") else 20
            assert torch.equal(t.weight[untouched:], before[n][untouched:])
            assert not torch.equal(t.weight[:untouched], before[n][:untouched])
    ds = load_dataset("synthetic:users=200,items=150,seed=3")
    ck = edgerec.train(ds, TrainConfig(factors=4, epochs=4, optimizer="adagrad", lr=0.05))
    itempop = api.evaluate(ck, ds).itempop["hr@10"]
    assert ck.metrics["hr@10"] > itempop > 0, (ck.metrics, itempop)
