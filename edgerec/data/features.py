"""User and item feature tables: read (CSV, TSV, Parquet, MovieLens users.dat / movies.dat), joined to a data set's
id maps by original id, and encoded as embedding-bag input.

Every column gets a range of one shared value space: index 0 is padding, then per column its reserved index
(missing values, unknown or rare categories, rows the table lacks) followed by its values (categories, quantile
buckets, one z-scored value, text hash buckets). A row is encoded as indices into that space with a weight each:
the weights of one column sum to 1 (a multi-valued or text field is the mean of its values; a scaled number is its
one index weighted by the z-score), so an embedding bag in "sum" mode with these per-sample weights is the sum over
columns of each column's mean value embedding. The `Encoder` (vocabularies, bucket edges, scaling, hash settings)
is JSON that round-trips exactly: a new user or item is later encoded exactly as the training rows were.
numpy (and pyarrow for Parquet) only.
"""

from __future__ import annotations

import itertools
import math
import re
import zlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from edgerec.data.loaders import id_column, python_values, read_csv_columns, read_parquet_columns, read_text
from edgerec.errors import EdgerecError, shown
from edgerec.io import parse_json, read_bytes, sha256_bytes
from edgerec.limits import gib
from edgerec.model.config import ColumnKind, FeatureConfig

Side = Literal["user", "item"]
FORMAT, FORMAT_VERSION = "edgerec.features", 1
PAD = 0  # the padding index of every encoded matrix (weight 0)
MAX_FILE_BYTES = 1 << 30  # a feature table is a row per user or item: beyond this it is not one
INFER_CATEGORICAL_MAX = 32  # integer columns with at most this many distinct values are categories, not numbers
Z_CLIP = 5.0  # scaled numbers are clipped to this many standard deviations
ID_CANDIDATES: dict[str, tuple[str, ...]] = {
    "user": ("user", "user_id", "userId", "id"),
    "item": ("item", "item_id", "itemId", "movie_id", "movieId", "id"),
}
# MovieLens-1M's own files, `::`-separated, by their number of fields
DAT_COLUMNS = {5: ("user", "gender", "age", "occupation", "zip"), 3: ("item", "title", "year", "genres")}
FORMATS = "CSV, TSV, Parquet, or MovieLens users.dat / movies.dat"
_YEAR = re.compile(r"^(.*?)\s*\((\d{4})\)\s*$")
_WORD = re.compile(r"\w+")

Value = str | float | None  # a cell as read: text, a number, or missing


@dataclass(frozen=True)
class FeatureTable:
    """A feature table as read: original ids, and each other column's values by row (None: missing)."""

    source: str
    id_column: str
    ids: np.ndarray  # [rows] original ids, int64 or str, distinct
    columns: dict[str, list[Value]]

    def __len__(self) -> int:
        return len(self.ids)


def read_features(path: str | Path, side: Side, cfg: FeatureConfig = FeatureConfig()) -> FeatureTable:
    """A user or item feature table, keyed by original id (the column cfg.id_column, or inferred for `side`)."""
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise EdgerecError(f"{path}: no such file; expected a {side} feature table ({FORMATS})")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise EdgerecError(
            f"{path}: {gib(size)} is too large for a {side} feature table (at most {gib(MAX_FILE_BYTES)}: one row "
            f"per {side}, a few short columns)"
        )
    name = path.name.lower()
    if name.endswith(".dat"):
        raw = _read_dat(path)
    elif name.endswith(".parquet"):
        raw = {k: python_values(v) for k, v in read_parquet_columns(path).items()}
    elif name.endswith((".tsv", ".tsv.gz", ".tab")):
        raw = {k: python_values(v) for k, v in read_csv_columns(path, "\t").items()}
    elif name.endswith((".csv", ".csv.gz")):
        raw = {k: python_values(v) for k, v in read_csv_columns(path).items()}
    else:
        raise EdgerecError(f"{path}: unknown feature table format; expected {FORMATS}")
    key = _id_column_name(raw, side, cfg, source)
    ids = id_column(raw[key], source)
    distinct, counts = np.unique(ids, return_counts=True)
    if len(distinct) < len(ids):
        dup = distinct[np.argmax(counts > 1)]
        raise EdgerecError(f"{path}: {side} id {shown(dup.item())} appears on {counts.max()} rows; ids must be unique")
    columns = {k: [_cell(v) for v in values] for k, values in raw.items() if k != key}
    return FeatureTable(source, key, ids, columns)


def _id_column_name(raw: dict[str, list], side: Side, cfg: FeatureConfig, source: str) -> str:
    names = sorted(raw)
    if cfg.id_column is not None:
        if cfg.id_column not in raw:
            raise EdgerecError(f"{source}: no id column {cfg.id_column!r}; columns are {names}")
        return cfg.id_column
    for candidate in ID_CANDIDATES[side]:
        if candidate in raw:
            return candidate
    raise EdgerecError(
        f"{source}: no {side} id column (looked for {', '.join(ID_CANDIDATES[side])}); columns are {names} "
        "(name it with id_column)"
    )


def _cell(v: object) -> Value:
    """A cell as text or a number; empty strings and NaN are missing."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int | float):
        return float(v)
    text = str(v).strip()
    return text or None


def _read_dat(path: Path) -> dict[str, list]:
    """MovieLens-1M users.dat (UserID::Gender::Age::Occupation::Zip-code) or movies.dat (MovieID::Title (Year)::
    Genres, ISO-8859-1), told apart by their number of fields; movies.dat's year is split from the title."""
    lines = [ln for ln in read_text(path).splitlines() if ln.strip()]
    if not lines:
        raise EdgerecError(f"{path}: the file is empty")
    width = len(lines[0].split("::"))
    if width not in DAT_COLUMNS:
        raise EdgerecError(
            f"{path}: expected MovieLens users.dat (5 '::'-separated fields) or movies.dat (3); line 1 has {width}"
        )
    names = DAT_COLUMNS[width]
    cols: dict[str, list] = {n: [] for n in names}
    for n, ln in enumerate(lines, 1):
        fields = ln.split("::")
        if len(fields) != width:
            raise EdgerecError(f"{path}: line {n} has {len(fields)} '::'-separated fields, line 1 has {width}")
        if width == 3:
            m = _YEAR.match(fields[1])
            title, year = (m.group(1), m.group(2)) if m else (fields[1], None)
            fields = [fields[0], title, year, fields[2]]
        for name, v in zip(names, fields, strict=True):
            cols[name].append(v)
    return cols


# -- kinds ---------------------------------------------------------------------------------------------------------


def _number(v: Value) -> float | None:
    if isinstance(v, float):
        return v
    try:
        x = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def infer_kind(name: str, values: list[Value], cfg: FeatureConfig) -> ColumnKind:
    """A column's kind from its name and values: numbers are categories when they are few distinct integers,
    ignored when every row has its own integer and the name ends in "id" (another identifier), else numeric; text
    holding the separator is multi-valued; text that is mostly several words, or has some of several words and
    mostly distinct values (titles), is text; other text categorical; a column with no value is ignored."""
    present = [v for v in values if v is not None]
    if not present:
        return "ignore"
    numbers = [_number(v) for v in present]
    if all(x is not None for x in numbers):
        integral = all(float(x).is_integer() for x in numbers)  # type: ignore[arg-type]
        distinct = len(set(numbers))
        if integral and distinct <= INFER_CATEGORICAL_MAX:
            return "categorical"
        if integral and distinct == len(present) and name.lower().endswith("id"):
            return "ignore"
        return "numeric"
    text = [str(v) for v in present]
    if any(cfg.separator in t for t in text):
        return "multi"
    words = sum(len(t.split()) > 1 for t in text)
    if words * 2 >= len(text) or (words and len(set(text)) * 2 >= len(text)):
        return "text"
    return "categorical"


# -- the encoder ---------------------------------------------------------------------------------------------------


def _category(v: Value) -> str:
    """A category's name: integral numbers without ".0", so 3 from Parquet and "3" from CSV are one category."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _grams(text: str, max_tokens: int) -> list[str]:
    words = _WORD.findall(text.lower())
    grams = [*words, *(f"{a} {b}" for a, b in itertools.pairwise(words))]
    return list(dict.fromkeys(grams))[:max_tokens]


@dataclass(frozen=True)
class ColumnEncoder:
    """One column's share of the value space: `offset` is its reserved index, its values follow."""

    name: str
    kind: Literal["categorical", "multi", "numeric", "scaled", "text"]
    offset: int
    vocab: tuple[str, ...] = ()  # categorical, multi: categories by index - offset - 1
    edges: tuple[float, ...] = ()  # numeric: bucket b holds edges[b-1] <= x < edges[b]
    mean: float = 0.0  # scaled: (x - mean) / scale
    scale: float = 1.0
    buckets: int = 0  # text: hash buckets
    separator: str = "|"  # multi
    max_tokens: int = 0  # text

    @property
    def size(self) -> int:
        """Indices the column takes, its reserved one included."""
        values = {"categorical": len(self.vocab), "multi": len(self.vocab), "numeric": len(self.edges) + 1}
        return 1 + values.get(self.kind, 1 if self.kind == "scaled" else self.buckets)

    def encode(self, v: Value, counts: Counter) -> list[tuple[int, float]]:
        """A cell as (index, weight) pairs whose weights sum to 1 (a scaled number: its z-score); counts gets
        'missing', 'unknown', 'invalid'."""
        if v is None:
            counts["missing"] += 1
            return [(self.offset, 1.0)]
        if self.kind in ("categorical", "multi"):
            cats = [_category(v)] if self.kind == "categorical" else self._split(v)
            if not cats:
                counts["missing"] += 1
                return [(self.offset, 1.0)]
            index = self._index
            found = [index.get(c, self.offset) for c in cats]
            counts["unknown"] += sum(i == self.offset for i in found)
            return _mean(found)
        if self.kind == "text":
            grams = _grams(str(v), self.max_tokens)
            if not grams:
                counts["missing"] += 1
                return [(self.offset, 1.0)]
            return _mean([self.offset + 1 + _hash(self.name, g, self.buckets) for g in grams])
        x = _number(v)
        if x is None:
            counts["invalid"] += 1
            return [(self.offset, 1.0)]
        if self.kind == "numeric":
            return [(self.offset + 1 + int(np.searchsorted(self.edges, x, side="right")), 1.0)]
        return [(self.offset + 1, float(np.clip((x - self.mean) / self.scale, -Z_CLIP, Z_CLIP)))]

    @property
    def width(self) -> int:
        """The most (index, weight) pairs a cell encodes to (repeated indices are merged)."""
        if self.kind == "multi":
            return len(self.vocab) + 1
        if self.kind == "text":
            return max(1, min(self.max_tokens, self.buckets))
        return 1

    def _split(self, v: Value) -> list[str]:
        parts = (p.strip() for p in _category(v).split(self.separator))
        return list(dict.fromkeys(p for p in parts if p))

    @property
    def _index(self) -> dict[str, int]:
        cached = self.__dict__.get("_index_cache")
        if cached is None:
            cached = {c: self.offset + 1 + k for k, c in enumerate(self.vocab)}
            object.__setattr__(self, "_index_cache", cached)
        return cached

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "kind": self.kind, "offset": self.offset}
        if self.kind in ("categorical", "multi"):
            d["vocab"] = list(self.vocab)
        if self.kind == "multi":
            d["separator"] = self.separator
        if self.kind == "numeric":
            d["edges"] = list(self.edges)
        if self.kind == "scaled":
            d["mean"], d["scale"] = self.mean, self.scale
        if self.kind == "text":
            d["buckets"], d["max_tokens"], d["hash"] = self.buckets, self.max_tokens, "crc32"
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ColumnEncoder:
        return cls(
            name=str(d["name"]),
            kind=d["kind"],
            offset=int(d["offset"]),
            vocab=tuple(str(c) for c in d.get("vocab", ())),
            edges=tuple(float(e) for e in d.get("edges", ())),
            mean=float(d.get("mean", 0.0)),
            scale=float(d.get("scale", 1.0)),
            buckets=int(d.get("buckets", 0)),
            separator=str(d.get("separator", "|")),
            max_tokens=int(d.get("max_tokens", 0)),
        )


def _hash(column: str, gram: str, buckets: int) -> int:
    """A stable hash (crc32, the same in every process and on every machine) of a column's word gram."""
    return zlib.crc32(f"{column}\x1f{gram}".encode()) % buckets


def _mean(indices: list[int]) -> list[tuple[int, float]]:
    """Equal weights summing to 1; a repeated index (several unknown values) once with their summed weight."""
    counts = Counter(indices)
    return [(i, c / len(indices)) for i, c in counts.items()]


def _fit_column(name: str, kind: ColumnKind, values: list[Value], offset: int, cfg: FeatureConfig) -> ColumnEncoder:
    if kind in ("categorical", "multi"):
        if kind == "categorical":
            seen = Counter(_category(v) for v in values if v is not None)
        else:
            probe = ColumnEncoder(name, "multi", offset, separator=cfg.separator)
            seen = Counter(c for v in values if v is not None for c in probe._split(v))
        vocab = sorted((c for c, n in seen.items() if n >= cfg.min_count), key=lambda c: (-seen[c], c))
        return ColumnEncoder(name, kind, offset, vocab=tuple(vocab), separator=cfg.separator)
    if kind == "text":
        return ColumnEncoder(name, "text", offset, buckets=cfg.hash_buckets, max_tokens=cfg.max_tokens)
    numbers = np.asarray([x for x in map(_number, values) if x is not None], dtype=np.float64)
    if cfg.numeric == "scaled":
        mean = float(numbers.mean()) if len(numbers) else 0.0
        std = float(numbers.std()) if len(numbers) else 0.0
        return ColumnEncoder(name, "scaled", offset, mean=mean, scale=std if std > 0 else 1.0)
    inner = np.linspace(0, 1, cfg.quantiles + 1)[1:-1]
    edges = np.unique(np.quantile(numbers, inner)) if len(numbers) else np.zeros(0)
    return ColumnEncoder(name, "numeric", offset, edges=tuple(float(e) for e in edges))


@dataclass(frozen=True)
class Encoded:
    """Embedding-bag input for n rows: indices into the value space and their weights, padded with PAD / 0."""

    indices: np.ndarray  # [n, width] int64
    weights: np.ndarray  # [n, width] float32

    @property
    def mask(self) -> np.ndarray:
        """[n, width] bool: the entries that are not padding."""
        return self.indices != PAD

    def __len__(self) -> int:
        return len(self.indices)


@dataclass(frozen=True)
class Encoder:
    """Every column's encoder over one value space of `size` indices (0 is padding)."""

    side: Side
    id_column: str
    columns: tuple[ColumnEncoder, ...]

    @property
    def size(self) -> int:
        return 1 + sum(c.size for c in self.columns)

    @classmethod
    def fit(cls, table: FeatureTable, rows: np.ndarray, side: Side, cfg: FeatureConfig = FeatureConfig()) -> Encoder:
        """Vocabularies, bucket edges and scales from the table's `rows` (those of the training users or items);
        every column of the table but the id, in its declared or inferred kind ("ignore" left out)."""
        unknown = sorted(set(cfg.kinds) - set(table.columns))
        if unknown:
            raise EdgerecError(f"{table.source}: no column {unknown[0]!r} (declared a kind); columns are "
                               f"{sorted(table.columns)}")  # fmt: skip
        offset, encoders = 1, []
        for name, values in table.columns.items():
            fit_values = [values[r] for r in rows]
            kind = cfg.kinds.get(name) or infer_kind(name, fit_values, cfg)
            if kind == "ignore":
                continue
            enc = _fit_column(name, kind, fit_values, offset, cfg)
            encoders.append(enc)
            offset += enc.size
        if not encoders:
            raise EdgerecError(f"{table.source}: no feature column besides the id {table.id_column!r} (all ignored)")
        return cls(side, table.id_column, tuple(encoders))

    def encode(self, table: FeatureTable, rows: np.ndarray) -> tuple[Encoded, dict[str, Counter]]:
        """The table's `rows` encoded (row -1: an id the table lacks, every column missing), and per column the
        counts of missing, unknown and invalid values."""
        counts = {c.name: Counter() for c in self.columns}
        missing = [c.name for c in self.columns if c.name not in table.columns]
        if missing:
            raise EdgerecError(f"{table.source}: no column {missing[0]!r}, which the encoder was fitted with")
        cells: list[list[tuple[int, float]]] = []
        for r in rows.tolist():
            row: list[tuple[int, float]] = []
            for c in self.columns:
                row.extend(c.encode(None if r < 0 else table.columns[c.name][r], counts[c.name]))
            cells.append(row)
        width = max((len(r) for r in cells), default=1)
        indices = np.full((len(cells), width), PAD, dtype=np.int64)
        weights = np.zeros((len(cells), width), dtype=np.float32)
        for k, row in enumerate(cells):
            indices[k, : len(row)] = [i for i, _ in row]
            weights[k, : len(row)] = [w for _, w in row]
        return Encoded(indices, weights), counts

    def encode_ids(self, table: FeatureTable | None, ids: np.ndarray) -> Encoded:
        """Rows for these original ids (new users or items), encoded exactly as the training rows were (without a
        table, or for an id it lacks: every column missing)."""
        if table is None:
            empty = {c.name: [] for c in self.columns}
            return self.encode(FeatureTable("", self.id_column, np.zeros(0, np.int64), empty), np.full(len(ids), -1))[0]
        return self.encode(table, join(table, ids))[0]

    @property
    def width(self) -> int:
        """The most (index, weight) pairs one row can encode to: a fixed-length input holds any row."""
        return sum(c.width for c in self.columns)

    def encode_attributes(self, attributes: Mapping[str, Any], where: str = "attributes") -> tuple[Encoded, Counter]:
        """One row from raw attribute values by column name (text, numbers, booleans or None), encoded exactly as a
        table row, padded to `width`; and the counts of missing, unknown and invalid values over its columns (a
        column not given is missing; the id column is allowed and ignored). A name the encoder does not know or a
        value that is not a scalar is a one-line error."""
        if not isinstance(attributes, Mapping):
            raise EdgerecError(f"{where}: expected a mapping of column name -> value; got {type(attributes).__name__}")
        names = {c.name for c in self.columns}
        for key, value in attributes.items():
            if key not in names and key != self.id_column:
                raise EdgerecError(f"{where}: no {self.side} feature column {shown(key)}; columns are {sorted(names)}")
            if value is not None and not isinstance(value, str | int | float | bool | np.generic):
                raise EdgerecError(f"{where}: {key!r} must be text or a number; got {type(value).__name__}")
        columns = {c.name: [_cell(attributes.get(c.name))] for c in self.columns}
        table = FeatureTable(where, self.id_column, np.zeros(1, dtype=np.int64), columns)
        encoded, counts = self.encode(table, np.zeros(1, dtype=np.int64))
        extra = self.width - encoded.indices.shape[1]
        padded = Encoded(np.pad(encoded.indices, ((0, 0), (0, extra))), np.pad(encoded.weights, ((0, 0), (0, extra))))
        return padded, sum(counts.values(), Counter())

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "side": self.side,
            "id_column": self.id_column,
            "size": self.size,
            "columns": [c.to_json() for c in self.columns],
        }

    @classmethod
    def from_json(cls, d: Any, where: str = "feature encoder") -> Encoder:
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise EdgerecError(f"{where}: not an edgerec feature encoder (format {FORMAT!r})")
        if d.get("format_version") != FORMAT_VERSION:
            raise EdgerecError(f"{where}: feature encoder version {d.get('format_version')} is not {FORMAT_VERSION}")
        try:
            enc = cls(d["side"], str(d["id_column"]), tuple(ColumnEncoder.from_json(c) for c in d["columns"]))
        except (KeyError, TypeError, ValueError) as e:
            raise EdgerecError(f"{where}: malformed feature encoder ({type(e).__name__}: {e})") from None
        if enc.size != d.get("size"):
            raise EdgerecError(f"{where}: the columns take {enc.size} indices, the encoder says {d.get('size')}")
        return enc


def join(table: FeatureTable, ids: np.ndarray) -> np.ndarray:
    """[len(ids)] the table row of each original id, -1 where the table has none (ids compared as the same kind:
    integers, or text when either side is text)."""
    keys, wanted = table.ids, np.asarray(ids)
    if keys.dtype.kind not in "iu" or wanted.dtype.kind not in "iu":
        keys, wanted = keys.astype(str), wanted.astype(str)
    order = np.argsort(keys, kind="stable")
    pos = np.minimum(np.searchsorted(keys[order], wanted), len(keys) - 1)
    found = keys[order][pos] == wanted
    return np.where(found, order[pos], -1).astype(np.int64)


def pool(values: np.ndarray, encoded: Encoded) -> np.ndarray:
    """[n, dim]: what an embedding bag in "sum" mode over `values` [size, dim] returns for `encoded` with its weights
    as per-sample weights (padding rows weigh 0)."""
    return np.einsum("nw,nwd->nd", encoded.weights.astype(values.dtype), values[encoded.indices])


@dataclass(frozen=True)
class FeatureReport:
    """How a table met the data: ids matched, ids it lacks, rows it has for no id; per column the kind, the values
    and the counts of missing, unknown (or rare) and invalid values over the encoded rows."""

    source: str
    side: Side
    id_column: str
    ids: int  # the data's ids
    matched: int
    without_row: int  # data ids the table lacks (every column missing)
    unused_rows: int  # table rows for ids the data does not have
    columns: tuple[dict[str, Any], ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "side": self.side,
            "id_column": self.id_column,
            "ids": self.ids,
            "matched": self.matched,
            "without_row": self.without_row,
            "unused_rows": self.unused_rows,
            "columns": list(self.columns),
        }


@dataclass(frozen=True)
class SideFeatures:
    """One side's features on a data set's id maps: the encoder fitted on them, their encoding by dense index."""

    encoder: Encoder
    encoded: Encoded
    report: FeatureReport


def side_features(
    table: FeatureTable, ids: np.ndarray, side: Side, cfg: FeatureConfig = FeatureConfig()
) -> SideFeatures:
    """The table joined to `ids` (the data's original ids by dense index), its encoder fitted on the matched rows
    and every id encoded. A table that matches none of the ids is refused."""
    rows = join(table, ids)
    matched = int((rows >= 0).sum())
    if matched == 0:
        raise EdgerecError(
            f"{table.source}: none of its {len(table)} {side} ids is among the data's {len(ids)} (e.g. "
            f"{shown(table.ids[0].item())} vs {shown(np.asarray(ids)[0].item())}); is it the {side} table of this "
            f"data, keyed by the same ids (id column {table.id_column!r})?"
        )
    encoder = Encoder.fit(table, rows[rows >= 0], side, cfg)
    encoded, counts = encoder.encode(table, rows)
    columns = tuple(
        {
            "name": c.name,
            "kind": c.kind,
            "values": c.size - 1,
            **{k: counts[c.name][k] for k in ("missing", "unknown", "invalid")},
        }
        for c in encoder.columns
    )
    report = FeatureReport(table.source, side, table.id_column, len(ids), matched, len(ids) - matched,
                           len(table) - matched, columns)  # fmt: skip
    return SideFeatures(encoder, encoded, report)


def load_side_features(
    path: str | Path, ids: np.ndarray, side: Side, cfg: FeatureConfig = FeatureConfig()
) -> SideFeatures:
    """read_features then side_features."""
    return side_features(read_features(path, side, cfg), ids, side, cfg)


# -- a trained feature model's side of a checkpoint (torch-free, so that its numpy readers fold it too) -------------

FEATURES_JSON, FEATURES_TENSORS = "features.json", "features.safetensors"  # files attached to a checkpoint
BAG_SUFFIX = "_features.weight"  # a feature bag's weight beside its id table: gmf_item_features.weight


def encoded_tensors(encoded: dict[str, Encoded]) -> dict[str, np.ndarray]:
    """features.safetensors' tensors: each side's indices and weights."""
    out = {}
    for side, enc in encoded.items():
        out[f"{side}.indices"], out[f"{side}.weights"] = enc.indices, enc.weights
    return out


def encoded_from_tensors(tensors: dict[str, np.ndarray], where: str) -> dict[str, Encoded]:
    sides = sorted({k.split(".")[0] for k in tensors})
    try:
        out = {s: Encoded(tensors[f"{s}.indices"].astype(np.int64), tensors[f"{s}.weights"]) for s in sides}
    except KeyError as e:
        raise EdgerecError(f"{where}: no tensor {e}") from None
    if any(s not in ("user", "item") or e.indices.shape != e.weights.shape for s, e in out.items()):
        raise EdgerecError(f"{where}: expected user / item indices and weights of one shape per side")
    return out


def fold_weights(weights: dict[str, np.ndarray], encoded: dict[str, Encoded]) -> dict[str, np.ndarray]:
    """A feature model's weights as a plain NeuMF's: each id table plus its side's pooled feature values (the very
    rows the model reads for a known id), the embedding bags left out. The one place the feature folding happens."""
    out = {k: v for k, v in weights.items() if not k.endswith(BAG_SUFFIX)}
    for key, bag in weights.items():
        if key.endswith(BAG_SUFFIX):
            table = key.removesuffix(BAG_SUFFIX)
            rows = weights[f"{table}.weight"]
            pooled = pool(bag.astype(np.float64), encoded[table.rsplit("_", 1)[1]])
            out[f"{table}.weight"] = (rows.astype(np.float64) + pooled).astype(rows.dtype)
    return out


@dataclass(frozen=True)
class FeaturePath:
    """One side's feature path of a trained feature model, what scores an id it never saw: the encoder and the
    feature bag of each tower ([encoder.size, dim]); a new id's vectors are the pooled bags (its id rows are zero)."""

    encoder: Encoder
    gmf: np.ndarray  # [size, g]
    mlp: np.ndarray  # [size, d]

    @classmethod
    def of(cls, weights: dict[str, np.ndarray], encoder: Encoder) -> FeaturePath:
        """From a feature model's weights (BAG_SUFFIX tables) and the side's encoder."""
        side = encoder.side
        try:
            gmf, mlp = weights[f"gmf_{side}{BAG_SUFFIX}"], weights[f"mlp_{side}{BAG_SUFFIX}"]
        except KeyError:
            raise EdgerecError(f"the model has no {side} feature bags in both towers (a NeuMF with features)") from None
        if len(gmf) != encoder.size or len(mlp) != encoder.size:
            raise EdgerecError(f"the {side} feature bags have {len(gmf)} rows, the encoder {encoder.size}")
        return cls(encoder, gmf, mlp)

    def vectors(self, encoded: Encoded) -> tuple[np.ndarray, np.ndarray]:
        """([n, g], [n, d]): the vectors of these encoded rows (what the model's feature path gives a new id)."""
        return pool(self.gmf, encoded), pool(self.mlp, encoded)


def checkpoint_feature_record(folder: Path, config: dict[str, Any]) -> dict[str, Any]:
    """A feature checkpoint's features.json (encoders, id dropout, table reports), hash-checked against config.json."""
    path = Path(folder) / FEATURES_JSON
    raw = read_bytes(path, "a JSON file", missing="missing (config.json lists features)")
    if sha256_bytes(raw) != config.get("extra_files", {}).get(FEATURES_JSON):
        raise EdgerecError(f"{path}: sha256 does not match config.json: the file was changed or corrupt")
    record = parse_json(raw, path)
    if not isinstance(record, dict):
        raise EdgerecError(f"{path}: malformed features record (not a JSON object)")
    return record


def checkpoint_features(folder: Path, config: dict[str, Any]) -> dict[str, Encoded] | None:
    """A checkpoint folder's encoded features (hash-checked against config.json), None when it has none."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    expected = config.get("extra_files", {}).get(FEATURES_TENSORS)
    if expected is None:
        return None
    path = Path(folder) / FEATURES_TENSORS
    raw = read_bytes(path, missing="missing (config.json lists it)")
    if sha256_bytes(raw) != expected:
        raise EdgerecError(f"{path}: sha256 does not match config.json: the file was changed or is corrupt")
    try:
        return encoded_from_tensors(load(raw), str(path))
    except SafetensorError as e:
        raise EdgerecError(f"{path}: unreadable safetensors file ({e})") from None
