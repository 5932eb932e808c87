from __future__ import annotations

import math

import numpy as np
import pytest

from edgerec.data import Interactions, leave_one_out, load_dataset, sample_negatives
from edgerec.data.split import Dataset, positive_keys
from edgerec.metrics import (
    catalog_pass,
    evaluate,
    evaluate_with_top_k,
    full_ranks,
    hr_ndcg,
    item_pop_scorer,
    sampled_ranks,
    set_recall_ndcg,
)


@pytest.fixture(scope="module")
def synth() -> Dataset:
    return load_dataset("synthetic:users=300,items=200,seed=5")


def test_test_item_is_never_in_train_and_negatives_are_never_positives(synth: Dataset) -> None:
    train_keys = set((synth.train.users * synth.n_items + synth.train.items).tolist())
    assert not any(u * synth.n_items + i in train_keys for u, i in zip(synth.test_users, synth.test_items, strict=True))
    for u, i, negs in zip(synth.test_users, synth.test_items, synth.test_negatives, strict=True):
        assert i not in negs
        assert not any(u * synth.n_items + n in train_keys for n in negs)
        assert len(set(negs.tolist())) == len(negs) == 99


def test_split_is_deterministic_under_a_seed_and_changes_with_it() -> None:
    a, b = load_dataset("synthetic:users=100,items=150", seed=1), load_dataset("synthetic:users=100,items=150", seed=1)
    c = load_dataset("synthetic:users=100,items=150", seed=2)
    assert a.fingerprint() == b.fingerprint()
    assert not np.array_equal(a.test_negatives, c.test_negatives)


def test_leave_one_out_without_timestamps_is_random_but_seeded() -> None:
    inter = Interactions.from_raw(np.repeat(np.arange(5), 4), np.arange(20) % 150 + np.repeat(np.arange(5), 4) * 0)
    inter = Interactions(inter.users, inter.items, inter.user_ids, np.arange(150))  # widen the catalogue
    a, b = leave_one_out(inter, seed=3), leave_one_out(inter, seed=3)
    assert np.array_equal(a.test_items, b.test_items) and len(a.test_users) == 5


def test_training_negatives_avoid_positives_and_are_reproducible() -> None:
    users = np.repeat(np.arange(50), 10)
    items = np.arange(500) % 20  # each user has 10 of 20 items: rejection must work hard
    inter = Interactions(users, items, np.arange(50), np.arange(20))
    known = positive_keys(inter)
    negs = sample_negatives(inter.users, 20, 4, known, np.random.default_rng(0))
    assert negs.shape == (500, 4)
    pos = set(inter.keys().tolist())
    assert not any(u * 20 + n in pos for u, row in zip(users, negs, strict=True) for n in row)
    assert np.array_equal(negs, sample_negatives(inter.users, 20, 4, known, np.random.default_rng(0)))


def test_hr_ndcg_hand_computed() -> None:
    # ranks 0, 1, 9, 10: hits for the first three; NDCG = (1 + 1/log2(3) + 1/log2(11) + 0) / 4
    hr, ndcg = hr_ndcg(np.array([0, 1, 9, 10]))
    assert hr == 0.75
    assert math.isclose(ndcg, (1 + 1 / math.log2(3) + 1 / math.log2(11)) / 4)


def test_set_recall_ndcg_hand_computed_ties_against_relevant_and_users_without_any_skipped() -> None:
    scores = np.array(
        [
            [0.9, 0.8, 0.7, 0.1],  # relevant 1 and 3: places 1 and 3 (0-based)
            [0.5, 0.5, 0.2, 0.1],  # relevant 0, tied with irrelevant 1: place 1, not 0
            [0.3, 0.3, 0.3, 0.3],  # relevant 0 and 2, all tied: places 2 and 3
            [0.1, 0.2, 0.3, 0.4],  # no relevant candidate: skipped
        ]
    )
    relevant = np.array([[0, 1, 0, 1], [1, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]], dtype=bool)
    d = [1 / math.log2(p + 2) for p in range(4)]
    got = set_recall_ndcg(scores, relevant, k=2)
    assert got["users"] == 3
    assert math.isclose(got["recall@2"], (1 / 2 + 1 + 0) / 3)
    assert math.isclose(got["ndcg@2"], (d[1] / (d[0] + d[1]) + d[1] / d[0] + 0) / 3)
    full = set_recall_ndcg(scores, relevant, k=4)
    assert math.isclose(full["recall@4"], 1.0)
    ideal2 = d[0] + d[1]
    assert math.isclose(full["ndcg@4"], ((d[1] + d[3]) / ideal2 + d[1] / d[0] + (d[2] + d[3]) / ideal2) / 3)


def _tiny() -> Dataset:
    train = Interactions(np.array([0, 0, 1]), np.array([0, 1, 2]), np.arange(2), np.arange(6))
    return Dataset("tiny", train, np.array([0, 1]), np.array([2, 3]), np.array([[3, 4, 5], [2, 4, 3]]))


def test_sampled_ranks_count_ties_against_the_test_item_and_skip_the_test_item_among_negatives() -> None:
    ds = _tiny()
    scores = np.array([0.0, 0.0, 0.5, 0.5, 0.9, 0.1])  # by item
    ranks = sampled_ranks(lambda u, i: scores[i], ds)
    # user 0, test item 2 (0.5) vs 3 (0.5, tie -> counts), 4 (0.9), 5 (0.1): rank 2
    # user 1, test item 3 (0.5) vs 2 (0.5 tie), 4 (0.9), and 3 itself, which is skipped: rank 2
    assert ranks.tolist() == [2, 2]


def test_full_ranks_exclude_train_items() -> None:
    ds = _tiny()
    scores = np.array([9.0, 8.0, 0.5, 0.4, 0.3, 0.2])
    # user 0 trained on items 0, 1: excluded, so test item 2 ranks first; user 1 trained on item 2 only, so its
    # test item 3 ranks behind items 0 and 1, and item 2 (0.5 > 0.4) does not count
    assert full_ranks(lambda u, i: scores[i], ds).tolist() == [0, 2]


def test_one_catalog_pass_gives_what_a_brute_force_ranking_gives(synth: Dataset, monkeypatch) -> None:
    """Verification and the compression gate score each user's catalog once for both full ranking and top-10:
    checked against every user's whole score row sorted here, on a sample of test users and an unsorted list of
    top-10 users that only partly overlaps it (small chunks: many chunk edges)."""
    from edgerec import metrics

    rng = np.random.default_rng(3)
    table = rng.integers(0, 5, size=(synth.n_users, synth.n_items)).astype(np.float64)  # many ties

    def scorer(u: np.ndarray, i: np.ndarray) -> np.ndarray:
        return table[u, i]

    train = np.zeros_like(table, dtype=bool)
    train[synth.train.users, synth.train.items] = True
    masked = np.where(train, -np.inf, table)
    sample = synth.test_sample(40, seed=9)
    users = np.array([7, 3, 250, 3, 120], dtype=np.int64)
    monkeypatch.setattr(metrics, "catalog_scores", _small_chunks(metrics.catalog_scores))
    ranks, top = catalog_pass(scorer, sample, k=10, users=users)
    for row, (u, item) in enumerate(zip(sample.test_users, sample.test_items, strict=True)):
        others = np.delete(masked[u], item)
        assert ranks[row] == int((others >= masked[u, item]).sum())  # ties count against the test item
    for got, u in zip(top, users, strict=True):
        assert np.all(np.diff(masked[u, got]) <= 0) and masked[u, got[-1]] >= np.sort(masked[u])[-10]
        assert len(set(got.tolist())) == 10 and not train[u, got].any()
    assert np.array_equal(full_ranks(scorer, sample), ranks)
    res, top_all = evaluate_with_top_k(scorer, synth, users=users)
    assert res == evaluate(scorer, synth) and np.array_equal(top_all, top)


def _small_chunks(catalog_scores):  # type: ignore[no-untyped-def]
    return lambda scorer, users, train: catalog_scores(scorer, users, train, chunk_pairs=3 * 200)


def test_evaluate_reports_both_protocols(synth: Dataset) -> None:
    m = evaluate(item_pop_scorer(synth), synth)
    assert set(m) >= {"hr@10", "ndcg@10", "protocol", "full_hr@10", "full_ndcg@10"}
    assert 0 <= m["full_hr@10"] <= m["hr@10"] <= 1  # ranking among 99 sampled items is easier than among all


def test_full_ranking_beyond_its_budget_ranks_a_seeded_user_sample_with_confidence(synth, monkeypatch) -> None:
    """Issue 22: all users x all items is billions of scores at scale; beyond metrics.FULL_PAIRS full ranking takes
    a seeded sample of at least MIN_FULL_USERS test users and says so, with 95 % half-widths."""
    from edgerec import metrics

    whole = evaluate(item_pop_scorer(synth), synth)
    assert "full_users" not in whole  # within the budget: every test user, as before
    monkeypatch.setattr(metrics, "FULL_PAIRS", 50 * synth.n_items)
    monkeypatch.setattr(metrics, "MIN_FULL_USERS", 10)
    res = evaluate(item_pop_scorer(synth), synth)
    assert res["full_users"] == 50 and res["test_users"] == len(synth.test_users) and res["hr@10"] == whole["hr@10"]
    sample = synth.test_sample(50, metrics.FULL_SAMPLE_SEED)
    assert len(sample.test_users) == 50 and set(sample.test_users) <= set(synth.test_users)
    fhr, _ = hr_ndcg(full_ranks(item_pop_scorer(synth), sample))
    assert res["full_hr@10"] == fhr
    assert res["full_hr@10_ci95"] == pytest.approx(1.96 * math.sqrt(fhr * (1 - fhr) / 50))
    assert abs(res["full_hr@10"] - whole["full_hr@10"]) < 3 * res["full_hr@10_ci95"] + 1e-9
    assert evaluate(item_pop_scorer(synth), synth) == res  # seeded: the same sample every time


def test_itempop_on_real_ml1m_matches_the_paper(ml1m_dir) -> None:
    ds = load_dataset(ml1m_dir)
    m = evaluate(item_pop_scorer(ds), ds, full=False)
    assert round(m["hr@10"], 3) == 0.453 and round(m["ndcg@10"], 3) == 0.254  # He et al. 2017, Table 2
