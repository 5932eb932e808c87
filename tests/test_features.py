"""Feature tables (edgerec.data.features): every input format, kinds, the encoder's JSON round trip, unknown and
missing values, and the one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgerec.data import Interactions
from edgerec.data import features as F
from edgerec.errors import ConfigError, EdgerecError
from edgerec.model.config import FeatureConfig

ITEMS_CSV = """item,title,year,genres,studio
10,Toy Story,1995,Animation|Children's|Comedy,Pixar
20,Jumanji,1995,Adventure|Children's|Fantasy,TriStar
30,Heat,1995,Action|Crime|Thriller,Warner
40,Sabrina,1995,Comedy|Romance,
50,Sudden Death,1996,Action,Universal
60,GoldenEye,1995,Action|Adventure|Thriller,Warner
"""


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def cfg(**kw) -> FeatureConfig:
    return FeatureConfig(min_count=1, **kw)


def test_csv_kinds_join_and_encoding(tmp_path: Path) -> None:
    table = F.read_features(write(tmp_path, "items.csv", ITEMS_CSV), "item")
    assert table.id_column == "item" and table.ids.tolist() == [10, 20, 30, 40, 50, 60]
    assert table.columns["studio"][3] is None  # an empty field is missing
    # the data's items by dense index: one the table lacks (70), one row the data lacks (60)
    inter = Interactions.from_raw(np.array([1, 1, 2, 2, 3]), np.array([10, 20, 30, 40, 70]))
    sf = F.side_features(table, inter.item_ids, "item", cfg())
    kinds = {c.name: c.kind for c in sf.encoder.columns}
    assert kinds == {"title": "text", "year": "categorical", "genres": "multi", "studio": "categorical"}
    r = sf.report
    assert (r.ids, r.matched, r.without_row, r.unused_rows) == (5, 4, 1, 2)
    studio = next(c for c in r.columns if c["name"] == "studio")
    assert studio["missing"] == 2  # Sabrina's empty studio, and item 70 without a row
    enc = sf.encoded
    assert enc.indices.shape == enc.weights.shape and len(enc) == 5
    assert (enc.indices[~enc.mask] == F.PAD).all() and (enc.weights[~enc.mask] == 0).all()
    assert 0 < enc.indices.max() < sf.encoder.size
    # per row, the weights of each column sum to 1: four columns
    np.testing.assert_allclose(enc.weights.sum(1), 4.0, rtol=1e-6)
    # item 70 has no row: every column's reserved index
    assert sorted(enc.indices[4][enc.mask[4]].tolist()) == [c.offset for c in sf.encoder.columns]
    # genres of Toy Story: three known values, a third each
    genres = next(c for c in sf.encoder.columns if c.name == "genres")
    row = dict(zip(enc.indices[0].tolist(), enc.weights[0].tolist(), strict=True))
    got = {
        genres.vocab[i - genres.offset - 1]: w
        for i, w in row.items()
        if genres.offset < i <= genres.offset + len(genres.vocab)
    }
    assert got.keys() == {"Animation", "Children's", "Comedy"} and all(abs(w - 1 / 3) < 1e-6 for w in got.values())


def test_tsv_declared_kinds_numeric_buckets_and_scaling(tmp_path: Path) -> None:
    rows = "\n".join(f"{u}\tF\t{20 + u}\tuser {u} text" for u in range(40))
    path = write(tmp_path, "users.tsv", "user_id\tgender\tage\tbio\n" + rows + "\n")
    table = F.read_features(path, "user")
    assert table.id_column == "user_id"
    ids = np.arange(40)
    quant = F.side_features(table, ids, "user", cfg(kinds={"bio": "ignore"}, quantiles=4))
    (age,) = [c for c in quant.encoder.columns if c.name == "age"]
    assert (
        age.kind == "numeric" and len(age.edges) == 3 and [c.name for c in quant.encoder.columns] == ["gender", "age"]
    )
    buckets = quant.encoded.indices[:, 1] - age.offset - 1
    assert buckets.tolist() == sorted(buckets.tolist()) and set(buckets.tolist()) == {0, 1, 2, 3}
    scaled = F.side_features(table, ids, "user", cfg(kinds={"bio": "ignore"}, numeric="scaled"))
    (age,) = [c for c in scaled.encoder.columns if c.name == "age"]
    assert age.kind == "scaled"
    z = scaled.encoded.weights[:, 1]
    np.testing.assert_allclose(z, (np.arange(40) + 20 - age.mean) / age.scale, rtol=1e-5)
    assert abs(z.mean()) < 1e-5


def test_parquet_with_nulls_and_numbers(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "items.parquet"
    pq.write_table(
        pa.table({
            "movieId": pa.array([1, 2, 3, 4], pa.int64()),
            "kind": pa.array([3, None, 3, 5], pa.int64()),
            "price": pa.array([1.5, 2.5, float("nan"), 9.0]),
            "tags": pa.array(["a|b", "b", None, "a"]),
        }),
        path,
    )  # fmt: skip
    table = F.read_features(path, "item")
    assert table.id_column == "movieId" and table.columns["kind"] == [3.0, None, 3.0, 5.0]
    sf = F.side_features(table, np.array([1, 2, 3, 4]), "item", cfg())
    kinds = {c.name: c.kind for c in sf.encoder.columns}
    assert kinds == {"kind": "categorical", "price": "numeric", "tags": "multi"}
    (kind,) = [c for c in sf.encoder.columns if c.name == "kind"]
    assert kind.vocab == ("3", "5")  # integral numbers named as CSV spells them
    counts = {c["name"]: c["missing"] for c in sf.report.columns}
    assert counts == {"kind": 1, "price": 1, "tags": 1}


def test_movielens_dat_files(tmp_path: Path) -> None:
    users = write(tmp_path, "users.dat", "1::F::1::10::48067\n2::M::56::16::70072\n3::M::25::15::55117\n")
    movies = write(
        tmp_path,
        "movies.dat",
        "1::Toy Story (1995)::Animation|Children's|Comedy\n2::Jumanji (1995)::Adventure|Children's|Fantasy\n"
        "3::Misérables, Les (1995)::Drama|Musical\n",
        encoding="latin-1",  # movies.dat is ISO-8859-1
    )
    u = F.read_features(users, "user")
    assert u.id_column == "user" and list(u.columns) == ["gender", "age", "occupation", "zip"]
    m = F.read_features(movies, "item")
    assert m.columns["title"][2] == "Misérables, Les" and m.columns["year"] == ["1995"] * 3
    # ratings.dat's ids are these files' ids: a data set loaded from it joins by original id
    inter = Interactions.from_raw(np.array([1, 2, 3]), np.array([3, 1, 2]))
    sf = F.side_features(m, inter.item_ids, "item", cfg())
    assert sf.report.matched == 3 and {c.name: c.kind for c in sf.encoder.columns}["genres"] == "multi"
    sf_u = F.side_features(u, inter.user_ids, "user", cfg())
    assert sf_u.report.matched == 3


def test_encoder_json_round_trip_and_new_items(tmp_path: Path) -> None:
    table = F.read_features(write(tmp_path, "items.csv", ITEMS_CSV), "item")
    sf = F.side_features(table, np.array([10, 20, 30, 40, 50]), "item", cfg())
    text = json.dumps(sf.encoder.to_json())
    again = F.Encoder.from_json(json.loads(text))
    assert again == sf.encoder and json.dumps(again.to_json()) == text
    same = again.encode_ids(table, np.array([10, 20, 30, 40, 50]))
    np.testing.assert_array_equal(same.indices, sf.encoded.indices)
    np.testing.assert_array_equal(same.weights, sf.encoded.weights)
    # a new item later: a studio and a genre the training rows never had go to the columns' reserved indices
    new = F.read_features(
        write(tmp_path, "new.csv", "item,title,year,genres,studio\n99,Toy Story 2,1999,Animation|Western,Lucasfilm\n"),
        "item",
    )
    enc, counts = again.encode(new, np.array([0]))
    studio = next(c for c in again.columns if c.name == "studio")
    genres = next(c for c in again.columns if c.name == "genres")
    row = dict(zip(enc.indices[0].tolist(), enc.weights[0].tolist(), strict=True))
    assert row[studio.offset] == 1.0 and counts["studio"]["unknown"] == 1
    assert abs(row[genres.offset] - 0.5) < 1e-6 and counts["genres"]["unknown"] == 1  # Western; Animation is known
    assert counts["year"]["unknown"] == 1  # 1999 is no category of the training rows
    # the shared title words hash to the same buckets as at training
    title = next(c for c in again.columns if c.name == "title")
    toy = {i for i in sf.encoded.indices[0].tolist() if title.offset < i <= title.offset + title.buckets}
    toy2 = {i for i in enc.indices[0].tolist() if title.offset < i <= title.offset + title.buckets}
    assert len(toy & toy2) >= 3  # "toy", "story", "toy story"


def test_rare_categories_share_the_reserved_index(tmp_path: Path) -> None:
    table = F.read_features(write(tmp_path, "items.csv", ITEMS_CSV), "item")
    sf = F.side_features(table, table.ids, "item", FeatureConfig(min_count=2, kinds={"title": "ignore"}))
    studio = next(c for c in sf.encoder.columns if c.name == "studio")
    assert studio.vocab == ("Warner",)
    assert next(c for c in sf.report.columns if c["name"] == "studio")["unknown"] == 3  # Pixar, TriStar, Universal


def test_pool_is_the_embedding_bag_sum(tmp_path: Path) -> None:
    table = F.read_features(write(tmp_path, "items.csv", ITEMS_CSV), "item")
    sf = F.side_features(table, table.ids, "item", cfg())
    values = np.random.default_rng(0).normal(size=(sf.encoder.size, 3))
    values[F.PAD] = 0
    pooled = F.pool(values, sf.encoded)
    k = 2
    manual = sum(w * values[i] for i, w in zip(sf.encoded.indices[k], sf.encoded.weights[k], strict=True))
    np.testing.assert_allclose(pooled[k], manual, rtol=1e-6)


def test_errors_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fails(match: str, fn, *args) -> None:
        with pytest.raises(EdgerecError, match=match) as e:
            fn(*args)
        assert "\n" not in str(e.value)

    fails("no such file", F.read_features, tmp_path / "absent.csv", "item")
    fails("no item id column", F.read_features, write(tmp_path, "a.csv", "name,genre\nx,y\n"), "item")
    fails(
        "no id column 'sku'",
        F.read_features,
        write(tmp_path, "b.csv", "item,g\n1,y\n"),
        "item",
        FeatureConfig(id_column="sku"),
    )
    fails("item id 2 appears on 2 rows", F.read_features, write(tmp_path, "c.csv", "item,g\n1,a\n2,b\n2,c\n"), "item")
    fails("unknown feature table format", F.read_features, write(tmp_path, "d.json", "{}"), "item")
    fails("users.dat .* or movies.dat", F.read_features, write(tmp_path, "e.dat", "1::2\n"), "user")
    fails("line 2 has 4", F.read_features, write(tmp_path, "f.dat", "1::a::G\n2::b::c::d\n"), "item")
    table = F.read_features(write(tmp_path, "items.csv", ITEMS_CSV), "item")
    fails("none of its 6 item ids is among the data's 2", F.side_features, table, np.array([1, 2]), "item")
    fails("no column 'rating'", F.side_features, table, table.ids, "item", FeatureConfig(kinds={"rating": "numeric"}))
    fails("not an edgerec feature encoder", F.Encoder.from_json, {"format": "x"})
    monkeypatch.setattr(F, "MAX_FILE_BYTES", 100)
    fails("too large for a item feature table", F.read_features, table_path := tmp_path / "items.csv", "item")
    assert table_path.stat().st_size > 100
    with pytest.raises(ConfigError, match="kinds"):
        FeatureConfig(kinds={"a": "colour"})
