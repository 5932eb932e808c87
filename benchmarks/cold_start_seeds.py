"""Cold items and cold users over several holdout seeds: edgerec beside LightFM, per seed and averaged.

    python benchmarks/cold_start.py --only items --results benchmarks/results/cold_start.md   # seed 0
    python benchmarks/cold_start.py --only items --seed S --lightfm '64 components + L2 1e-6' \
        --results benchmarks/results/cold_start_seedS.md          # for each S > 0
    python benchmarks/cold_placement.py --seeds 0 --results cold_start
    python benchmarks/cold_placement.py --seeds 1,2,...             # the placement on those runs' saved models
    python benchmarks/cold_start.py --only users --seed S --cold-user-epochs 0 --lightfm '64 components + L2 1e-6' \
        --results benchmarks/results/cold_users_seedS.md          # for each S
    python benchmarks/cold_fit.py --side user --seeds 0,1,...       # the user fit on those runs' saved models
    python benchmarks/cold_start_seeds.py

Reads benchmarks/results/cold_start.json (seed 0) and cold_start_seed*.json (each a whole run of cold_start.py's
cold-item protocol: its own seeded 10 % of the items held out, edgerec trained and the items added by add_items,
LightFM fitted on the same interactions), cold_item_placement.json (the same runs' models, new items placed by
their feature neighbours as the item fit chooses and by their bags alone; runs it has not measured are left out);
cold_users_seed*.json and cold_user_fit_seed*.json for cold users; writes benchmarks/results/cold_start_seeds.md.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from edgerec.io import read_json
from edgerec.sysinfo import provenance

RESULTS = Path(__file__).resolve().parent / "results"
LIGHTFM = "64 components + L2 1e-6"
RECALL = ("recall@10", "ndcg@10")  # the cold-item protocol's metrics
HR = ("hr@10", "ndcg@10")  # the cold-user protocol's


def cell(m: dict | None, keys: tuple[str, str] = RECALL) -> str:
    return "-" if m is None else f"{m[keys[0]]:.4f} / {m[keys[1]]:.4f}"


def mean(picked: list[dict], keys: tuple[str, str] = RECALL) -> dict:
    return {k: statistics.fmean(m[k] for m in picked) for k in keys}


def ahead(a: dict | None, b: dict, keys: tuple[str, str] = RECALL) -> str:
    if a is None:
        return "-"
    wins = [a[k] > b[k] for k in keys]
    return "edgerec" if all(wins) else "LightFM" if not any(wins) else "mixed"


def main() -> int:
    runs = [RESULTS / "cold_start.json", *sorted(RESULTS.glob("cold_start_seed*.json"))]
    placed_path = RESULTS / "cold_item_placement.json"
    placement = read_json(placed_path) if placed_path.is_file() else {}
    rows, table, catalog = [], [], []
    for path in runs:
        run = read_json(path)
        items, seed = run["items"], run["seed"]
        if str(seed) not in placement:
            continue  # a run whose model cold_placement.py has not measured
        got = placement[str(seed)]
        k = got["chosen"]
        bags, placed, lf = got["by_k"]["0"]["cold"], got["by_k"][str(k)]["cold"], items["lightfm"][LIGHTFM]
        table.append((bags, placed, lf))
        catalog.append((got["by_k"]["0"]["catalog"], got["by_k"][str(k)]["catalog"]))
        rows.append(
            f"| {seed} | {lf['users']:,} | {cell(bags)} | {k} | {cell(placed)} | {cell(lf)} | "
            f"{ahead(placed, lf)} | {items['provenance']} |"
        )
    if not table:
        raise SystemExit("no measured placement: run benchmarks/cold_start.py --only items, then cold_placement.py")
    n = len(table)
    mb = mean([b for b, _, _ in table])
    cb, cp = mean([b for b, _ in catalog], HR), mean([p for _, p in catalog], HR)
    mp, mlf = mean([p for _, p, _ in table]), mean([lf for *_, lf in table])
    wins = sum(ahead(p, lf) == "edgerec" for _, p, lf in table)
    lines = [
        "# Cold items and cold users over several holdout seeds (ML-1M, edgerec NeuMF-8 + features vs LightFM)",
        "",
        f"Written by {provenance()}. Each seed is one run of `benchmarks/cold_start.py`'s cold-item protocol (see "
        "`cold_start.md`): the seed draws which 10 % of the items lose every interaction (and seeds LightFM and the "
        "random scorer); edgerec trains with its defaults (id dropout 0.05, then the cold fits) and adds the cold "
        f"items by their features alone (`add_items`); LightFM ({LIGHTFM}, WARP, `lightfm-next`) is fitted on the "
        "same interactions in the same run. Each user who interacted with a cold item ranks all 371 cold items: "
        "Recall@10 / NDCG@10. 'placed by neighbours': what `add_items` does, each new item the similarity-weighted "
        "mean of its k nearest known items at their mean length (k: the item fit's choice on its held-out known "
        "items, `place_new_items` run again on the run's saved model); 'bags alone': the same model with each new "
        "item placed by its feature bags; both measured by `benchmarks/cold_placement.py` (`cold_item_placement.md`: "
        "every k). LightFM's numbers are the run's own. AMD EPYC, 2 cores, 1 thread.",
        "",
        "| seed | users | edgerec, bags alone: Recall@10 / NDCG@10 | k | edgerec, placed by neighbours | LightFM | "
        "neighbours vs LightFM | run |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        f"| mean of {n} | | {cell(mb)} | | **{cell(mp)}** | {cell(mlf)} | {ahead(mp, mlf)} | |",
        "",
        f"edgerec placed by neighbours is ahead of LightFM in both metrics on {wins} of the {n} seeds; its Recall@10 "
        f"ranges from {min(p['recall@10'] for _, p, _ in table):.4f} to "
        f"{max(p['recall@10'] for _, p, _ in table):.4f}, LightFM's from "
        f"{min(lf['recall@10'] for *_, lf in table):.4f} to {max(lf['recall@10'] for *_, lf in table):.4f}. "
        + paired(table),
        "",
        f"The same new items among the catalog they join (each test user whose test item is cold ranks it among its "
        f"99 negatives, HR@10 / NDCG@10; LightFM not measured so), mean of {n}: by their bags alone {cell(cb, HR)}, "
        f"placed by neighbours {cell(cp, HR)} (per seed: `cold_item_placement.md`).",
        "",
    ]
    lines += cold_users()
    (RESULTS / "cold_start_seeds.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


def paired(table: list[tuple[dict | None, dict, dict]]) -> str:
    """The per-seed differences, edgerec placed by neighbours minus LightFM: mean, sd and the paired t statistic."""
    parts = []
    for key, label in zip(RECALL, ("Recall@10", "NDCG@10"), strict=True):
        d = [p[key] - lf[key] for _, p, lf in table]
        if len(d) < 2:
            return ""
        sd = statistics.stdev(d)
        t = statistics.fmean(d) / (sd / len(d) ** 0.5) if sd else float("inf")
        parts.append(f"{label} {statistics.fmean(d):+.4f} (sd {sd:.4f}, paired t {t:.1f} on {len(d) - 1} df)")
    return "Per-seed difference, edgerec placed by neighbours minus LightFM: " + "; ".join(parts) + "."


def cold_users() -> list[str]:
    """The cold-user section: each cold_users_seedS.json (cold_start.py --only users --cold-user-epochs 0) with its
    cold_user_fit_seedS.json (benchmarks/cold_fit.py --side user on that run's saved model)."""
    rows, table = [], []
    for path in sorted(RESULTS.glob("cold_users_seed*.json")):
        run = read_json(path)
        users, seed = run["users"], run["seed"]
        fit_path = RESULTS / f"cold_user_fit_seed{seed}.json"
        if not fit_path.is_file():
            continue
        fit = read_json(fit_path)
        pop, e, f, lf = users["itempop"], users["edgerec"]["cold"], fit["cold"], users["lightfm"][LIGHTFM]
        table.append((pop, e, f, lf))
        rows.append(
            f"| {seed} | {lf['users']} | {cell(pop, HR)} | {cell(e, HR)} | {cell(f, HR)} | {cell(lf, HR)} | "
            f"{ahead(f, lf, HR)} | "
            f"{users['provenance']}; fit: {fit['provenance']} |"
        )
    if not table:
        return []

    means = [mean([t[i] for t in table], HR) for i in range(4)]
    gap = max(read_json(p)["warm_test_max_abs_score_change"] for p in RESULTS.glob("cold_user_fit_seed*.json"))
    return [
        "## Cold users",
        "",
        "Each seed is one run of `benchmarks/cold_start.py --only users --cold-user-epochs 0` (see `cold_start.md`): "
        "the seed draws which 10 % of the users lose their training interactions; edgerec trains with its defaults "
        "but without the cold-user fit, and adds the cold users by their features alone (`add_users`); ItemPop and "
        f"LightFM ({LIGHTFM}, WARP) on the same interactions in the same run. Each cold user's test item is ranked "
        "among its 99 negatives (the paper's protocol): HR@10 / NDCG@10. '+ cold-user fit': the same seed's saved "
        "model after the cold-user fit that `edgerec train` ends with (`benchmarks/cold_fit.py --side user`; every "
        f"warm test pair scores as before, largest change {gap:.1e}).",
        "",
        "| seed | cold users | ItemPop HR@10 / NDCG@10 | edgerec trained | edgerec + cold-user fit | LightFM | "
        "fit vs LightFM | runs |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        f"| mean of {len(table)} | | {cell(means[0], HR)} | {cell(means[1], HR)} | **{cell(means[2], HR)}** | "
        f"{cell(means[3], HR)} | "
        f"{ahead(means[2], means[3], HR)} | |",
        "",
    ]


if __name__ == "__main__":
    raise SystemExit(main())
