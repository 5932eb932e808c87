"""Cold items and cold users over several holdout seeds: edgerec with and without its cold fits beside LightFM,
per seed and averaged.

    python benchmarks/cold_start.py --only items --seed S --lightfm '64 components + L2 1e-6' \
        --results benchmarks/results/cold_start_seedS.md          # for each S > 0 (seed 0 is cold_start.json)
    python benchmarks/cold_fit.py --side item --seeds 1,2,...       # the item fit on those runs' saved models
    python benchmarks/cold_start.py --only users --seed S --cold-user-epochs 0 --lightfm '64 components + L2 1e-6' \
        --results benchmarks/results/cold_users_seedS.md          # for each S
    python benchmarks/cold_fit.py --side user --seeds 0,1,...       # the user fit on those runs' saved models
    python benchmarks/cold_start_seeds.py

Reads benchmarks/results/cold_start.json (seed 0) and cold_start_seed*.json (each a whole run of cold_start.py's
cold-item protocol: its own seeded 10 % of the items held out, edgerec trained and the items added by add_items,
LightFM fitted on the same interactions; the early runs predate the cold-item fit), cold_item_fit_seed*.json (the
same seed's saved model with the fit that `edgerec train` now ends with); cold_users_seed*.json and
cold_user_fit_seed*.json likewise for cold users; writes benchmarks/results/cold_start_seeds.md.
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
    rows, table = [], []
    for path in runs:
        run = read_json(path)
        items, seed = run["items"], run["seed"]
        fit_path = RESULTS / f"cold_item_fit_seed{seed}.json"
        fit = read_json(fit_path) if fit_path.is_file() else None
        e, lf = items["edgerec"]["cold"], items["lightfm"][LIGHTFM]
        f = None if fit is None else fit["cold"]
        if fit is not None and fit.get("fitted_in_training"):  # the run itself trained with the fit
            e, f = None, items["edgerec"]["cold"]
        table.append((seed, e, f, lf))
        rows.append(
            f"| {seed} | {lf['users']:,} | {cell(e)} | {cell(f)} | {cell(lf)} | {ahead(e, lf)} | {ahead(f, lf)} | "
            f"{items['provenance']}{'' if fit is None else '; fit: ' + fit['provenance']} |"
        )

    both = [(e, f, lf) for _, e, f, lf in table if f is not None]
    trained = [(e, lf) for _, e, _, lf in table if e is not None]
    all_e, all_lf = mean([e for e, _ in trained]), mean([lf for _, lf in trained])
    ff, flf = (mean([t[i] for t in both]) for i in (1, 2)) if both else (None, None)
    paired = [t for t in both if t[0] is not None]  # measured both ways
    pe, pf, plf = (mean([t[i] for t in paired]) for i in range(3)) if paired else (None, None, None)
    n, m = len(trained), len(both)
    fits = [read_json(p)["warm_test_max_abs_score_change"] for p in RESULTS.glob("cold_item_fit_seed*.json")]
    lines = [
        "# Cold items and cold users over several holdout seeds (ML-1M, edgerec NeuMF-8 + features vs LightFM)",
        "",
        f"Written by {provenance()}. Each seed is one run of `benchmarks/cold_start.py`'s cold-item protocol (see "
        "`cold_start.md`): the seed draws which 10 % of the items lose every interaction (and seeds LightFM and the "
        "random scorer); edgerec trains with its defaults (id dropout 0.05) and adds the cold items by their "
        f"features alone (`add_items`); LightFM ({LIGHTFM}, WARP, `lightfm-next`) is fitted on the same "
        "interactions in the same run. Each user who interacted with a cold item ranks all 371 cold items. "
        "'trained': without the cold-item fit (runs made before `edgerec train` ended with it); '+ cold-item fit': the "
        "same seed's model after the cold-item fit (`fit_cold`, what `edgerec train` now ends with, "
        "`benchmarks/cold_fit.py --side item`; "
        "every warm test pair scores as before, largest change "
        f"{max(fits, default=0.0):.1e}"
        "). Seed 0's model was not kept, so its fit is not measured; runs made after `edgerec train` began to end "
        "with the fit have it in the run itself and no measurement without it. AMD EPYC, 2 cores, 1 thread.",
        "",
        "| seed | users | edgerec trained: Recall@10 / NDCG@10 | edgerec + cold-item fit | LightFM | trained vs "
        "LightFM | fit vs LightFM | runs |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        f"| mean of {n} | | {cell(all_e)} | | {cell(all_lf)} | {ahead(all_e, all_lf)} | | |",
    ]
    if paired:
        lines.append(
            f"| mean of the {len(paired)} measured both ways | | {cell(pe)} | {cell(pf)} | {cell(plf)} | "
            f"{ahead(pe, plf)} | {ahead(pf, plf)} | |"
        )
    if both:
        lines.append(f"| mean of the {m} with the fit | | | **{cell(ff)}** | {cell(flf)} | | {ahead(ff, flf)} | |")
    recalls = [e["recall@10"] for e, _ in trained]
    lines += [
        "",
        f"edgerec as trained ranges from Recall@10 {min(recalls):.4f} to {max(recalls):.4f} over the holdouts, "
        "LightFM from "
        f"{min(lf['recall@10'] for *_, lf in table):.4f} to {max(lf['recall@10'] for *_, lf in table):.4f}.",
        "",
    ]
    lines += cold_users()
    (RESULTS / "cold_start_seeds.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


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
