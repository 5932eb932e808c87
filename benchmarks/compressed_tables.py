"""Compressed item tables in the phone bundle, per catalog and table format: bundle bytes, recommend and two-stage
(retrieve + score) latency in LiteRT (one thread), recall@10 of both paths against the UNCOMPRESSED model's exhaustive
top-10 (200 seeded users), and on ML-1M the HR@10 change on the paper protocol against the fp32 model.

    python benchmarks/compressed_tables.py ml-1m --model benchmarks/runs/neumf8 --data ../shared/data/ml-1m-ncf
    python benchmarks/compressed_tables.py ml-20m --model benchmarks/runs/scale/ml-20m/model
    python benchmarks/compressed_tables.py catalog-1m --model benchmarks/runs/scale/catalog-1m/model

Each bundle's model.tflite is built by the exporter's own functions (edgerec.exporters.bundle: convert once, then
per format the item-table encoding, the layers' int8 quantization and the strip that `edgerec export` runs; int8 is
the bundle `--precision int8` writes), without the export's verification pass (23 min at 1 M items). The auto row is
what `--item-table auto` (the tflite-android-large-catalog profile: 12 MB budget, gate 0.95) keeps. Each catalog is
one record of benchmarks/results/compressed_tables.json; the markdown is rewritten from all records.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from edgerec.sysinfo import machine, provenance

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
FORMATS = "int8,int4,pq:4x16,pq:2x8,pq:2x4,pq:2x8+4096,pq:2x4+4096,auto"  # pq:GxM+H: pq_gmf, pq_mlp, pq_head
# the pq format the rows measure (records without it measured the earlier one: uint8 codes, a slot map for the head
# rows, a 1-D k-means prior, decoded in every call, the GMF half by asymmetric distance computation)
PQ_FORMAT = "int16 words, decoded once per signature"


def formats(text: str) -> list[tuple[str, int, int, int]]:
    out = []
    for part in text.split(","):
        fmt, _, sizes = part.partition(":")
        sizes, _, head = sizes.partition("+")
        g, _, m = sizes.partition("x")
        out.append((fmt, int(g or 0), int(m or 0), int(head or 0)))
    return out


def interleaved(timed: list[tuple[dict, dict]], calls: int, rounds: int = 5) -> None:
    """Each row's signatures timed in turns (round by round, format after format), so that the machine's load falls on
    every format alike; p50 / p99 into the row. timed: (row, {"recommend" | "retrieve" | "two_stage": a call})."""
    samples: list[dict[str, list[float]]] = [{kind: [] for kind in fns} for _, fns in timed]
    for fns in (f for _, f in timed):
        for fn in fns.values():
            fn()  # warm
    for _ in range(rounds):
        for (_, fns), got in zip(timed, samples, strict=True):
            for kind, fn in fns.items():
                for _ in range(-(-(calls if kind == "recommend" else max(calls, 50)) // rounds)):
                    t0 = time.perf_counter()
                    fn()
                    got[kind].append(time.perf_counter() - t0)
    for (row, _), got in zip(timed, samples, strict=True):
        for kind, ts in got.items():
            row[f"{kind}_ms"] = [float(np.percentile(ts, 50) * 1e3), float(np.percentile(ts, 99) * 1e3)]


def rss_mb() -> float:
    """This process's resident memory now (MB)."""
    import os

    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def measure(flat: bytes, ref, candidates: int) -> tuple[dict, dict]:
    """(the row's bytes, recall and load, {signature: a call on the next seeded user}: timed by interleaved)."""
    from ai_edge_litert.interpreter import Interpreter

    recall = ref.recall(flat, candidates)
    ug0, um0 = ref.user_gmf[:1], ref.user_mlp[:1]
    rss0, t0 = rss_mb(), time.perf_counter()
    # load: the interpreter, its three signatures prepared and called once (a compressed table is decoded here)
    interp = Interpreter(model_content=flat, num_threads=1)
    rec, ret, sc = (interp.get_signature_runner(s) for s in ("recommend", "retrieve", "score"))
    sc(user_gmf=ug0, user_mlp=um0, items=ret(user_gmf=ug0)["items"])
    rec(user_gmf=ug0, user_mlp=um0)
    load_s, load_mb = time.perf_counter() - t0, rss_mb() - rss0
    users = len(ref.top)
    it = iter(range(1 << 30))

    def one():
        r = next(it) % users
        return ref.user_gmf[r : r + 1], ref.user_mlp[r : r + 1]

    def recommend():
        ug, um = one()
        rec(user_gmf=ug, user_mlp=um)

    def retrieve():
        ret(user_gmf=one()[0])

    def two_stage():
        ug, um = one()
        sc(user_gmf=ug, user_mlp=um, items=ret(user_gmf=ug)["items"])

    row = {
        "bytes": len(flat),
        "recall_recommend": recall["recommend"],
        "recall_two_stage": recall["two_stage"],
        "load_s": round(load_s, 2),
        "load_mb": round(load_mb),
    }
    return row, {"recommend": recommend, "retrieve": retrieve, "two_stage": two_stage}


def hr_delta(flat: bytes, model, data) -> dict:
    """HR@10 on the paper protocol (each test item among its 99 sampled negatives): bundle vs fp32 model."""
    from ai_edge_litert.interpreter import Interpreter

    from edgerec.exporters.folded import user_vectors
    from edgerec.metrics import hr_ndcg, sampled_ranks
    from edgerec.runtime.fold import fold
    from edgerec.runtime.retrieval import catalog_logits

    ug, um = (t.numpy() for t in user_vectors(model))
    runner = Interpreter(model_content=flat, num_threads=1).get_signature_runner("recommend")
    f = fold({k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()})
    cache: dict[tuple[str, int], np.ndarray] = {}

    def scorer(kind: str):
        def score(users: np.ndarray, items: np.ndarray) -> np.ndarray:
            out = np.empty(len(users), dtype=np.float64)
            for u in np.unique(users):
                if (kind, u) not in cache:
                    cache.clear()
                    if kind == "bundle":
                        cache[kind, u] = runner(user_gmf=ug[u : u + 1], user_mlp=um[u : u + 1])["scores"]
                    else:
                        cache[kind, u] = catalog_logits(f, ug[u], um[u])
                sel = users == u
                out[sel] = cache[kind, u][items[sel]]
            return out

        return score

    base = hr_ndcg(sampled_ranks(scorer("fp32"), data))[0]
    got = hr_ndcg(sampled_ranks(scorer("bundle"), data))[0]
    return {"hr@10": got, "hr@10_fp32": base, "d_hr@10": got - base}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("catalog", choices=["ml-1m", "ml-20m", "catalog-1m"])
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--data", default=None, help="ML-1M: the NCF split folder (for dHR@10)")
    ap.add_argument("--candidates", type=int, default=1000, help="C of retrieve / score (default 1000)")
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--calls", type=int, default=50, help="timed recommend calls per format")
    ap.add_argument("--budget", type=int, default=12_000_000, help="max_bytes of the auto row")
    ap.add_argument("--formats", default=FORMATS, help=f"default {FORMATS}")
    ap.add_argument("--append", action="store_true", help="add the rows to the catalog's record (same model, C, users)")
    ap.add_argument("--note", default="", help="a line under the catalog's heading (what the model is)")
    ap.add_argument("--label", default="", help="a record of its own beside the catalog's others (e.g. the model)")
    ap.add_argument("--out", type=Path, default=HERE / "runs" / "tables")
    args = ap.parse_args()

    import torch

    from edgerec.api import load_checkpoint
    from edgerec.exporters import bundle
    from edgerec.exporters.tflite_bundle import BundleOptions

    torch.set_num_threads(1)
    model = load_checkpoint(args.model).folded().model.eval()
    n = model.arch.n_items
    c = min(args.candidates, n)
    data = None
    if args.data:
        from edgerec.data import load_dataset

        data = load_dataset(args.data)
    t0 = time.perf_counter()
    flat = bundle.convert(model, 10, c, BundleOptions(candidates=c, item_table="pq"))
    fp32_flat = bundle.convert(model, 10, c, BundleOptions(candidates=c))
    convert_s = time.perf_counter() - t0
    ref = bundle.reference(model, args.users, 10)
    from edgerec.exporters.folded import FoldedNCF

    by_prior = np.argsort(-FoldedNCF(model, 10).prior.numpy(), kind="stable")
    # how concentrated the uncompressed top-10 lists are: distinct items, share of entries among the top-H by prior
    concentration = {
        "distinct_items": len(np.unique(ref.top)),
        **{f"share_in_top_{h}": float(np.isin(ref.top, by_prior[:h]).mean()) for h in (256, 1024, 4096)},
    }
    rows: list[dict] = []
    timed: list[tuple[dict, dict]] = []
    args.out.mkdir(parents=True, exist_ok=True)
    for fmt, pg, pm, ph in formats(args.formats):
        opts = BundleOptions(
            candidates=c,
            item_table=fmt,
            pq_gmf=pg or 2,
            pq_mlp=pm or 8,
            pq_head=ph,
            table_recall=0.95 if fmt == "auto" else 0.0,
            max_bytes=args.budget if fmt == "auto" else None,
        )
        t0 = time.perf_counter()
        try:
            if fmt == "int8":
                q, info = bundle.quantize(fp32_flat, "int8", "float", model, c)
                q = bundle.strip(q)
                label = "int8"
            else:
                q, info = bundle.compressed_tables(model, flat, "int8", opts, 10, ref, fp32_flat)
                label = info["item_table"]["label"] + (" (auto)" if fmt == "auto" else "")
        except Exception as e:  # the auto row may find nothing within the budget: recorded as such
            rows.append({"format": fmt, "error": str(e)})
            print(json.dumps(rows[-1]), flush=True)
            continue
        build_s = time.perf_counter() - t0
        (args.out / f"{args.catalog}-{label.split(' (')[0].replace(' ', '').replace(',', '-')}.tflite").write_bytes(q)
        measured, fns = measure(q, ref, c)
        row = {"format": label, "build_s": round(build_s, 1), **measured}
        if fmt == "auto":
            row["tried"] = info["item_table"]["tried"]
        if data is not None:
            row.update(hr_delta(q, model, data))
        rows.append(row)
        timed.append((row, fns))
        print(json.dumps(row), flush=True)
    interleaved(timed, args.calls)
    for row in rows:
        print(json.dumps({k: v for k, v in row.items() if k == "format" or k.endswith("_ms")}), flush=True)
    record = {
        "catalog": args.catalog,
        "items": n,
        "users": model.arch.n_users,
        "candidates": c,
        "gate_users": len(ref.top),
        "top10_concentration": concentration,
        "note": args.note,
        "convert_s": round(convert_s, 1),
        "pq_format": PQ_FORMAT,
        "timing": "in turns",
        "rows": rows,
        "provenance": provenance(),
        "machine": machine(),
        "threads": 1,
        "command": " ".join(["python", *sys.argv]),
    }
    path = RESULTS / "compressed_tables.json"
    records = json.loads(path.read_text()) if path.exists() else {}
    key = f"{args.catalog}: {args.label}" if args.label else args.catalog
    old = records.get(key)
    if args.append and old:
        record = {**old, "rows": old["rows"] + rows, "appended": record}
    records[key] = record
    path.write_text(json.dumps(records, indent=1) + "\n")
    write_markdown(records)
    return 0


def write_markdown(records: dict) -> None:
    lines = [
        "# Compressed item tables in the phone bundle",
        "",
        "Written by `benchmarks/compressed_tables.py` (one record per catalog and model, its command, commit and "
        "machine "
        "below). Bundle = model.tflite as the exporter builds it (layers int8, item tables as the row says; "
        "int4 / pq store the item prior in 8 bits). Latency: LiteRT (ai-edge-litert) in Python, one thread, one "
        "user per call (a record says whether its formats were timed in turns); two-stage = retrieve (top-C by "
        "GMF half + prior) then score (the C candidates through the "
        "whole NeuMF). Recall@10 against the **uncompressed** (fp32) model's exhaustive top-10 on the record's "
        "seeded users. The machine is shared by other jobs (load average well above its 2 cores): latencies are "
        "noisy, compare within a table.",
    ]
    order = ("ml-1m", "ml-20m", "catalog-1m")
    for name in sorted(records, key=lambda key: order.index(records[key]["catalog"])):
        r = records[name]
        hr = any("d_hr@10" in row for row in r["rows"])
        lines += [
            "",
            f"## {name}: {r['items']:,} items, {r['users']:,} users, C = {r['candidates']}",
            "",
            f"{r['provenance']}; {r['machine']}; recall on {r['gate_users']} seeded users; "
            + (
                "latency: the formats timed in turns (five rounds, format after format, in one process)."
                if r.get("timing") == "in turns"
                else "latency: one format after another."
            )
            + (f" Rows appended by {r['appended']['provenance']}." if r.get("appended") else ""),
            "",
            "pq rows: "
            + (
                "codes two to an int16 word, every table decoded once when a signature is prepared (load: the "
                "interpreter created and its three signatures prepared and called once; MB: the resident memory "
                "that added)."
                if r.get("pq_format") == PQ_FORMAT
                else "**the earlier pq format** (uint8 codes, a slot map for the head rows, a 1-D k-means prior, "
                "decoded in every call; the GMF half by asymmetric distance computation), at the commit named."
            ),
            *(["", r["note"]] if r.get("note") else []),
            "",
            "The uncompressed top-10 lists of those users: "
            + (
                f"{c['distinct_items']:,} distinct items; share of their entries among the items of highest prior: "
                + ", ".join(f"top-{k.rsplit('_', 1)[1]} {v:.3f}" for k, v in c.items() if k.startswith("share"))
                if (c := r.get("top10_concentration"))
                else "not recorded"
            )
            + ".",
            "",
            "| table format | bytes | B/item | recommend p50 / p99 ms | retrieve p50 ms | two-stage p50 / p99 ms "
            "| recall@10 exhaustive | recall@10 two-stage | load s / MB |" + (" dHR@10 |" if hr else ""),
            "|---|---|---|---|---|---|---|---|---|" + ("---|" if hr else ""),
        ]
        for row in r["rows"]:
            if "error" in row:
                lines.append(f"| {row['format']} | {row['error']} |")
                continue
            retrieve = f"{row['retrieve_ms'][0]:.2f}" if "retrieve_ms" in row else "-"
            load = f"{row['load_s']:.1f} / {row['load_mb']:,}" if "load_s" in row else "-"
            lines.append(
                f"| {row['format']} | {row['bytes']:,} | {row['bytes'] / r['items']:.1f} | "
                f"{row['recommend_ms'][0]:.2f} / {row['recommend_ms'][1]:.2f} | {retrieve} | "
                f"{row['two_stage_ms'][0]:.2f} / {row['two_stage_ms'][1]:.2f} | {row['recall_recommend']:.3f} | "
                f"{row['recall_two_stage']:.3f} | {load} |" + (f" {row['d_hr@10']:+.4f} |" if hr else "")
            )
        for row in r["rows"]:
            if row.get("tried"):
                lines += ["", f"auto tried before {row['format']}: " + "; ".join(row["tried"])]
    (RESULTS / "compressed_tables.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
