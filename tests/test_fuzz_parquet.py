"""Property-based fuzzing of Parquet input (the `parquet` extra): tables with odd column types and names, valid
tables with one column swapped for an odd one, and corrupted or truncated files. Property: a valid dataset or an
EdgerecError with a short, non-empty message, never another exception type (the one printed line is checked at the
CLI boundary, tests/test_loaders.py); casting a column to another type that holds the same values gives the same
dataset."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgerec.data import load_dataset
from edgerec.data.loaders import load_table
from edgerec.errors import EdgerecError

from .conftest import fuzz

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

FUZZ = fuzz(60)
NAMES = ["user", "item", "timestamp", "rating", "x", "", " user", "USER"]
INT64 = st.integers(-(2**63), 2**63 - 1)
# (arrow type, values); ranges as wide as each type holds (pyarrow's writer stores timestamps in ms or finer)
KINDS = {
    "int64": (pa.int64(), INT64),
    "uint64": (pa.uint64(), st.integers(0, 2**64 - 1)),
    "int8": (pa.int8(), st.integers(-128, 127)),
    "float64": (pa.float64(), st.floats()),
    "float32": (pa.float32(), st.floats(width=32)),
    "bool": (pa.bool_(), st.booleans()),
    "string": (pa.string(), st.text(max_size=6)),
    "binary": (pa.binary(), st.binary(max_size=6)),
    "dictionary": (pa.dictionary(pa.int32(), pa.string()), st.sampled_from(["a", "b", "1", "", "\x00"])),
    "decimal": (pa.decimal128(38, 3), st.decimals(places=3, min_value=-(10**30), max_value=10**30)),
    "timestamp[ms]": (pa.timestamp("ms"), INT64),
    "timestamp[ns, UTC]": (pa.timestamp("ns", tz="UTC"), INT64),
    "date32": (pa.date32(), st.integers(-(2**31), 2**31 - 1)),
    "duration[us]": (pa.duration("us"), INT64),
    "list<int64>": (pa.list_(pa.int64()), st.lists(st.integers(-3, 3), max_size=2)),
    "struct": (pa.struct([("a", pa.int64())]), st.fixed_dictionaries({"a": st.integers(-3, 3)})),
    "null": (pa.null(), st.none()),
}


@st.composite
def columns(draw, n: int) -> object:  # a pyarrow array of n values of one drawn kind, maybe with nulls
    typ, values = KINDS[draw(st.sampled_from(sorted(KINDS)))]
    if draw(st.booleans()):
        values = st.none() | values
    if typ == pa.dictionary(pa.int32(), pa.string()):
        return pa.array(draw(st.lists(values, min_size=n, max_size=n)), pa.string()).dictionary_encode()
    return pa.array(draw(st.lists(values, min_size=n, max_size=n)), typ)


def write(path: Path, table) -> Path:
    pq.write_table(table, path)
    return path


def check(path: Path):
    """The property: a dataset, or an EdgerecError with a short, non-empty message (any other exception fails)."""
    try:
        ds = load_dataset(path)
    except EdgerecError as e:
        assert type(e) is EdgerecError, f"a data error raised {type(e).__name__}: {e}"
        assert str(e).strip() and len(str(e)) < 600
        return None
    assert ds.n_users > 0 and ds.n_items > 0
    return ds


def base_table():
    """A valid table: 6 users x 20 items each over 120 items (each user keeps 100 unseen items for the test)."""
    users = np.repeat(np.arange(6), 20)
    items = np.arange(120)
    return pa.table({"user": users, "item": items, "timestamp": 1_000 + items * 7 % 13, "rating": items % 5 + 1.0})


BASE = base_table()


@FUZZ
@given(data=st.data())
def test_any_table(tmp_path, data) -> None:
    n = data.draw(st.integers(0, 8))
    names = data.draw(st.lists(st.sampled_from(NAMES), max_size=4, unique=True))
    table = pa.table({name: data.draw(columns(n)) for name in names})
    check(write(tmp_path / "t.parquet", table))


@FUZZ
@given(name=st.sampled_from(BASE.column_names), data=st.data())
def test_valid_table_with_one_odd_column(tmp_path, name, data) -> None:
    """One column of a valid table replaced by a short drawn column repeated to the table's length, dropped, or
    renamed."""
    action = data.draw(st.sampled_from(["replace", "drop", "rename"]))
    if action == "replace":
        short = data.draw(columns(data.draw(st.integers(1, 4))))
        column = pa.concat_arrays([short] * (BASE.num_rows // len(short) + 1)).slice(0, BASE.num_rows)
        table = BASE.set_column(BASE.column_names.index(name), name, column)
    elif action == "drop":
        table = BASE.drop_columns([name])
    else:
        table = BASE.rename_columns([data.draw(st.sampled_from(NAMES)) if c == name else c for c in BASE.column_names])
    check(write(tmp_path / "t.parquet", table))


CASTS = {
    "user": ["string", "large_string", "float64", "uint64", "int32", "decimal128(20, 0)", "dictionary"],
    "item": ["string", "float64", "uint16", "decimal128(20, 0)", "dictionary"],
    "timestamp": ["float64", "uint64", "timestamp[s]", "timestamp[ns]", "timestamp[ms, tz=UTC]", "dictionary"],
    "rating": ["float32", "int8", "decimal128(5, 1)"],
}


@pytest.mark.parametrize(("name", "to"), [(n, t) for n, ts in CASTS.items() for t in ts])
def test_a_column_cast_to_a_type_that_holds_its_values_gives_the_same_dataset(tmp_path, name, to) -> None:
    expected = load_dataset(write(tmp_path / "base.parquet", BASE))
    i = BASE.column_names.index(name)
    if to == "dictionary":
        column = BASE.column(i).cast(pa.string()).dictionary_encode()
    elif to.startswith("timestamp"):
        unit, _, tz = to[len("timestamp[") : -1].partition(", tz=")
        column = BASE.column(i).cast(pa.timestamp(unit, tz=tz or None))
    elif to.startswith("decimal128"):
        column = BASE.column(i).cast(pa.decimal128(*(int(x) for x in to[len("decimal128(") : -1].split(","))))
    else:
        column = BASE.column(i).cast(to)
    ds = load_dataset(write(tmp_path / "cast.parquet", BASE.set_column(i, name, column)))
    assert (ds.n_users, ds.n_items, len(ds.train)) == (expected.n_users, expected.n_items, len(expected.train))
    assert ds.test_items.tolist() == expected.test_items.tolist()  # the same held-out (latest) item per user


def parquet_bytes(table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


BASE_BYTES = parquet_bytes(BASE)


@FUZZ
@given(
    cut=st.integers(0, len(BASE_BYTES)),
    flips=st.lists(st.tuples(st.integers(0, len(BASE_BYTES) - 1), st.integers(0, 255)), max_size=4),
)
def test_corrupted_or_truncated_file(tmp_path, cut, flips) -> None:
    data = bytearray(BASE_BYTES)
    for at, byte in flips:
        data[at] = byte
    (tmp_path / "c.parquet").write_bytes(bytes(data[: max(cut, len(data) - 64 * len(flips))]))
    check(tmp_path / "c.parquet")


@FUZZ
@given(body=st.binary(max_size=200), framed=st.booleans())
def test_garbage_bytes(tmp_path, body, framed) -> None:
    (tmp_path / "g.parquet").write_bytes(b"PAR1" + body + b"PAR1" if framed else body)
    check(tmp_path / "g.parquet")


# regressions found by these tests (each gave a traceback or a wrong dataset before the fix)
def small(**columns) -> object:
    return pa.table({"user": [0, 0, 1, 1], "item": [0, 1, 2, 3], **columns})


def test_timestamps_beyond_pythons_datetime_are_read_as_stored_integers(tmp_path) -> None:
    # year > 9999 raised OverflowError, and nanoseconds without pandas raised ValueError, from to_pylist()
    ts = pa.array([2**62, 2**62 + 1, 1, 2], pa.timestamp("ms"))
    assert load_table(write(tmp_path / "a.parquet", small(timestamp=ts))).timestamps.tolist() == [
        2**62,
        2**62 + 1,
        1,
        2,
    ]
    ns = pa.array([1_700_000_000_000_000_001, 2, 3, 4], pa.timestamp("ns", tz="UTC"))
    assert load_table(write(tmp_path / "b.parquet", small(timestamp=ns))).timestamps[0] == 1_700_000_000_000_000_001


def test_an_unreadable_column_is_a_clean_error(tmp_path) -> None:
    x = pa.array([[2**62]] * 4, pa.list_(pa.timestamp("ms")))  # a list of out-of-range times: to_pylist raises
    with pytest.raises(EdgerecError, match="column 'x' cannot be read"):
        load_table(write(tmp_path / "a.parquet", small(x=x)))


def test_integer_timestamps_stay_exact(tmp_path) -> None:
    # they went through float64: 1_700_000_000_000_000_001 and ..._002 became equal, so the latest was lost
    ts = [1_700_000_000_000_000_002, 1_700_000_000_000_000_001, 5, 6]
    assert load_table(write(tmp_path / "a.parquet", small(timestamp=ts))).timestamps.tolist() == ts


def test_fractional_float_ids_are_distinct_ids(tmp_path) -> None:
    # int(0.25) == int(0.5) == 0 merged users 0.25 and 0.5 (decimals alike)
    inter = load_table(write(tmp_path / "a.parquet", small(user=[0.25, 0.25, 0.5, 0.5])))
    assert sorted(inter.user_ids.tolist()) == ["0.25", "0.5"]
    decimals = pa.array([Decimal("0.25"), Decimal("0.25"), Decimal("0.5"), Decimal("0.5")])
    assert load_table(write(tmp_path / "b.parquet", small(user=decimals))).n_users == 2
    assert load_table(write(tmp_path / "c.parquet", small(user=[1.0, 1.0, 2.0, 2.0]))).user_ids.tolist() == [1, 2]


def test_nan_ids_are_missing_ids(tmp_path) -> None:
    with pytest.raises(EdgerecError, match="empty user or item id at row 1"):
        load_table(write(tmp_path / "a.parquet", small(user=[1.0, float("nan"), 2.0, 2.0])))


def test_ids_with_nul_characters_are_refused(tmp_path) -> None:
    # numpy's fixed-width strings drop trailing NULs: users "a" and "a\0" became one user
    with pytest.raises(EdgerecError, match="contains a NUL character"):
        load_table(write(tmp_path / "a.parquet", small(user=["a", "a\x00", "b", "b"])))


def test_ratings_beyond_float32_are_refused(tmp_path) -> None:
    # 1e300 passed the finiteness check as float64 and became inf in float32
    with pytest.raises(EdgerecError, match="not a finite number in range"):
        load_table(write(tmp_path / "a.parquet", small(rating=[1.0, 1e300, 2.0, 3.0])))
