from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from edgerec.cli.main import main
from edgerec.data import Columns, load_dataset
from edgerec.data.loaders import load_ncf_split, parse_int_table
from edgerec.errors import EdgerecError

from .conftest import write


def ratings_lines(n_users: int = 25, per_user: int = 6, sep: str = "::") -> str:
    """Every one of n_users * per_user items is used once, so each user has >= 99 unseen items to sample from."""
    rng = np.random.default_rng(1)
    rows = []
    for u in range(1, n_users + 1):
        for t in rng.permutation(per_user):
            i = 1 + (u - 1) * per_user + int(t)
            rows.append(f"{u}{sep}{i}{sep}{rng.integers(1, 6)}{sep}{1000 + 10 * u + int(t)}")
    return "\n".join(rows) + "\n"


def test_ratings_dat_is_split_leave_one_out_by_latest_timestamp(tmp_path: Path) -> None:
    text = ratings_lines()
    ds = load_dataset(write(tmp_path / "ratings.dat", text))
    assert ds.n_users == 25 and len(ds.train) == 25 * 5 and len(ds.test_users) == 25
    # each user's test item is the one with their largest timestamp
    rows = [tuple(int(x) for x in ln.split("::")) for ln in text.splitlines()]
    for u, item in zip(ds.test_users, ds.test_items, strict=True):
        orig_u = int(ds.train.user_ids[u])
        latest = max((r for r in rows if r[0] == orig_u), key=lambda r: r[3])
        assert int(ds.train.item_ids[item]) == latest[1]


def test_u_data_and_zip_archives_give_the_same_split(tmp_path: Path) -> None:
    tab = ratings_lines(sep="\t")
    a = load_dataset(write(tmp_path / "u.data", tab))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ml-100k/u.data", tab)
        zf.writestr("ml-100k/README", "x")
    (tmp_path / "ml-100k.zip").write_bytes(buf.getvalue())
    b = load_dataset(tmp_path / "ml-100k.zip")
    assert a.fingerprint() == b.fingerprint()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ml-1m/ratings.dat", ratings_lines())
    (tmp_path / "ml-1m.zip").write_bytes(buf.getvalue())
    assert load_dataset(tmp_path / "ml-1m.zip").n_users == 25


def test_zip_member_with_traversal_name_is_read_in_memory_not_extracted(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../../evil/ratings.dat", ratings_lines())
    (tmp_path / "x.zip").write_bytes(buf.getvalue())
    assert load_dataset(tmp_path / "x.zip").n_users == 25
    assert not (tmp_path.parent.parent / "evil").exists()


def test_csv_with_string_ids_and_custom_columns(tmp_path: Path) -> None:
    rows = ["uid,iid,when"] + [f"u{u:02d},item{i:03d},{i}" for u in range(40) for i in range(3 * u, 3 * u + 3)]
    cols = Columns(user="uid", item="iid", timestamp="when")
    ds = load_dataset(write(tmp_path / "x.csv", "\n".join(rows)), columns=cols)
    assert ds.n_users == 40 and ds.train.user_ids[0] == "u00"
    # latest timestamp = largest item number per user
    assert [ds.train.item_ids[i] for i in ds.test_items] == [f"item{3 * u + 2:03d}" for u in range(40)]


def test_parquet(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    users = [u for u in range(30) for _ in range(4)]
    items = list(range(120))
    pq.write_table(pa.table({"user": users, "item": items}), tmp_path / "x.parquet")
    ds = load_dataset(tmp_path / "x.parquet")
    assert ds.n_users == 30 and ds.n_items == 120 and len(ds.train) == 30 * 3


def test_duplicates_are_removed_and_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    text = ratings_lines() + "1::1::5::5000\n1::1::4::5001\n"
    ds = load_dataset(write(tmp_path / "ratings.dat", text))
    assert "duplicate" in caplog.text
    keys = ds.train.users * ds.n_items + ds.train.items
    assert len(np.unique(keys)) == len(keys)


def test_users_with_one_interaction_stay_in_train_and_are_logged(tmp_path: Path, caplog) -> None:
    text = ratings_lines() + "99::3::5::1\n"
    ds = load_dataset(write(tmp_path / "ratings.dat", text))
    assert len(ds.test_users) == 25 and ds.n_users == 26
    assert "fewer than two interactions" in caplog.text


def test_ncf_split_gz_and_plain(tmp_path: Path) -> None:
    train = "".join(f"{u}\t{i}\t5\n" for u in range(3) for i in range(u, u + 10))
    test = "".join(f"{u}\t{u + 20}\t5\t1\n" for u in range(3))
    neg = "".join(f"({u},{u + 20})\t" + "\t".join(str(x) for x in range(30, 35)) + "\n" for u in range(3))
    with gzip.open(tmp_path / "x.train.rating.gz", "wt") as f:
        f.write(train + "2\t30\t1\n")  # items 0..30 in train, but the negatives go up to 34
    write(tmp_path / "x.test.rating", test)
    write(tmp_path / "x.test.negative", neg)
    with pytest.raises(EdgerecError, match=r"x.test.negative: item id 31 is out of range"):
        load_ncf_split(tmp_path)
    with gzip.open(tmp_path / "x.train.rating.gz", "wt") as f:
        f.write(train + "2\t40\t1\n")
    ds = load_dataset(tmp_path)
    assert ds.n_items == 41 and ds.test_negatives.shape == (3, 5) and list(ds.test_items) == [20, 21, 22]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("ratings.dat", "", "the file is empty"),
        ("ratings.dat", "1::2::3::4\n1::x::3::5\n", r"malformed line 2 '1::x::3::5'"),
        ("ratings.dat", "1::2::3::4\n\n1::2\n", "malformed line 3"),
        ("ratings.dat", "1,2,3,4\n", "expected 4 '::'-separated columns"),
        ("u.data", "1\t2\t3\t4\n1\t2.5\t3\t4\n", "malformed line 2"),
        ("x.csv", "user,item\n1\n", "line 2 has 1 fields"),
        ("x.csv", "a,b\n1,2\n", "no column 'user'"),
        ("x.csv", "user,item\n", "header but no rows"),
        ("x.txt", "1 2\n", "unknown format"),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path: Path, name: str, text: str, message: str, capsys) -> None:
    path = write(tmp_path / name, text)
    with pytest.raises(EdgerecError, match=message) as e:
        load_dataset(path)
    assert type(e.value) is EdgerecError and name in str(e.value)
    # at the CLI boundary the same error is exactly one line on stderr, exit code 2, and nothing is written
    out = tmp_path / "out"
    assert main(["-q", "train", "--data", str(path), "--epochs", "1", "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"edgerec: error: {e.value}\n" and captured.out == ""
    assert not out.exists()


def test_missing_path_and_bad_zip(tmp_path: Path) -> None:
    with pytest.raises(EdgerecError, match="no such file or folder"):
        load_dataset(tmp_path / "nope")
    (tmp_path / "a.zip").write_bytes(b"not a zip")
    with pytest.raises(EdgerecError, match="not a zip archive"):
        load_dataset(tmp_path / "a.zip")


def test_parse_int_table_reports_file_line_numbers_across_blank_lines() -> None:
    with pytest.raises(EdgerecError, match=r"f\.txt: malformed line 4"):
        parse_int_table("1\t2\n\n3\t4\n5\tz\n", "f.txt", "\t", (2,))


def test_synthetic_spec_and_errors() -> None:
    ds = load_dataset("synthetic:users=200,items=150,seed=3")
    assert ds.n_users == 200 and ds.n_items <= 150
    with pytest.raises(EdgerecError, match="unknown setting 'colour=1'"):
        load_dataset("synthetic:colour=1")
    with pytest.raises(EdgerecError, match="users must be a number"):
        load_dataset("synthetic:users=many")


def test_real_ml1m_split_loads_with_the_papers_counts(ml1m_dir: Path) -> None:
    ds = load_dataset(ml1m_dir)
    assert (ds.n_users, ds.n_items, len(ds.train)) == (6040, 3706, 994169)
    assert ds.test_negatives.shape == (6040, 99)
    assert int((ds.test_negatives == ds.test_items[:, None]).any(axis=1).sum()) == 156  # the documented quirk


def test_synthetic_sizes_are_checked_before_allocating(monkeypatch) -> None:
    """The generator's [users, items] arrays are sized against the free memory first (issue 25)."""
    from edgerec import limits

    with pytest.raises(EdgerecError, match=r"~78,756,143,241 interactions\) needs about 3.8 TiB of memory and "):
        load_dataset("synthetic:users=2000000000,items=2000000000")
    monkeypatch.setattr(limits, "available_bytes", lambda: 10 * 2**20)
    with pytest.raises(
        EdgerecError, match=r"users=1000 \(~39,378 interactions\) needs about 20 MiB of memory and 10 MiB"
    ):
        load_dataset("synthetic:users=1000,items=800")
    # the two scales, refused on a machine without the memory (the chunked sampler's estimate)
    monkeypatch.setattr(limits, "available_bytes", lambda: 2**30)
    with pytest.raises(EdgerecError, match=r"needs about 1.4 GiB of memory and 1.0 GiB is available"):
        load_dataset("synthetic:ml-20m")
    with pytest.raises(EdgerecError, match=r"~50,160,731 interactions\) needs about 2.9 GiB"):
        load_dataset("synthetic:catalog-1m,seed=3")


def test_synthetic_presets_and_the_chunked_sampler() -> None:
    """Beyond DENSE_CELLS the chunked sampler draws the same kind of world: the expected count is met, every user
    has at least 3 distinct items, popularity is as skewed as the exact sampler's, and the data is seeded."""
    from edgerec.data import synthetic

    with pytest.raises(EdgerecError, match="unknown preset 'ml-30m'; presets are ml-20m, catalog-1m"):
        synthetic.SyntheticConfig.parse("ml-30m")
    assert synthetic.SyntheticConfig.parse("ml-20m,seed=2").users == 138_493
    cfg = synthetic.SyntheticConfig(users=3000, items=2000, mean_interactions=60)
    exact, chunked = synthetic.generate(cfg), synthetic._generate_chunked(cfg)
    assert abs(len(chunked) / cfg.expected_interactions() - 1) < 0.03
    assert chunked.user_counts().min() >= 3 and len(np.unique(chunked.keys())) == len(chunked)

    def top_share(x) -> float:  # share of the interactions on the most popular 5 % of items
        pop = np.sort(x.item_counts())[::-1]
        return pop[: len(pop) // 20].sum() / pop.sum()

    assert abs(top_share(chunked) - top_share(exact)) < 0.03, (top_share(chunked), top_share(exact))
    again = synthetic._generate_chunked(cfg)
    assert np.array_equal(again.keys(), chunked.keys())
