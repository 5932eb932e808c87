"""Columns: the column names of CSV / Parquet input; FeatureConfig: how a user or item feature table is read and
encoded (numpy-free: the CLI parses them before loading anything)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import Field

from edgerec.config import config


@dataclass(frozen=True)
class Columns:
    """Column names for CSV / Parquet input."""

    user: str = "user"
    item: str = "item"
    timestamp: str | None = "timestamp"  # used when present
    rating: str | None = "rating"  # kept when present, never used as a label


# categorical: one value per row; multi: several values in one field ("Drama|Comedy"); numeric: a number, bucketed
# by quantiles or scaled; text: short text as hashed word unigrams and bigrams; ignore: left out
ColumnKind = Literal["categorical", "multi", "numeric", "text", "ignore"]


@config
class FeatureConfig:
    """How a feature table (CSV, TSV, Parquet, MovieLens users.dat / movies.dat) becomes embedding-bag input."""

    # the column holding the original user or item id; None: the first of user / user_id / userId / id (item /
    # item_id / itemId / movie_id / movieId / id for items) the table has
    id_column: str | None = None
    # declared kinds by column name; the other columns' kinds are inferred (edgerec.data.features.infer_kind)
    kinds: dict[str, ColumnKind] = field(default_factory=dict)
    separator: Annotated[str, Field(min_length=1)] = "|"  # between the values of a multi-valued field
    numeric: Literal["quantiles", "scaled"] = "quantiles"  # numbers as quantile buckets, or one z-scored value
    quantiles: Annotated[int, Field(ge=2, le=1024)] = 10  # buckets of a numeric column (fewer when values repeat)
    hash_buckets: Annotated[int, Field(ge=1, le=1 << 20)] = 1024  # per text column
    max_tokens: Annotated[int, Field(ge=1, le=1024)] = 32  # unigrams + bigrams kept per text value
    # categories seen fewer times in the training rows share the column's reserved index with missing and unknown
    # values, so that reserved row learns what an unseen category should look like
    min_count: Annotated[int, Field(ge=1)] = 2
