"""Cold users in the phone bundle: a model with user features exports a `user_features` signature and its user
encoder (a user known by their attributes alone), and `fold_in_from` (a few interactions fitted from those vectors);
an id-only bundle is unchanged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import edgerec
from edgerec.data.features import Encoder
from edgerec.errors import EdgerecError
from edgerec.exporters.config import ExportConfig
from edgerec.gates import ParityBound
from edgerec.model.config import FeaturesConfig, TrainConfig
from edgerec.model.features import FeatureNCF, add_ids
from edgerec.runtime import load_bundle
from edgerec.runtime.config import FoldInConfig
from edgerec.runtime.foldin import ItemSide, fold_in, fold_in_fixed

TINY = "synthetic:users=150,items=140,seed=4"
GROUPS, HOBBIES = ("a", "b", "c"), ("chess", "golf", "films", "hiking")
WORDS = ("quiet", "reader", "night", "owl", "loves", "old", "films", "and", "long", "walks", "coffee", "first")


def user_table(path: Path, ids: np.ndarray) -> Path:
    """group (categorical), age (numeric: many distinct integers), hobbies (multi-valued), bio (short text: hashed
    into 1,024 buckets, a bag large enough to be stored in int8)."""
    rng = np.random.default_rng(1)
    lines = ["user\tgroup\tage\thobbies\tbio"]
    for u in ids:
        hobbies = "|".join(rng.choice(HOBBIES, size=int(rng.integers(1, 3)), replace=False))
        bio = " ".join(rng.choice(WORDS, size=int(rng.integers(2, 6))))
        lines.append(f"{u}\t{rng.choice(GROUPS)}\t{rng.integers(18, 80)}\t{hobbies}\t{bio}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def cold(tmp_path_factory: pytest.TempPathFactory):
    """A feature model (user features) and its fp32 and int8 bundles with the on-device functions."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("cold")
    ds = edgerec.dataset(TINY)
    users = user_table(root / "users.tsv", ds.train.user_ids)
    ck = edgerec.train(ds, TrainConfig(factors=4, epochs=2, features=FeaturesConfig(user=str(users))))
    ck.save(root / "ck")
    bundles = {}
    for precision in ("fp32", "int8"):
        cfg = ExportConfig(
            target="tflite-bundle",
            precision=precision,
            tolerance=ParityBound(hr=0.05),
            # a short unrolled fold-in keeps the conversion quick; the math is the same at any step count
            options={"candidates": 20, "explain": True, "fold_in": {"steps": 8, "lr": 0.05, "pull": 0.1}},
        )
        bundles[precision] = edgerec.export(root / "ck", cfg, ds, out=root / precision).folder
    return ck, ds, bundles


def torch_user(model: FeatureNCF, indices: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The PyTorch feature model's vectors of a user it never saw (id rows zero): its user bags on the encoding."""
    bags = model.bags()
    idx, w = torch.from_numpy(indices[None, :].astype(np.int64)), torch.from_numpy(weights[None, :])
    with torch.no_grad():
        return (
            bags["gmf_user"](idx, per_sample_weights=w)[0].numpy(),
            bags["mlp_user"](idx, per_sample_weights=w)[0].numpy(),
        )


ATTRIBUTES = [
    {"group": "b", "age": 33, "hobbies": "chess|films", "bio": "a quiet reader of old books"},
    {"group": "a", "age": "71", "hobbies": "golf"},
    {"group": "c"},  # age and hobbies missing
    {"group": "never seen", "age": 25.5, "hobbies": "golf|knitting"},  # unknown values
]


def test_user_features_equals_the_pytorch_feature_models_new_user(cold) -> None:
    ck, ds, bundles = cold
    model = ck.model
    assert isinstance(model, FeatureNCF)
    b = load_bundle(bundles["fp32"])
    sig = b.manifest["signatures"]
    assert {"user_features", "fold_in_from"} <= set(sig)
    width = model.features.encoders["user"].width
    assert sig["user_features"]["inputs"]["feature_indices"][1] == [width] == [b.user_encoder.width]
    for attributes in ATTRIBUTES:
        indices, weights, _ = b.encode_user(attributes)
        ug, um = b.user_from_features(attributes)
        tg, tm = torch_user(model, indices, weights)
        assert np.abs(ug - tg).max() < 1e-5 and np.abs(um - tm).max() < 1e-5
        # the bundle's scores for these vectors are the feature model's for the user added by its features
        encoded = model.features.encoders["user"].encode_attributes(attributes)[0]
        grown = add_ids(model, "user", encoded)
        with torch.no_grad():
            expected = grown(torch.full((ds.n_items,), ds.n_users), torch.arange(ds.n_items)).numpy()
        assert np.abs(b.recommend(ug, um)[2] - expected).max() < 1e-4


def test_the_int8_bundles_user_features_are_close_to_fp32(cold) -> None:
    _, _, bundles = cold
    fp32, int8 = load_bundle(bundles["fp32"]), load_bundle(bundles["int8"])
    info = int8.manifest["quantization"]
    assert any(r["shape"][0] == int8.user_encoder.size for r in info["item_constants"]), info  # the bags in int8
    for attributes in ATTRIBUTES:
        a, b = np.concatenate(fp32.user_from_features(attributes)), np.concatenate(int8.user_from_features(attributes))
        assert np.abs(a - b).max() <= 0.02 * np.abs(a).max(), (a, b)


def test_the_bundle_carries_the_user_encoder_hash_checked(cold, tmp_path: Path) -> None:
    ck, _, bundles = cold
    folder = bundles["int8"]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["user_features"]["encoder"] == "user_encoder.json"
    assert "user_encoder.json" in manifest["bundle_files"] and manifest["files"]["user_encoder.json"]["sha256"]
    text = (folder / "user_encoder.json").read_text()
    assert Encoder.from_json(json.loads(text)) == ck.model.features.encoders["user"]
    assert "user_features" in (folder / "README.md").read_text()
    changed = tmp_path / "changed"
    shutil.copytree(folder, changed)
    (changed / "user_encoder.json").write_text(text.replace('"b"', '"B"'))
    with pytest.raises(EdgerecError, match="sha256 does not match"):
        load_bundle(changed)


def test_unknown_and_missing_values_are_counted_not_refused(cold) -> None:
    _, _, bundles = cold
    b = load_bundle(bundles["fp32"])
    _, _, counts = b.encode_user({"group": "never seen", "hobbies": "golf|knitting"})
    assert counts == {"unknown": 2, "missing": 2}  # age and bio missing
    # an unknown group reads the column's reserved row, as the training rows without a known group did
    enc = b.user_encoder.columns[0]
    indices, weights, _ = b.encode_user({"group": "zzz", "age": 30})
    assert enc.name == "group" and indices[0] == enc.offset and weights[0] == 1.0
    assert len(indices) == b.user_encoder.width == 1 + 1 + 5 + 32  # padded: hobbies 4 + unknown, bio 32 tokens
    assert (b.user_from_features({"group": "zzz", "age": 30})[0] == b.user_from_features({"age": 30.0})[0]).all()


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"colour": "red"}, "no user feature column 'colour'; columns are \\['age', 'bio', 'group', 'hobbies'\\]"),
        ({"group": ["a", "b"]}, "'group' must be text or a number; got list"),
        ("group=a", "expected a mapping of column name -> value; got str"),
    ],
)
def test_bad_attributes_are_one_line_errors(cold, attributes, message) -> None:
    _, _, bundles = cold
    b = load_bundle(bundles["int8"])
    with pytest.raises(EdgerecError, match=message) as e:
        b.user_from_features(attributes)
    assert "\n" not in str(e.value)


def test_fold_in_from_the_feature_vectors_equals_the_numpy_reference(cold) -> None:
    ck, _, bundles = cold
    b = load_bundle(bundles["fp32"])
    fi = dict(b.manifest["fold_in"])
    negatives = np.asarray(fi.pop("negative_items"))
    cfg = FoldInConfig(**fi)
    side = ItemSide.from_checkpoint(ck.path)
    rng = np.random.default_rng(3)
    for attributes in ATTRIBUTES:
        start = b.user_from_features(attributes)
        history = rng.choice(b.n_items, int(rng.integers(1, 6)), replace=False)
        ug, um = b.fold_in(history, start=start)
        rp, rq = fold_in_fixed(side, history, negatives, cfg, start=start)
        assert np.abs(ug - rp).max() < 1e-4 and np.abs(um - rq).max() < 1e-4
        # the start matters, and no start is today's fold-in
        plain = b.fold_in(history)
        assert np.abs(plain[0] - ug).max() > 1e-3
        ref = fold_in_fixed(side, history, negatives, cfg)
        assert np.abs(plain[0] - ref[0]).max() < 1e-4
    # the numpy fold-in (negatives re-drawn each step) takes a start too; zero steps of it leave the start as it is
    start = b.user_from_features(ATTRIBUTES[0])
    short = fold_in(side, [1, 2], FoldInConfig(steps=1, lr=1e-9), start=start)
    assert np.abs(short[0] - start[0]).max() < 1e-6


def test_bench_times_user_features_and_fold_in_from(cold) -> None:
    """`edgerec bench` on a bundle with user features times a cold user's two on-device calls beside recommend."""
    from edgerec.benchmarking.config import BenchConfig
    from edgerec.benchmarking.latency import bench_artifact

    _, _, bundles = cold
    record = bench_artifact(bundles["int8"], BenchConfig(min_time_s=0.05, warmup=5, min_calls=20))
    lat = record["latency_ms"]
    assert {"catalog_top10", "fold_in", "explain", "user_features", "fold_in_from"} <= set(lat)
    for name in ("user_features", "fold_in_from"):
        assert 0 < lat[name]["p50"] <= lat[name]["p99"] and lat[name]["calls"] >= 20


def test_an_id_only_bundle_has_no_user_features(tmp_path: Path, ckpt, ds) -> None:
    cfg = ExportConfig(target="tflite-bundle", precision="fp32", options={"candidates": 0, "explain": False})
    folder = edgerec.export(ckpt, cfg, ds, out=tmp_path / "plain").folder
    manifest = json.loads((folder / "manifest.json").read_text())
    assert set(manifest["signatures"]) == {"recommend"} and "user_features" not in manifest
    assert not (folder / "user_encoder.json").exists()
    b = load_bundle(folder)
    with pytest.raises(EdgerecError, match="no user_features signature"):
        b.user_from_features({"group": "a"})


def test_the_c_client_runs_user_features_then_fold_in_from_by_name(tmp_path: Path, cold) -> None:
    """The C client (examples/c) runs user_features and feeds its outputs to fold_in_from, then recommend, by the
    manifest's names: the answers equal Python's LiteRT (items identical, floats within 1e-4)."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed: the C client cannot be built here (CI has gcc)")
    from edgerec.apps.native import Tensor, build_client, decode, encode, run_client

    _, _, bundles = cold
    folder = bundles["int8"]
    b = load_bundle(folder)
    sigs = b.manifest["signatures"]
    client = build_client(Path(__file__).resolve().parents[1] / "examples" / "c", tmp_path / "client")
    rng = np.random.default_rng(5)
    requests, expected = [], []
    for attributes in ATTRIBUTES:
        indices, weights, _ = b.encode_user(attributes)
        inputs = {"feature_indices": Tensor(indices), "feature_weights": Tensor(weights)}
        requests.append(("user_features", inputs, list(sigs["user_features"]["outputs"])))
        start = b.user_features(indices, weights)
        expected.append({"user_gmf": start[0], "user_mlp": start[1]})
        first = len(requests) - 1
        history = rng.choice(b.n_items, 3, replace=False)
        padded, mask = b._history(history)
        chained = {
            "history": Tensor(padded),
            "history_mask": Tensor(mask),
            "user_gmf": Tensor(request=first, name="user_gmf", dtype="float32"),
            "user_mlp": Tensor(request=first, name="user_mlp", dtype="float32"),
        }
        requests.append(("fold_in_from", chained, list(sigs["fold_in_from"]["outputs"])))
        ug, um = b.fold_in(history, start=start)
        expected.append({"user_gmf": ug, "user_mlp": um})
        rec = {n: Tensor(request=len(requests) - 1, name=n, dtype="float32") for n in ("user_gmf", "user_mlp")}
        requests.append(("recommend", rec, ["top_items", "top_scores"]))
        top, scores, _ = b.recommend(ug, um)
        expected.append({"top_items": top, "top_scores": scores})
    (tmp_path / "requests.bin").write_bytes(encode(requests))
    run_client(client, folder / "model.tflite", tmp_path / "requests.bin", tmp_path / "outputs.bin", timeout=120)
    got = decode((tmp_path / "outputs.bin").read_bytes())
    assert len(got) == len(expected)
    for out, want in zip(got, expected, strict=True):
        for name, value in want.items():
            if np.asarray(value).dtype.kind == "f":
                np.testing.assert_allclose(out[name].reshape(-1), np.reshape(value, -1), rtol=0, atol=1e-4)
            else:
                np.testing.assert_array_equal(out[name], value)


def test_recommend_for_a_new_user_by_attributes_from_the_checkpoint_and_the_bundle(cold, tmp_path: Path) -> None:
    """`edgerec recommend --user-attributes`: the checkpoint (numpy) and the bundle (its user_features) give the same
    top-10; with a history the fold-in starts from those vectors."""
    from edgerec.cli.main import main

    ck, _, bundles = cold
    out = {}
    for name, model in (("checkpoint", ck.path), ("bundle", bundles["fp32"])):
        for extra in ([], ["--history", "1,2,3"]):
            path = tmp_path / f"{name}{len(extra)}.json"
            args = ["-q", "recommend", "--model", str(model), "--user-attributes", "group=b,age=33,hobbies=golf|chess"]
            assert main([*args, *extra, "--json", str(path)]) == 0
            out[name, len(extra)] = json.loads(path.read_text())
    for n in (0, 2):  # the bundle's numpy item side is float16: close items may swap
        a, b = ({r["item"] for r in out[name, n]["recommendations"]} for name in ("checkpoint", "bundle"))
        assert len(a & b) >= 8, (a, b)
    assert out["checkpoint", 0]["who"] == "a new user with 3 attributes"
    assert out["checkpoint", 2]["who"].startswith("a new user with 3 items (folded in from the attributes' vectors)")
    attributes = tmp_path / "attributes.json"
    attributes.write_text(json.dumps({"group": "b", "age": 33, "hobbies": "golf|chess"}))
    assert main(["-q", "recommend", "--model", str(ck.path), "--user-attributes", str(attributes), "--json",
                 str(tmp_path / "file.json")]) == 0  # fmt: skip
    again = json.loads((tmp_path / "file.json").read_text())["recommendations"]
    assert again == out["checkpoint", 0]["recommendations"]


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--user-attributes", "group"], "expected column=value pairs separated by commas; got 'group'"),
        (["--user-attributes", "colour=red"], "no user feature column 'colour'"),
        (["--user-attributes", "group=a", "--user", "3"], "give --user (a known user) or --history"),
        (["--user-attributes", "group=a", "--explain", "similarity"], "explaining needs the new user's history"),
        (["--user-attributes", "missing.json"], "not a readable JSON file"),
    ],
)
def test_bad_user_attributes_at_the_cli_are_one_line(cold, extra, match, capsys) -> None:
    from edgerec.cli.main import main

    ck, _, _ = cold
    assert main(["-q", "recommend", "--model", str(ck.path), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err, err
