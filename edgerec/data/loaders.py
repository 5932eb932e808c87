"""Readers for the supported interaction formats; `load_dataset` picks one from the path.

Supported: the NCF paper's split files (`*.train.rating[.gz]`, `*.test.rating`, `*.test.negative`), raw MovieLens
(`ratings.dat`, `u.data`, the `ml-1m.zip` / `ml-100k.zip` archives as downloaded), CSV and Parquet with named
columns, and `synthetic[:key=value,...]` (the embedded default). Archives are read in memory, never extracted.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import zipfile
from decimal import Decimal
from pathlib import Path

import numpy as np

from edgerec.data.config import Columns
from edgerec.data.interactions import Interactions
from edgerec.data.split import Dataset, leave_one_out
from edgerec.data.synthetic import SyntheticConfig, generate
from edgerec.errors import EdgerecError, shown
from edgerec.io import read_bytes

FLOAT32_MAX = float(np.finfo(np.float32).max)
FORMATS = "an NCF split folder, ratings.dat, u.data, ml-1m.zip, ml-100k.zip, .csv, .parquet or synthetic[:k=v,...]"


def read_text(path: Path) -> str:
    raw = read_bytes(path)
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise EdgerecError(f"{path}: corrupt gzip file ({e})") from None
    return _decode(raw, str(path))


def _decode(raw: bytes, source: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # MovieLens files are latin-1; ids are ASCII digits either way


_ROW_RE = re.compile(r"row (\d+)")


def parse_int_table(text: str, source: str, sep: str, ncols: tuple[int, ...]) -> np.ndarray:
    """[rows, cols] int64 from separated text; every line must have one of the allowed column counts.

    Errors name the file and the 1-based line. Blank lines are skipped.
    """
    if not text.strip():
        raise EdgerecError(f"{source}: the file is empty")
    lines = text.splitlines()  # the original lines, for error messages
    if sep != "\t":
        text = text.replace(sep, "\t")
    first = next(ln for ln in lines if ln.strip())
    width = len(first.split(sep))
    if width not in ncols:
        expected = " or ".join(str(c) for c in ncols)
        raise EdgerecError(f"{source}: expected {expected} {sep!r}-separated columns per line, got {width}: {first!r}")
    try:
        table = np.loadtxt(io.StringIO(text), dtype=np.int64, delimiter="\t", ndmin=2)
    except ValueError as e:
        m = _ROW_RE.search(str(e))
        where = f"line {_line_of_row(lines, int(m.group(1)))}" if m else "a line"
        line = lines[_line_of_row(lines, int(m.group(1))) - 1] if m else ""
        raise EdgerecError(
            f"{source}: malformed {where} {line!r}: expected {width} integer columns separated by {sep!r}"
        ) from None
    return table


def _line_of_row(lines: list[str], row: int) -> int:
    """numpy counts data rows from 0 and skips blank lines; turn that back into a 1-based file line number."""
    seen = -1
    for n, ln in enumerate(lines, 1):
        if ln.strip():
            seen += 1
            if seen == row:
                return n
    return len(lines)


def _interactions_from_table(table: np.ndarray, source: str) -> Interactions:
    ts = table[:, 3] if table.shape[1] >= 4 else None
    rating = table[:, 2] if table.shape[1] >= 3 else None
    return Interactions.from_raw(table[:, 0], table[:, 1], ts, rating, source=source)


def load_movielens_text(text: str, source: str, sep: str) -> Interactions:
    """`user sep item sep rating sep timestamp` lines (ratings.dat with '::', u.data with tabs)."""
    return _interactions_from_table(parse_int_table(text, source, sep, (4,)), source)


def load_movielens_zip(path: Path, *, seed: int = 0) -> Dataset:
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise EdgerecError(f"{path}: not a zip archive") from None
    with zf:
        names = {Path(n).name: n for n in zf.namelist() if not n.endswith("/")}
        for member, sep in (("ratings.dat", "::"), ("u.data", "\t")):
            if member in names:
                text = _decode(zf.read(names[member]), f"{path}:{names[member]}")
                inter = load_movielens_text(text, f"{path}:{names[member]}", sep)
                return leave_one_out(inter, seed=seed, name=path.stem)
    raise EdgerecError(f"{path}: the archive has neither ratings.dat (ML-1M) nor u.data (ML-100K)")


def load_ncf_split(folder: Path) -> Dataset:
    """The NCF paper's split: dense ids already, test pairs and their 99 negatives given."""
    train_files = sorted(folder.glob("*.train.rating")) + sorted(folder.glob("*.train.rating.gz"))
    if not train_files:
        raise EdgerecError(f"{folder}: no *.train.rating or *.train.rating.gz file")
    prefix = train_files[0].name.split(".train.rating")[0]
    test_path = folder / f"{prefix}.test.rating"
    neg_path = folder / f"{prefix}.test.negative"
    train = parse_int_table(read_text(train_files[0]), str(train_files[0]), "\t", (2, 3, 4))
    test = parse_int_table(read_text(test_path), str(test_path), "\t", (2, 3, 4))
    negatives = _parse_negatives(read_text(neg_path), str(neg_path))
    if (train[:, :2] < 0).any():
        raise EdgerecError(f"{train_files[0]}: negative user or item ids; the NCF split uses ids 0..n-1")
    n_users = int(max(train[:, 0].max(), test[:, 0].max())) + 1
    n_items = int(train[:, 1].max()) + 1
    _check_range(test[:, 0], n_users, test_path, "user")
    _check_range(test[:, 1], n_items, test_path, "item")
    _check_range(negatives[0][:, 0], n_users, neg_path, "user")
    _check_range(negatives[1], n_items, neg_path, "item")
    if len(negatives[0]) != len(test) or not np.array_equal(negatives[0], test[:, :2]):
        raise EdgerecError(f"{neg_path}: its (user,item) pairs do not match {test_path.name} line by line")
    inter = Interactions(
        users=train[:, 0].copy(),
        items=train[:, 1].copy(),
        user_ids=np.arange(n_users, dtype=np.int64),
        item_ids=np.arange(n_items, dtype=np.int64),
        timestamps=train[:, 3].copy() if train.shape[1] >= 4 else None,
        ratings=train[:, 2].astype(np.float32) if train.shape[1] >= 3 else None,
    ).deduplicated(str(train_files[0]))
    test_ratings = test[:, 2].astype(np.float32) if test.shape[1] >= 3 else None
    return Dataset(prefix, inter, test[:, 0].copy(), test[:, 1].copy(), negatives[1], test_ratings)


def _check_range(values: np.ndarray, n: int, path: Path, what: str) -> None:
    flat = values.ravel()
    bad = np.nonzero((flat < 0) | (flat >= n))[0]
    if len(bad):
        raise EdgerecError(
            f"{path}: {what} id {int(flat[bad[0]])} is out of range: the train file has {what} ids 0..{n - 1}"
        )


def _parse_negatives(text: str, source: str) -> tuple[np.ndarray, np.ndarray]:
    """`(user,item) \\t neg \\t neg ...` lines -> ([T, 2] pairs, [T, N] negatives)."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise EdgerecError(f"{source}: the file is empty")
    pairs, negs = [], []
    for n, ln in enumerate(lines, 1):
        head, _, rest = ln.partition("\t")
        m = re.fullmatch(r"\(\s*(-?\d+)\s*,\s*(-?\d+)\s*\)", head.strip())
        try:
            if not m:
                raise ValueError
            row = [int(x) for x in rest.split()]
        except ValueError:
            raise EdgerecError(
                f"{source}: malformed line {n} {ln[:60]!r}: expected '(user,item)' then item ids"
            ) from None
        pairs.append((int(m.group(1)), int(m.group(2))))
        negs.append(row)
    width = len(negs[0])
    for n, row in enumerate(negs, 1):
        if len(row) != width or width == 0:
            raise EdgerecError(f"{source}: line {n} has {len(row)} negatives, line 1 has {width}")
    return np.asarray(pairs, dtype=np.int64), np.asarray(negs, dtype=np.int64)


def load_table(path: Path, columns: Columns = Columns(), *, strict: bool = False) -> Interactions:
    """CSV (header row with column names) or Parquet; ids may be integers or strings."""
    cols = read_parquet_columns(path) if path.suffix.lower() == ".parquet" else read_csv_columns(path)
    source = str(path)
    if strict:
        named = {columns.user, columns.item, columns.timestamp, columns.rating}
        unknown = sorted(c for c in cols if c not in named)
        if unknown:
            raise EdgerecError(
                f"{source}: unknown column {unknown[0]!r}; expected {columns.user}, {columns.item}"
                f"{', ' + columns.timestamp if columns.timestamp else ''}"
                f"{', ' + columns.rating if columns.rating else ''} (set the column names)"
            )
    missing = [c for c in (columns.user, columns.item) if c not in cols]
    if missing:
        raise EdgerecError(f"{source}: no column {missing[0]!r}; columns are {sorted(cols)} (set the column names)")
    users, items = id_column(cols[columns.user], source), id_column(cols[columns.item], source)
    ts = _numeric_column(cols, columns.timestamp, source, np.int64)
    ratings = _numeric_column(cols, columns.rating, source, np.float32)
    return Interactions.from_raw(users, items, ts, ratings, source=source)


def read_csv_columns(path: Path, delimiter: str = ",") -> dict[str, Column]:
    """A delimited text file with a header row (CSV; TSV with delimiter "\t") as columns by header name."""
    text = read_text(path)
    if not text.strip():
        raise EdgerecError(f"{path}: the file is empty")
    fast = _read_plain_csv(text, delimiter)
    if fast is not None:
        return fast
    # newline="": the csv module handles \r\n and \r itself
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
        cols: dict[str, list[str]] = {h: [] for h in header}
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                n = reader.line_num
                raise EdgerecError(f"{path}: line {n} has {len(row)} fields, the header has {len(header)}")
            for h, v in zip(header, row, strict=True):
                cols[h].append(v.strip())
    except csv.Error as e:
        raise EdgerecError(f"{path}: line {reader.line_num}: not valid CSV ({e})") from None
    if not cols or not next(iter(cols.values())):
        raise EdgerecError(f"{path}: the file has a header but no rows")
    return dict(cols)


def _read_plain_csv(text: str, delimiter: str = ",") -> dict[str, Column] | None:
    """The columns of a plain CSV file read by Arrow's CSV reader, or None to read it with the csv module.

    Plain: ASCII, no quotes (but around whole header names), no carriage returns, distinct non-empty header names,
    every row as wide as the header.
    Such a file splits the same way under both readers, so only the speed differs: no Python object per value for
    a column of integers (20 M MovieLens-20M-shaped rows: 24 s and 3.1 GiB instead of 97 s and 7.2 GiB,
    benchmarks/results/load_table.md).
    Anything else (or no pyarrow) takes the csv module's path, whose errors name the line.
    """
    first, _, body = text.partition("\n")
    if not text.isascii() or '"' in body or "\r" in text:
        return None
    fields = first.split(delimiter)
    if any('"' in f and not (len(f) > 2 and f[0] == f[-1] == '"' and f.count('"') == 2) for f in fields):
        return None  # a header name may be quoted whole ("userId", as pyarrow and R write headers), nothing else
    header = [f.strip('"').strip() if f.startswith('"') else f.strip() for f in fields]
    if not all(header) or len(set(header)) != len(header) or not body.strip():
        return None
    try:
        import pyarrow as pa
        from pyarrow import csv as pa_csv
    except ImportError:
        return None
    try:
        table = pa_csv.read_csv(
            pa.py_buffer(body.encode("ascii")),
            read_options=pa_csv.ReadOptions(column_names=header, use_threads=False),
            parse_options=pa_csv.ParseOptions(delimiter=delimiter, quote_char=False, ignore_empty_lines=True),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, ValueError):  # a ragged row and the like: the csv module's path says which line
        return None
    return {name: _text_column(table.column(name)) for name in header}


_INTEGER, _DECIMAL = r"^-?[0-9]{1,18}$", r"^-?[0-9]+(\.[0-9]+)?$"  # 18 digits always fit an int64


def _text_column(column) -> Column:  # pyarrow.ChunkedArray of strings -> Column
    """int64 when every (whitespace-trimmed) value is a plain decimal integer, else the Arrow strings as they are."""
    import pyarrow.compute as pc

    trimmed = pc.utf8_trim_whitespace(column)
    if pc.all(pc.match_substring_regex(trimmed, _INTEGER)).as_py():
        return pc.cast(trimmed, "int64").to_numpy()
    return TextColumn(column, trimmed)


class TextColumn:
    """A CSV column of strings held by Arrow: its values become Python strings only when a caller needs them one by
    one (opaque string ids; values only Python's parsing accepts); plain decimals convert without that."""

    def __init__(self, column, trimmed) -> None:  # the strings as read, and whitespace-trimmed by Arrow
        self.column, self.trimmed = column, trimmed

    def values(self) -> list[str]:
        return [v.strip() for v in self.column.to_pylist()]

    def decimals(self) -> np.ndarray | None:
        """float64 values (as Python's float() parses them) when every value is a plain decimal, else None."""
        import pyarrow.compute as pc

        if not pc.all(pc.match_substring_regex(self.trimmed, _DECIMAL)).as_py():
            return None
        return pc.cast(self.trimmed, "float64").to_numpy()


# a column as read: int64 / float64 numbers (Parquet's numeric types, CSV columns of plain integers), Arrow-held CSV
# strings, or Python values (everything else, parsed one by one)
Column = np.ndarray | TextColumn | list


def read_parquet_columns(path: Path) -> dict[str, Column]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise EdgerecError("reading Parquet needs pyarrow: pip install 'edgerec[parquet]'") from None
    try:
        table = pq.read_table(path)
    except FileNotFoundError:
        raise EdgerecError(f"{path}: no such file") from None
    except Exception as e:  # pyarrow raises several types for corrupt files
        raise EdgerecError(f"{path}: not a readable Parquet file ({type(e).__name__})") from None
    if table.num_rows == 0:
        raise EdgerecError(f"{path}: the file has no rows")
    cols = {}
    for name, column in zip(table.column_names, table.columns, strict=True):  # pyarrow refuses duplicate names
        try:
            cols[name] = _parquet_values(column)
        except Exception as e:  # pyarrow's conversions raise several types
            raise EdgerecError(f"{path}: column {shown(name)} cannot be read ({type(e).__name__})") from None
    return cols


def _parquet_values(column) -> Column:  # pyarrow.ChunkedArray -> Column
    """A Parquet column's values: integers (that fit an int64) and floats without nulls as numpy arrays, the rest as
    Python values; dates and times as the integers Parquet stores (same order), because Python's datetime cannot
    hold every stored value (years beyond 9999, nanoseconds without pandas)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if pa.types.is_temporal(column.type):
        column = column.cast(pa.int64() if column.type.bit_width == 64 else pa.int32())
    if column.null_count == 0 and len(column):
        if pa.types.is_integer(column.type) and pc.max(column).as_py() <= 2**63 - 1:
            return column.cast(pa.int64()).to_numpy()
        if pa.types.is_floating(column.type):
            return column.cast(pa.float64()).to_numpy()
    return column.to_pylist()


def id_column(values: Column, source: str) -> np.ndarray:
    if isinstance(values, np.ndarray) and values.dtype == np.int64:
        return values
    values = python_values(values)
    for row, v in enumerate(values):
        if v is None or v == "" or v != v:  # v != v: NaN (Parquet float columns hold missing values as NaN)
            raise EdgerecError(f"{source}: empty user or item id at row {row}")
        if isinstance(v, str) and "\x00" in v:  # numpy strings drop trailing NULs: "a\0" would become "a"
            raise EdgerecError(f"{source}: user or item id at row {row} contains a NUL character")
    try:
        return np.asarray([_exact_int(v) for v in values], dtype=np.int64)
    except (TypeError, ValueError, OverflowError):  # ids are opaque: beyond int64 they are kept as strings
        return np.asarray([str(v) for v in values])


def python_values(values: Column) -> list:
    """A column's values as Python objects (what the one-by-one parsing takes)."""
    if isinstance(values, TextColumn):
        return values.values()
    return values.tolist() if isinstance(values, np.ndarray) else values


def _exact_int(v: object) -> int:
    """int(v), refusing a float or decimal with a fraction: ids 1.25 and 1.5 are two ids, not user 1 twice."""
    n = int(v)  # type: ignore[call-overload]
    if isinstance(v, float | Decimal) and n != v:
        raise ValueError(v)
    return n


def _numeric_column(cols: dict[str, Column], name: str | None, source: str, dtype: type) -> np.ndarray | None:
    if name is None or name not in cols:
        return None
    col = cols[name]
    numbers = col.decimals() if isinstance(col, TextColumn) else col if isinstance(col, np.ndarray) else None
    if numbers is None:
        try:  # integers stay exact (int64 nanosecond timestamps do not fit a float64's 53 bits)
            values = [v if isinstance(v, int) else float(v) for v in python_values(col)]
        except (TypeError, ValueError):
            raise EdgerecError(f"{source}: column {name!r} must be numeric") from None
        low, high = (-(2**63), 2**63 - 1) if dtype is np.int64 else (-FLOAT32_MAX, FLOAT32_MAX)
        if not all(low <= v <= high for v in values):  # NaN fails every comparison
            raise EdgerecError(f"{source}: column {name!r} has a value that is not a finite number in range")
        return np.asarray(values, dtype=dtype)
    if numbers.dtype == np.int64:  # every int64 is in range of both
        return numbers if dtype is np.int64 else numbers.astype(np.float64).astype(dtype)
    low, high = (-(2.0**63), 2.0**63) if dtype is np.int64 else (-FLOAT32_MAX, np.nextafter(FLOAT32_MAX, np.inf))
    if not ((numbers >= low) & (numbers < high)).all():  # NaN fails every comparison
        raise EdgerecError(f"{source}: column {name!r} has a value that is not a finite number in range")
    return numbers.astype(dtype)


def load_dataset(spec: str | Path, *, seed: int = 0, columns: Columns = Columns()) -> Dataset:
    """Load any supported source and return it split (leave-one-out + 99 negatives unless the split is given)."""
    spec_s = str(spec)
    if spec_s == "synthetic" or spec_s.startswith("synthetic:"):
        cfg = SyntheticConfig.parse(spec_s.partition(":")[2])
        return leave_one_out(generate(cfg), seed=seed, name=cfg.name())
    path = Path(spec_s)
    if not path.exists():
        raise EdgerecError(f"{path}: no such file or folder; expected {FORMATS}")
    if path.is_dir():
        if any(path.glob("*.train.rating")) or any(path.glob("*.train.rating.gz")):
            return load_ncf_split(path)
        for member, sep in (("ratings.dat", "::"), ("u.data", "\t")):
            if (path / member).is_file():
                inter = load_movielens_text(read_text(path / member), str(path / member), sep)
                return leave_one_out(inter, seed=seed, name=path.name)
        raise EdgerecError(f"{path}: the folder holds no known data; expected {FORMATS}")
    if path.suffix.lower() == ".zip":
        return load_movielens_zip(path, seed=seed)
    return leave_one_out(load_interactions(path, columns), seed=seed, name=path.stem)


def load_interactions(path: Path, columns: Columns = Columns(), *, strict: bool = False) -> Interactions:
    """One file of interactions, unsplit: ratings.dat, u.data, CSV or Parquet.

    strict refuses CSV / Parquet columns other than the four named ones (new data for an update must not carry
    columns that would be silently ignored).
    """
    if not path.is_file():
        raise EdgerecError(f"{path}: no such file; expected ratings.dat, u.data, .csv or .parquet")
    name, suffix = path.name.lower(), path.suffix.lower()
    if name.endswith(".dat"):
        return load_movielens_text(read_text(path), str(path), "::")
    if name == "u.data" or suffix == ".data":
        return load_movielens_text(read_text(path), str(path), "\t")
    if suffix in (".csv", ".parquet") or name.endswith(".csv.gz"):
        return load_table(path, columns, strict=strict)
    raise EdgerecError(f"{path}: unknown format; expected ratings.dat, u.data, .csv or .parquet")
