"""Property-based fuzzing of the data loaders: any file content gives a Dataset or an EdgerecError with a short,
non-empty message (never another exception type). EdgerecError keeps its message on one line by construction; the
one printed line is checked at the CLI boundary (tests/test_loaders.py). Derandomized so CI runs the same examples
every time."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgerec.data import load_dataset
from edgerec.errors import EdgerecError

from .conftest import fuzz

FUZZ = fuzz(120)
# text made of the characters these formats are built from, so the fuzzer reaches the parsers' inner paths
cells = st.one_of(st.integers(-5, 300).map(str), st.sampled_from(["", " ", "x", "1e3", "nan", "-0", "9" * 30, "1.5"]))


def rows(sep: str, width: int) -> st.SearchStrategy[str]:
    row = st.lists(cells, min_size=0, max_size=width + 1).map(sep.join)
    return st.lists(row, max_size=40).map("\n".join)


def check(path) -> None:
    try:
        ds = load_dataset(path)
    except EdgerecError as e:  # any other exception fails the test
        assert type(e) is EdgerecError, f"a data error raised {type(e).__name__}: {e}"
        assert str(e).strip() and len(str(e)) < 600
    else:
        assert ds.n_users > 0 and ds.n_items > 0


@pytest.mark.parametrize(("name", "sep"), [("ratings.dat", "::"), ("u.data", "\t")])
@FUZZ
@given(data=st.data())
def test_movielens_text(tmp_path, name, sep, data) -> None:
    path = tmp_path / name
    path.write_text(data.draw(rows(sep, 4) | st.text(max_size=200)))
    check(path)


@FUZZ
@given(header=st.sampled_from(["user,item,timestamp", "user,item", "a,b", "user,item,timestamp,rating", ""]),
       body=rows(",", 4))  # fmt: skip
def test_csv(tmp_path, header, body) -> None:
    path = tmp_path / "events.csv"
    path.write_text(header + "\n" + body)
    check(path)


@FUZZ
@given(train=rows("\t", 4), test=rows("\t", 4), negatives=st.lists(rows("\t", 101), max_size=1).map("".join))
def test_ncf_split(tmp_path, train, test, negatives) -> None:
    (tmp_path / "x.train.rating").write_text(train)
    (tmp_path / "x.test.rating").write_text(test)
    (tmp_path / "x.test.negative").write_text(negatives)
    check(tmp_path)


@FUZZ
@given(data=st.binary(max_size=300))
def test_binary_garbage(tmp_path, data) -> None:
    for name in ("ratings.dat", "u.data", "e.csv", "m.zip"):
        path = tmp_path / name
        path.write_bytes(data)
        check(path)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("synthetic:users=0", r"^synthetic data: sizes must be positive, got \{'users': 0,"),
        ("synthetic:items=-1", r"^synthetic data: sizes must be positive, got \{.*'items': -1,"),
        ("synthetic:bogus=1", r"^synthetic data: unknown setting 'bogus=1'; settings are users, items,"),
        ("synthetic:users=x", r"^synthetic data: users must be a number, got 'x'$"),
    ],
)
def test_bad_synthetic_specs(spec, message) -> None:
    with pytest.raises(EdgerecError, match=message) as e:
        load_dataset(spec)
    assert type(e.value) is EdgerecError and len(str(e.value)) < 600


# regressions found by the random fuzzing runs (each crashed with a non-edgerec exception before the fix)
def test_csv_with_a_bare_carriage_return_and_nul_is_a_clean_error(tmp_path) -> None:
    path = tmp_path / "e.csv"
    path.write_bytes(b"\r\x00")
    with pytest.raises(EdgerecError):
        load_dataset(path)


def test_csv_ids_beyond_int64_are_kept_as_opaque_strings(tmp_path) -> None:
    from edgerec.data.loaders import load_table

    big = "9" * 30
    path = tmp_path / "e.csv"
    path.write_text(f"user,item,timestamp\n0,{big},1\n0,1,2\n1,{big},3\n")
    inter = load_table(path)
    assert big in {str(x) for x in inter.item_ids} and inter.n_items == 2


def test_csv_timestamps_out_of_range_are_refused(tmp_path) -> None:
    path = tmp_path / "e.csv"
    path.write_text("user,item,timestamp\n0,1,1e400\n0,2,3\n")
    with pytest.raises(EdgerecError, match="not a finite number in range"):
        load_dataset(path)


def _both_readers(path):
    """load_table's result (or its error) with Arrow's reader for plain CSV, and with the csv module alone."""
    import contextlib
    from unittest import mock

    from edgerec.data import loaders

    out = []
    for fast in (True, False):
        slow_only = mock.patch.object(loaders, "_read_plain_csv", lambda text, delimiter=",": None)
        with contextlib.nullcontext() if fast else slow_only:
            try:
                inter = loaders.load_table(path)
            except EdgerecError as e:
                out.append(("error", str(e)))
            else:
                fields = (inter.users, inter.items, inter.user_ids, inter.item_ids, inter.timestamps, inter.ratings)
                out.append(("ok", [None if a is None else (a.dtype.kind, a.tolist()) for a in fields]))
    return out


PLAIN_HEADERS = [
    "user,item,timestamp",
    "user,item",
    " user , item ,rating",
    "user,item,timestamp,rating",
    '"user","item","timestamp"',
    '"user",item',
    '" user",item',
    '"user" ,item',
    '"us"er",item',
]


@st.composite
def plain_csv(draw) -> str:  # a header and rows exactly as wide (the files Arrow's reader takes), plain integers often
    header = draw(st.sampled_from(PLAIN_HEADERS))
    width = header.count(",") + 1
    cell = st.integers(-3, 40).map(str) | cells if draw(st.booleans()) else st.integers(0, 40).map(str)
    body = draw(st.lists(st.lists(cell, min_size=width, max_size=width).map(",".join), min_size=1, max_size=40))
    return header + "\n" + "\n".join(body) + draw(st.sampled_from(["", "\n", "\n\n"]))


@FUZZ
@given(text=plain_csv())
def test_plain_csv_reads_the_same_with_arrow_and_the_csv_module(tmp_path, text) -> None:
    path = tmp_path / "events.csv"
    path.write_text(text)
    fast, slow = _both_readers(path)
    assert fast == slow


def test_plain_csv_takes_arrows_reader_and_keeps_integer_columns_as_arrays(tmp_path) -> None:
    from edgerec.data import loaders

    text = "user,item,timestamp,rating\n1, 7,100,3.5\n1,8,101,4\n2,7,99,5\n"
    cols = loaders._read_plain_csv(text)
    assert cols is not None and isinstance(cols["user"], np.ndarray) and cols["item"].tolist() == [7, 8, 7]
    assert isinstance(cols["rating"], loaders.TextColumn) and cols["rating"].decimals().tolist() == [3.5, 4.0, 5.0]
    assert loaders._read_plain_csv('"user","item"\n1,2\n')["item"].tolist() == [2]  # quoted header names
    for odd in (
        'user,item\n"1",2\n',
        '"us"er",item\n1,2\n',
        "user,user\n1,2\n",
        "user,item\r\n1,2\r\n",
        "user,item\n1,2,3\n",
        "ü,item\n1,2\n",
    ):
        assert loaders._read_plain_csv(odd) is None  # quotes, duplicate names, \r, a ragged row, non-ASCII
    path = tmp_path / "e.csv"
    path.write_text(text)
    assert _both_readers(path)[0] == _both_readers(path)[1] and _both_readers(path)[0][0] == "ok"


@FUZZ
@given(
    values=st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=50)
    | st.lists(st.integers(-1000, 1000), min_size=1, max_size=200)
)
def test_dense_ids_equal_numpys_unique(values) -> None:
    from edgerec.data.interactions import dense_ids

    arr = np.asarray(values, dtype=np.int64)
    ids, index = dense_ids(arr)
    want_ids, want_index = np.unique(arr, return_inverse=True)
    assert ids.dtype == want_ids.dtype and ids.tolist() == want_ids.tolist() and index.tolist() == want_index.tolist()
