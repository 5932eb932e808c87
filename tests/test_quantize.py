from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load as load_tensors

from edgerec.cli.main import main
from edgerec.compression.calibrate import Observer, calibration_set, entropy_threshold_bin
from edgerec.compression.config import QuantConfig
from edgerec.compression.quantize import (
    SPEC_TENSORS,
    QuantizedNCF,
    dequantized_table,
    quantize,
    rowwise_int4,
    rowwise_int8,
    spec_files,
    spec_of,
)
from edgerec.data import load_dataset
from edgerec.errors import EdgerecError
from edgerec.model.checkpoint import Checkpoint, load
from edgerec.model.config import TrainConfig
from edgerec.model.ncf import NCF, NCFArch
from edgerec.model.training import fit, torch_scorer

SYN = "synthetic:users=300,items=200,seed=3"


@pytest.fixture(scope="module")
def trained() -> tuple:
    torch.set_num_threads(1)
    ds = load_dataset(SYN)
    torch.manual_seed(0)
    model = fit(
        NCF(NCFArch.paper("neumf", ds.n_users, ds.n_items, 8)), ds, TrainConfig(epochs=4, batch_size=512, lr=5e-3)
    ).model
    return ds, model


def test_rowwise_int8_and_int4_error_bounds() -> None:
    torch.manual_seed(0)  # torch's default seed differs per process: the same table every run
    t = torch.randn(100, 16) * torch.linspace(0.01, 3, 100)[:, None]  # rows of very different ranges
    q, s = rowwise_int8(t)
    assert q.dtype == torch.int8 and q.abs().max() <= 127
    assert ((q.float() * s[:, None] - t).abs() <= s[:, None] / 2 + 1e-7).all()  # half a step per row
    codes, scale, _offset = rowwise_int4(t)
    assert codes.max() <= 15
    err = (dequantized_table(t, "int4") - t).abs()
    step = scale.float()[:, None]
    assert (err <= step / 2 + 2e-3 * t.abs().amax(dim=1, keepdim=True)).all()  # half a step + fp16 rounding
    fp16_err = (dequantized_table(t, "fp16") - t).abs()
    assert fp16_err.max() < 3e-3
    assert (fp16_err <= t.abs() * 2**-11).all()  # fp16 rounds to half a unit in the last place (11-bit significand)


def test_observers_on_known_distributions() -> None:
    rng = np.random.default_rng(0)
    mm, pc, en = Observer("minmax"), Observer("percentile", 99.0), Observer("entropy")
    x = rng.normal(size=200_000)
    for chunk in np.array_split(x, 20):  # streaming, and the range grows between chunks
        for o in (mm, pc, en):
            o.update(chunk)
    assert mm.threshold() == pytest.approx(np.abs(x).max())
    # 99th percentile of |N(0,1)| is 2.576; histogram resolution is amax / 2048
    assert pc.threshold() == pytest.approx(2.576, abs=0.01)
    assert 2.0 < en.threshold() < mm.threshold()  # entropy clips the tails, keeps the bulk
    assert mm.hist.size == Observer.BINS and en.hist.size == Observer.BINS  # bounded state
    with pytest.raises(EdgerecError, match="saw no data"):
        Observer("minmax").threshold()
    with pytest.raises(EdgerecError, match="NaN"):
        Observer("minmax").update(np.array([np.nan]))


def test_entropy_keeps_the_whole_range_of_a_uniform_distribution() -> None:
    hist = np.ones(2048)
    assert entropy_threshold_bin(hist) >= 2040


def test_calibration_set_is_stratified_and_sized(trained) -> None:
    ds, _ = trained
    u, i = calibration_set(ds, size=1000, seed=1)
    assert len(u) == len(i) == 1000
    counts = ds.train.item_counts()
    tail = counts[i[:200]] <= np.quantile(counts, 1 / 3)
    assert tail.mean() > 0.2  # a third of the positives come from the tail items
    with pytest.raises(EdgerecError, match="at least 64"):
        calibration_set(ds, size=10)


def test_int8_simulation_tracks_fp32_and_fp32_plan_is_exact(trained) -> None:
    ds, model = trained
    u, i = np.repeat(np.arange(ds.n_users), 5), np.tile(np.arange(5), ds.n_users)
    ref = torch_scorer(model)(u, i)
    exact = quantize(model, ds, QuantConfig(embeddings="fp32", mlp="fp32"))
    np.testing.assert_allclose(torch_scorer(exact)(u, i), ref, rtol=1e-6, atol=1e-6)
    q8 = quantize(model, ds, QuantConfig(embeddings="int8", mlp="int8"))
    err = np.abs(torch_scorer(q8)(u, i) - ref)
    assert err.max() < 0.05 * np.abs(ref).max()
    assert set(q8.spec.input_amax) == {"mlp.0", "mlp.2", "mlp.4", "predict.gmf", "predict.mlp"}


def test_calibration_result_round_trips_and_reproduces_the_same_scores(trained, tmp_path: Path) -> None:
    ds, model = trained
    q = quantize(model, ds, QuantConfig(embeddings="int4", mlp="int8", observer="percentile"))
    out = Checkpoint.create(model, ds, report={}, files=spec_files(model, q.spec)).save(tmp_path / "ck")
    ck = load(out)
    spec = spec_of(ck)
    assert spec == q.spec
    u, i = np.arange(ds.n_users), np.arange(ds.n_users) % ds.n_items
    np.testing.assert_array_equal(torch_scorer(QuantizedNCF(ck.model, spec))(u, i), torch_scorer(q)(u, i))
    tensors = load_tensors(ck.read(SPEC_TENSORS))
    assert tensors["mlp.0.weight.q"].dtype == np.int8 and tensors["gmf_user.q"].max() <= 15
    assert {"predict.gmf.weight.q", "predict.mlp.weight.q"} <= set(tensors)


def test_compress_command_writes_a_loadable_checkpoint_and_gates(trained, tmp_path: Path, capsys) -> None:
    ds, model = trained
    Checkpoint.create(model, ds, report={}).save(tmp_path / "teacher")
    out = tmp_path / "small"
    args = ["compress", "--model", str(tmp_path / "teacher"), "--data", SYN, "--out", str(out)]
    assert main([*args, "--prune", "0.5", "--distill", "--epochs", "1", "--quantize"]) == 0
    ck = load(out)
    assert ck.model.arch.gmf_dim == 4 and spec_of(ck) is not None
    assert (out / "compress.json").is_file()
    # evaluate measures the quantized model, the same numbers compress reported for its last step
    assert main(["evaluate", "--model", str(out), "--data", SYN, "--json", str(tmp_path / "m.json")]) == 0
    import json

    assert (
        json.loads((tmp_path / "m.json").read_text())["hr@10"]
        == json.loads((out / "metrics.json").read_text())["hr@10"]
    )
    # a tolerance no candidate can meet fails with one line and leaves the previous output alone
    before = (out / "model.safetensors").read_bytes()
    assert main([*args, "--prune", "0.9", "--tolerance-hr", "0"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert [ln for ln in lines if ln.startswith("edgerec: error:")] == lines[-1:]  # one error line, the last
    assert lines[-1].startswith("edgerec: error: prune: HR@10 fell by")
    assert (out / "model.safetensors").read_bytes() == before
    # a bad ratio is refused when the config is built, before anything is loaded or trained
    assert main([*args, "--prune", "1.5"]) == 2
    assert capsys.readouterr().err == "edgerec: error: PruneConfig: field `mlp`: Input should be less than 1; got 1.5\n"
    assert (out / "model.safetensors").read_bytes() == before


def test_compress_refuses_data_whose_ids_the_teacher_does_not_know(trained, tmp_path: Path, capsys) -> None:
    """Data is matched to the teacher's id maps by original id; data with other ids is not the teacher's."""
    ds, model = trained
    Checkpoint.create(model, ds, report={}).save(tmp_path / "teacher")
    rows = "\n".join(f"user{u},item{(u * 7 + k) % 150}" for u in range(120) for k in range(12))
    (tmp_path / "other.csv").write_text("user,item\n" + rows + "\n")
    args = ["compress", "--model", str(tmp_path / "teacher"), "--data", str(tmp_path / "other.csv"), "--quantize"]
    code = main([*args, "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and "ids do not match" in err and "0% of its 120 users" in err, err
    assert not (tmp_path / "x").exists()


def test_search_writes_candidates_and_a_pareto_plot(trained, tmp_path: Path) -> None:
    ds, model = trained
    Checkpoint.create(model, ds, report={}).save(tmp_path / "teacher")
    out = tmp_path / "searched"
    code = main(
        [
            "compress",
            "--model",
            str(tmp_path / "teacher"),
            "--data",
            SYN,
            "--search",
            "--ratios",
            "0,0.5",
            "--epochs",
            "1",
            "--tolerance-hr",
            "0.05",
            "--calibration-size",
            "2000",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    import json

    found = json.loads((out / "search" / "candidates.json").read_text())
    assert len(found["candidates"]) == 2 * 3 * 3
    chosen = found["chosen"]
    ok = [c for c in found["candidates"] if c["delta_hr@10"] >= -0.05]
    assert chosen["bytes"] == min(c["bytes"] for c in ok)
    assert (out / "search" / "pareto.png").stat().st_size > 10_000
