"""The in-memory form of implicit feedback: dense user/item indices plus the maps back to the original ids."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgerec.errors import EdgerecError
from edgerec.io import read_json

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Interactions:
    """Implicit-feedback interactions over dense indices.

    users[k], items[k] index into user_ids / item_ids, which hold the original ids (ints or strings).
    timestamps and ratings are optional per-interaction columns (ratings are the label of the rating objective
    only, edgerec.data.ratings; otherwise every interaction is a positive).
    """

    users: np.ndarray  # [n] int64 in [0, n_users)
    items: np.ndarray  # [n] int64 in [0, n_items)
    user_ids: np.ndarray  # [n_users] original user ids
    item_ids: np.ndarray  # [n_items] original item ids
    timestamps: np.ndarray | None = None  # [n] int64
    ratings: np.ndarray | None = None  # [n] float32
    stats: dict[str, int] = field(default_factory=dict, compare=False)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def __len__(self) -> int:
        return len(self.users)

    def keys(self) -> np.ndarray:
        """[n] int64 key user * n_items + item, unique per (user, item) pair."""
        return self.users * self.n_items + self.items

    def subset(self, mask: np.ndarray) -> Interactions:
        """Rows where mask is true; the id maps (and so every index) stay as they are."""
        return Interactions(
            users=self.users[mask],
            items=self.items[mask],
            user_ids=self.user_ids,
            item_ids=self.item_ids,
            timestamps=None if self.timestamps is None else self.timestamps[mask],
            ratings=None if self.ratings is None else self.ratings[mask],
        )

    def item_counts(self) -> np.ndarray:
        """[n_items] number of interactions per item (popularity)."""
        return np.bincount(self.items, minlength=self.n_items)

    def user_counts(self) -> np.ndarray:
        return np.bincount(self.users, minlength=self.n_users)

    @classmethod
    def from_raw(
        cls,
        users: np.ndarray,
        items: np.ndarray,
        timestamps: np.ndarray | None = None,
        ratings: np.ndarray | None = None,
        *,
        source: str = "data",
    ) -> Interactions:
        """Build from original ids: assigns dense indices (sorted order of the ids) and removes duplicate pairs.

        A duplicated (user, item) pair keeps its latest timestamp (or its first row without timestamps); the number
        of duplicates removed is logged and recorded in stats["duplicates"].
        """
        users, items = np.asarray(users), np.asarray(items)
        if len(users) == 0:
            raise EdgerecError(f"{source}: no interactions found (the file is empty)")
        user_ids, u = dense_ids(users)
        item_ids, i = dense_ids(items)
        inter = cls(
            users=u.astype(np.int64).ravel(),
            items=i.astype(np.int64).ravel(),
            user_ids=user_ids,
            item_ids=item_ids,
            timestamps=None if timestamps is None else np.asarray(timestamps, dtype=np.int64),
            ratings=None if ratings is None else np.asarray(ratings, dtype=np.float32),
        )
        return inter.deduplicated(source)

    def deduplicated(self, source: str = "data") -> Interactions:
        keys = self.keys()
        if self.timestamps is None:
            order = np.arange(len(keys))
        else:  # latest timestamp first among duplicates; stable, so ties keep the earliest row
            order = np.lexsort((np.arange(len(keys)), -self.timestamps))
        _, first = np.unique(keys[order], return_index=True)
        keep = np.sort(order[first])
        dups = len(keys) - len(keep)
        if dups == 0:
            out = self
        else:
            log.warning("%s: removed %d duplicate (user, item) interactions", source, dups)
            out = self.subset(keep)
        return Interactions(
            out.users, out.items, out.user_ids, out.item_ids, out.timestamps, out.ratings, {"duplicates": dups}
        )


def dense_ids(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(values, return_inverse=True): the sorted distinct ids and each value's index among them. Integer
    ids over a range at most a few times their count (MovieLens, most catalogs) take a counting pass instead of a
    sort: the same arrays, 1.0 s instead of 5.6 s for 20 M ids."""
    if values.dtype.kind in "iu" and len(values):
        low, high = int(values.min()), int(values.max())
        if high - low <= max(1 << 24, 4 * len(values)):
            offset = values - low
            present = np.bincount(offset, minlength=high - low + 1) > 0
            index = np.cumsum(present) - 1
            return np.flatnonzero(present).astype(values.dtype) + values.dtype.type(low), index[offset]
    return np.unique(values, return_inverse=True)


def fingerprint(*arrays: np.ndarray) -> str:
    """sha256 over the arrays' dtypes, shapes and bytes: identifies a data set in checkpoints and manifests."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        if a.dtype == object or a.dtype.kind == "U":
            a = np.asarray([str(x) for x in a.ravel()], dtype=object)
            data = "\x1f".join(a).encode()
        else:
            data = a.tobytes()
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(data)
    return h.hexdigest()


def ids_to_list(ids: np.ndarray) -> list[int] | list[str]:
    """Original ids as a JSON-friendly list (ints stay ints)."""
    if ids.dtype.kind in "iu":
        return [int(x) for x in ids]
    return [str(x) for x in ids]


def ids_from_list(values: list[int] | list[str]) -> np.ndarray:
    if all(isinstance(v, int) for v in values):
        return np.asarray(values, dtype=np.int64)
    return np.asarray([str(v) for v in values])


def load_id_maps(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """An id_maps.json of a checkpoint or an artifact: (user ids, item ids), the original ids by dense index."""
    maps = read_json(path)
    if not isinstance(maps, dict) or not all(isinstance(maps.get(k), list) for k in ("users", "items")):
        raise EdgerecError(f"{path}: expected lists under 'users' and 'items'")
    return ids_from_list(maps["users"]), ids_from_list(maps["items"])
