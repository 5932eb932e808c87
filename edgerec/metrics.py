"""Ranking metrics over any score function: HR@K and NDCG@K on the sampled-negatives protocol and on full ranking.

A ScoreFn is any function score(users [B] int64, items [B] int64) -> [B] float (higher = more relevant): a wrapped
PyTorch model, an artifact's runtime.Scorer, ItemPop all fit. This module needs numpy only.

Ties count against the test item (it ranks below every item with an equal score), as in the paper's code, where
the test item is appended last and heapq.nlargest keeps the earlier of equal items. A negative equal to the test
item (156 lines of the original ML-1M negatives file) is skipped, as the paper's code does by keying scores on
item id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from edgerec.data.interactions import Interactions
from edgerec.data.ratings import Ratings
from edgerec.data.split import Dataset, positive_keys
from edgerec.io import SavesJson

ScoreFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
PROTOCOL = "sampled-99-negatives-leave-one-out"
# full ranking scores every item for each test user; beyond this many (user, item) pairs it ranks a seeded sample of
# the test users (at least MIN_FULL_USERS) and reports the sample's size and 95 % confidence half-widths
FULL_PAIRS = 1 << 27
MIN_FULL_USERS = 1000
FULL_SAMPLE_SEED = 0


def full_sample_size(ds: Dataset) -> int:
    """How many test users full ranking scores: all of them when users x items fits FULL_PAIRS."""
    return min(len(ds.test_users), max(MIN_FULL_USERS, FULL_PAIRS // max(ds.n_items, 1)))


def agreement_users(ds: Dataset) -> np.ndarray | None:
    """The users whose catalog top-10 lists an agreement check compares: None (every user) while full ranking
    covers every test user, else full ranking's seeded sample of test users (bounds users x items at scale)."""
    n = full_sample_size(ds)
    return None if n >= len(ds.test_users) else ds.test_sample(n, FULL_SAMPLE_SEED).test_users


def hr_ndcg(ranks: np.ndarray, k: int = 10) -> tuple[float, float]:
    """ranks: [T] 0-based rank of each test item. HR@K = share with rank < K; NDCG@K = mean 1/log2(rank + 2)."""
    ranks = np.asarray(ranks)
    hit = ranks < k
    return float(hit.mean()), float(np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0).mean())


def sampled_ranks(scorer: ScoreFn, ds: Dataset, chunk: int = 1024) -> np.ndarray:
    """[T] rank of each test item among its sampled negatives."""
    out = []
    for s in range(0, len(ds.test_users), chunk):
        u, pos, neg = ds.test_users[s : s + chunk], ds.test_items[s : s + chunk], ds.test_negatives[s : s + chunk]
        items = np.concatenate([pos[:, None], neg], axis=1)  # [c, 1 + N]
        users = np.repeat(u, items.shape[1])
        scores = np.asarray(scorer(users, items.ravel()), dtype=np.float64).reshape(items.shape)
        valid = neg != pos[:, None]
        out.append(((scores[:, 1:] >= scores[:, :1]) & valid).sum(axis=1))
    return np.concatenate(out)


def catalog_scores(
    scorer: ScoreFn, users: np.ndarray, train: Interactions, chunk_pairs: int = 400_000
) -> Iterator[tuple[slice, np.ndarray]]:
    """Yield (slice of users, [c, n_items] scores) for every item, with the user's train items set to -inf."""
    n_items = train.n_items
    known = positive_keys(train)  # sorted by user, then item: each user's train items are one run
    chunk = max(1, chunk_pairs // n_items)
    all_items = np.arange(n_items, dtype=np.int64)
    for s in range(0, len(users), chunk):
        u = users[s : s + chunk]
        pairs_u, pairs_i = np.repeat(u, n_items), np.tile(all_items, len(u))
        scores = np.asarray(scorer(pairs_u, pairs_i), dtype=np.float64).reshape(len(u), n_items)
        lo, hi = np.searchsorted(known, u * n_items), np.searchsorted(known, (u + 1) * n_items)
        rows = np.repeat(np.arange(len(u)), hi - lo)
        runs = np.concatenate([known[a:b] for a, b in zip(lo, hi, strict=True)]) if len(u) else known[:0]
        scores[rows, runs - u[rows] * n_items] = -np.inf
        yield slice(s, s + len(u)), scores


def full_ranks(scorer: ScoreFn, ds: Dataset) -> np.ndarray:
    """[T] rank of each test item among every item the user has not interacted with in train."""
    return catalog_pass(scorer, ds, k=0, users=ds.test_users[:0])[0]


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """[c, k] indices of the k largest scores per row, best first."""
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def catalog_top_k(scorer: ScoreFn, ds: Dataset, k: int = 10, users: np.ndarray | None = None) -> np.ndarray:
    """[users, k] each user's k best items over the whole catalog, train items excluded."""
    return catalog_pass(scorer, ds, k, users, ranks=False)[1]


def catalog_pass(
    scorer: ScoreFn, ds: Dataset, k: int = 10, users: np.ndarray | None = None, ranks: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Full ranking and catalog top-K in one pass over the catalog (train items excluded), each user scored once:
    ([T] rank of each of ds's test items among every item its user has not interacted with in train, empty without
    `ranks`; [len(users), k] the k best items of each of `users` (default every user), best first)."""
    want = np.arange(ds.n_users, dtype=np.int64) if users is None else np.asarray(users, dtype=np.int64)
    test_users = ds.test_users if ranks else ds.test_users[:0]
    every = np.union1d(want, test_users)  # sorted: the users scored
    at = np.searchsorted(every, test_users)  # each test row's place among them
    order = np.argsort(at, kind="stable")
    out_ranks = np.zeros(len(test_users), dtype=np.int64)
    top = np.empty((len(every), k), dtype=np.int64)
    for sl, scores in catalog_scores(scorer, every, ds.train):
        if k:
            top[sl] = top_k(scores, k)
        a, b = np.searchsorted(at[order], [sl.start, sl.stop])
        rows = order[a:b]  # the test rows of this chunk's users
        local, items = at[rows] - sl.start, ds.test_items[rows]
        beats = scores[local] >= scores[local, items][:, None]
        beats[np.arange(len(rows)), items] = False
        out_ranks[rows] = beats.sum(axis=1)
    return out_ranks, top[np.searchsorted(every, want)]


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Mean Jaccard similarity of two [users, k] lists of top-K items."""
    k = a.shape[1]
    inter = (a[:, :, None] == b[:, None, :]).any(axis=2).sum(axis=1)
    return float((inter / (2 * k - inter)).mean())


def top_k_agreement(a: ScoreFn, b: ScoreFn, ds: Dataset, k: int = 10, users: np.ndarray | None = None) -> float:
    """Mean Jaccard similarity of the two scorers' top-K lists over the whole catalog (train items excluded),
    over all users (or the given ones). 1.0 = identical recommendations."""
    return jaccard(catalog_top_k(a, ds, k, users), catalog_top_k(b, ds, k, users))


def evaluate(
    scorer: ScoreFn, ds: Dataset, k: int = 10, full: bool = True, ranks: np.ndarray | None = None
) -> dict[str, float | int | str]:
    """The metrics.json record: sampled HR@K / NDCG@K under "hr@K" / "ndcg@K", full ranking under "full_*" (from
    `ranks` when given: full_ranks over full ranking's users, as evaluate_with_top_k computes them)."""
    hr, ndcg = hr_ndcg(sampled_ranks(scorer, ds), k)
    res: dict[str, float | int | str] = {"protocol": PROTOCOL, f"hr@{k}": hr, f"ndcg@{k}": ndcg}
    if full:
        n = full_sample_size(ds)
        ranks = full_ranks(scorer, ds.test_sample(n, FULL_SAMPLE_SEED)) if ranks is None else ranks
        fhr, fndcg = hr_ndcg(ranks, k)
        res.update({f"full_hr@{k}": fhr, f"full_ndcg@{k}": fndcg, "full_protocol": "full-ranking-unseen-items"})
        if n < len(ds.test_users):  # a seeded sample: say how sure the numbers are (normal approximation)
            gains = np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)
            res.update(
                {
                    "full_users": n,
                    "full_sample_seed": FULL_SAMPLE_SEED,
                    f"full_hr@{k}_ci95": 1.96 * float(np.sqrt(fhr * (1 - fhr) / n)),
                    f"full_ndcg@{k}_ci95": 1.96 * float(gains.std() / np.sqrt(n)),
                }
            )
    res["test_users"] = len(ds.test_users)
    return res


def evaluate_with_top_k(
    scorer: ScoreFn, ds: Dataset, k: int = 10, users: np.ndarray | None = None
) -> tuple[dict[str, float | int | str], np.ndarray]:
    """evaluate(scorer, ds, k) and catalog_top_k(scorer, ds, k, users) from one pass over the catalog."""
    ranks, top = catalog_pass(scorer, ds.test_sample(full_sample_size(ds), FULL_SAMPLE_SEED), k, users)
    return evaluate(scorer, ds, k, ranks=ranks), top


def item_pop_scorer(ds: Dataset) -> ScoreFn:
    """The ItemPop baseline: an item's score is its number of train interactions."""
    pop = ds.train.item_counts().astype(np.float64)
    return lambda users, items: pop[items]


def rating_errors(scorer: ScoreFn, rows: Ratings, chunk: int = 1 << 18) -> dict[str, float | int]:
    """RMSE and MAE of a rating model's predictions on rated rows (the rating objective's metrics)."""
    pred = np.concatenate(
        [np.asarray(scorer(rows.users[s : s + chunk], rows.items[s : s + chunk])) for s in range(0, len(rows), chunk)]
    )
    err = pred.astype(np.float64) - rows.ratings
    return {"rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err))), "ratings": len(rows)}


def global_mean_scorer(train: Ratings) -> ScoreFn:
    """The rating objective's floor: every pair predicted as the mean training rating."""
    mean = float(np.mean(train.ratings, dtype=np.float64))
    return lambda users, items: np.full(len(users), mean)


def set_recall_ndcg(scores: np.ndarray, relevant: np.ndarray, k: int = 10) -> dict[str, float | int]:
    """Mean Recall@K and NDCG@K of ranking a candidate set: scores [U, n] (each user's scores of the same n
    candidates), relevant [U, n] bool (the candidates that user interacted with). Recall@K = relevant candidates in
    the top K / relevant candidates; NDCG@K = DCG@K / the ideal DCG@K (min(K, relevant) hits on top). Ties count
    against a relevant candidate (it ranks below every other candidate with an equal score; relevant candidates
    tied with each other take consecutive places). Users with no relevant candidate are skipped."""
    scores, relevant = np.asarray(scores, dtype=np.float64), np.asarray(relevant, dtype=bool)
    if scores.shape != relevant.shape or scores.ndim != 2:
        raise ValueError(f"scores {scores.shape} and relevant {relevant.shape} must be the same [users, n] shape")
    rows = relevant.any(axis=1)
    scores, relevant = scores[rows], relevant[rows]
    if not len(scores):
        return {f"recall@{k}": float("nan"), f"ndcg@{k}": float("nan"), "users": 0}
    order = np.lexsort((relevant, -scores), axis=1)  # best first; among equal scores the irrelevant ones first
    top = np.take_along_axis(relevant, order[:, :k], axis=1)  # [U, k] whether each of the top K is relevant
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    n_rel = relevant.sum(axis=1)
    ideal = np.cumsum(discount)[np.minimum(n_rel, k) - 1]
    recall = top.sum(axis=1) / n_rel
    ndcg = (top * discount).sum(axis=1) / ideal
    return {f"recall@{k}": float(recall.mean()), f"ndcg@{k}": float(ndcg.mean()), "users": len(scores)}


def precision_recall_f1(top: np.ndarray, relevant: list[set[int]]) -> dict[str, float]:
    """Mean precision@K, recall@K and F1@K of top-K lists (top [U, K]) against the items each of those users went
    on to interact with (relevant[u] for row u; users with an empty set are skipped)."""
    k = top.shape[1]
    p, r, f = [], [], []
    for row, rel in zip(top, relevant, strict=True):
        if not rel:
            continue
        hits = len(rel.intersection(row.tolist()))
        p.append(hits / k)
        r.append(hits / len(rel))
        f.append(0.0 if hits == 0 else 2 * p[-1] * r[-1] / (p[-1] + r[-1]))
    if not p:
        return {f"precision@{k}": float("nan"), f"recall@{k}": float("nan"), f"f1@{k}": float("nan"), "users": 0}
    return {f"precision@{k}": float(np.mean(p)), f"recall@{k}": float(np.mean(r)), f"f1@{k}": float(np.mean(f)),
            "users": len(p)}  # fmt: skip


@dataclass(frozen=True)
class Evaluation(SavesJson):
    """A model's test metrics beside a baseline's on the same data (what `edgerec evaluate` reports): ItemPop's
    ranking metrics for an implicit model, the global mean's RMSE / MAE for a rating model."""

    model: str  # what was measured, e.g. "neumf (int8 emb, int8 MLP)": a calibrated model as it will run
    data: str
    metrics: dict[str, float | int | str]
    itempop: dict[str, float | int | str]  # the baseline's metrics (named by `baseline`)
    baseline: str = "ItemPop"  # or "global mean" (a rating model)

    def to_json(self) -> dict[str, object]:
        key = "itempop" if self.baseline == "ItemPop" else self.baseline.replace(" ", "_")
        return {**self.metrics, "model": self.model, "data": self.data, key: self.itempop}
