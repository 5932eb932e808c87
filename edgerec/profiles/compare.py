"""Every profile of a folder exported and benchmarked, one comparison table (+ JSON, Markdown, plots): what
`edgerec bench --profiles DIR` prints.

The fp32 PyTorch source is measured with the same harness in the same run (PyTorch eager, same thread count), so
speed-ups are ratios measured side by side.
"""

from __future__ import annotations

import logging
import shlex
from pathlib import Path

from edgerec.benchmarking.eager import TorchEager
from edgerec.benchmarking.latency import BenchConfig, bench_scorer, one_core
from edgerec.data.split import Dataset
from edgerec.errors import EdgerecError
from edgerec.io import write_json
from edgerec.sysinfo import machine, provenance

log = logging.getLogger(__name__)
COLUMNS = (
    "profile",
    "target",
    "precision",
    "bytes",
    "HR@10",
    "NDCG@10",
    "dHR@10",
    "p50 ms",
    "p99 ms",
    "items/s",
    "status",
)


def _cell(row: dict, key: str) -> str:
    lat = row.get("bench", {}).get("latency_ms", {}).get(row.get("budget_key", "catalog_top10"))
    ips = row.get("bench", {}).get("items_per_s", {}).get(row.get("budget_key", "catalog_top10"))
    m, d = row.get("metrics", {}), row.get("deltas", {})
    return {
        "profile": row["profile"],
        "target": row["target"],
        "precision": row["precision"],
        "bytes": f"{row['bytes']:,}" if row.get("bytes") else "-",
        "HR@10": f"{m['hr@10']:.4f}" if "hr@10" in m else "-",
        "NDCG@10": f"{m['ndcg@10']:.4f}" if "ndcg@10" in m else "-",
        "dHR@10": f"{d['hr@10']:+.4f}" if "hr@10" in d else "-",
        "p50 ms": f"{lat['p50']:.3f}" if lat else "-",
        "p99 ms": f"{lat['p99']:.3f}" if lat else "-",
        "items/s": f"{ips:,.0f}" if ips else "-",
        "status": row["status"],
    }[key]


def table_rows(rows: list[dict]) -> list[list[str]]:
    return [[_cell(r, c) for c in COLUMNS] for r in rows]


def markdown(rows: list[dict], title: str, note: str) -> str:
    lines = [f"# {title}", "", note, "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(r) + " |" for r in table_rows(rows)]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for r in rows:
        hr = r.get("metrics", {}).get("hr@10")
        if hr is None:
            continue
        lat = r.get("bench", {}).get("latency_ms", {}).get("catalog_top10")
        axes[0].scatter(r["bytes"], hr)
        axes[0].annotate(r["profile"], (r["bytes"], hr), fontsize=7)
        if lat:
            axes[1].scatter(lat["p50"], hr)
            axes[1].annotate(r["profile"], (lat["p50"], hr), fontsize=7)
    axes[0].set(xlabel="model bytes", ylabel="HR@10", xscale="log", title="size vs accuracy")
    axes[1].set(xlabel="p50 ms, one user vs the catalog + top-10", ylabel="HR@10", title="latency vs accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def compare(
    profiles: list, ds: Dataset, out: Path, model: Path | None, cache: Path | None, bench_time_s: float = 1.0
) -> list[dict]:
    """Run every profile (pipeline.run, cached steps reused), plus the PyTorch eager fp32 source, side by side."""
    from edgerec.model import checkpoint
    from edgerec.profiles.pipeline import default_cache, plan, run

    rows = []
    for p in profiles:
        try:
            row = run(p, ds, out / p.output.folder.format(name=p.name), model, cache, bench_time_s=bench_time_s)
        except EdgerecError as e:
            row = {"profile": p.name, "target": p.target, "precision": p.precision, "status": f"failed: {e}"}
        rows.append(row)
        log.info("%s: %s", p.name, row["status"])
    # the source model, measured by the same harness in the same process
    source = model
    if source is None:
        train_step = plan(profiles[0], ds, None)[0]
        source = train_step.folder(cache or default_cache())
    ck = checkpoint.load(source)
    threads = min(p.runtime.threads for p in profiles)
    buckets = sorted({1, 1000, ds.n_items})
    with one_core(threads == 1):
        record = bench_scorer(
            TorchEager(ck.model, threads), buckets, BenchConfig(threads=threads, min_time_s=bench_time_s)
        )
    size = (Path(source) / "model.safetensors").stat().st_size
    rows.insert(
        0,
        {
            "profile": "pytorch-eager (source)",
            "target": "pytorch",
            "precision": "fp32",
            "bytes": size,
            "metrics": {k: ck.metrics.get(k) for k in ("hr@10", "ndcg@10")},
            "deltas": {"hr@10": 0.0},
            "bench": {**record, "machine": machine()},
            "budget_key": "catalog_top10",
            "status": "baseline",
        },
    )
    return rows


def write_reports(rows: list[dict], folder: Path, title: str, argv: list[str]) -> None:
    """profiles.json, profiles.md and profiles.png in folder; `argv` is the command line that produced them."""
    folder.mkdir(parents=True, exist_ok=True)
    note = (
        f"Machine: {machine()}. Latency: p50 / p99 of one call at the profile's budget batch (catalog = one user "
        "against every item, top-10 taken), measured in the target runtime after warm-up, same run for every row. "
        "HR@10 / NDCG@10 measured through the runtime at export (verification). "
        f"Generated by {provenance(argv)}."
    )
    write_json(folder / "profiles.json", {"machine": machine(), "command": shlex.join(argv), "rows": rows})
    (folder / "profiles.md").write_text(markdown(rows, title, note))
    plot(rows, folder / "profiles.png")
