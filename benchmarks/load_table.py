"""Reading a large interaction table: CSV and Parquet at MovieLens-20M's size, this commit against an earlier one.

    python benchmarks/load_table.py --rows 20000000 --before d7a16f3

Writes MovieLens-20M-shaped ratings (userId,movieId,rating,timestamp; ratings like 3.5, as in ML-20M's
ratings.csv) as CSV and Parquet under benchmarks/runs/load_table/, then loads each with `edgerec.data.loaders
.load_table` in a fresh process under /usr/bin/time -v, once with this checkout and once with --before (a git
worktree of that commit): wall time and peak RSS side by side in one run. Writes
benchmarks/results/load_table.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LOAD = (
    "import sys; from pathlib import Path; from edgerec.data import Columns;"
    "from edgerec.data.loaders import load_table;"
    "i = load_table(Path(sys.argv[1]), Columns(user='userId', item='movieId'));"
    "print(len(i), i.n_users, i.n_items, i.timestamps[:3].tolist(), i.ratings[:3].tolist())"
)


def write_tables(folder: Path, rows: int, seed: int = 0) -> dict[str, Path]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    table = pa.table(
        {
            "userId": rng.integers(1, 138_494, size=rows),
            "movieId": rng.integers(1, 131_263, size=rows),
            "rating": rng.integers(1, 11, size=rows) / 2.0,
            "timestamp": rng.integers(789_652_009, 1_427_784_003, size=rows),
        }
    )
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"csv": folder / f"ratings-{rows}.csv", "parquet": folder / f"ratings-{rows}.parquet"}
    if not paths["csv"].is_file():
        pa_csv.write_csv(table, paths["csv"], pa_csv.WriteOptions(quoting_style="none"))
    if not paths["parquet"].is_file():
        pq.write_table(table, paths["parquet"])
    return paths


def load(path: Path, pythonpath: Path) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run(
        ["/usr/bin/time", "-v", sys.executable, "-c", LOAD, str(path)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(pythonpath), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
        cwd="/",
    )
    wall = time.perf_counter() - t0
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    if proc.returncode:
        raise SystemExit(f"loading {path} with {pythonpath} failed:\n{proc.stderr[-2000:]}")
    return {"seconds": round(wall, 1), "peak_rss_gib": round(int(rss.group(1)) / 2**20, 2), "out": proc.stdout.strip()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20_000_000)
    ap.add_argument("--before", default="d7a16f3", help="the commit to compare with")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from edgerec.sysinfo import machine, provenance

    runs = HERE / "runs" / "load_table"
    paths = write_tables(runs, args.rows)
    before = runs / f"before-{args.before}"
    if not before.is_dir():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(before), args.before], check=True)
    rows = []
    for fmt, path in paths.items():
        for label, tree in ((f"before ({args.before})", before), ("this commit", ROOT)):
            rec = {"format": fmt, "code": label, "bytes": path.stat().st_size, **load(path, tree)}
            print(json.dumps(rec), flush=True)
            rows.append(rec)
    for a, b in zip(rows[::2], rows[1::2], strict=True):
        if a["out"] != b["out"]:
            raise SystemExit(f"{a['format']}: the two readers disagree: {a['out']} vs {b['out']}")
    record = {"rows": args.rows, "runs": rows, "machine": machine(), "provenance": provenance(sys.argv)}
    (HERE / "results" / "load_table.json").write_text(json.dumps(record, indent=1) + "\n")
    lines = [
        f"# Reading {args.rows:,} interactions (MovieLens-20M-shaped ratings)",
        "",
        f"{record['provenance']}; {record['machine']}. `load_table` in a fresh process (/usr/bin/time -v), "
        "columns userId,movieId,rating,timestamp; both readers gave the same interactions.",
        "",
        "| format | file MB | code | wall s | peak RSS GiB |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        mb = r["bytes"] / 1e6
        lines.append(f"| {r['format']} | {mb:,.0f} | {r['code']} | {r['seconds']} | {r['peak_rss_gib']} |")
    (HERE / "results" / "load_table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
