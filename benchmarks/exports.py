"""Export one checkpoint to every target x precision that runs here and print the verification table.

    python benchmarks/exports.py [--model benchmarks/runs/neumf8] [--data ../shared/data/ml-1m-ncf]

Each export is verified in its own runtime (HR@10 / NDCG@10 on the full test protocol, top-10 agreement with the
fp32 source, max |score error|, batch parity); the tolerance gate is recorded, not enforced, so that a failing
variant still shows its numbers. TensorRT rows are export-only on machines without TensorRT (the ONNX it would be
built from is verified in onnxruntime). Writes results/<tag>.{json,md} (default tag: exports).

--model defaults to the benchmark teacher, benchmarks/runs/neumf8 (recreate it with `python benchmarks/teacher.py`).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import edgerec
from edgerec.data import load_dataset
from edgerec.errors import GateFailed
from edgerec.exporters.config import ExportConfig
from edgerec.gates import ParityBound
from edgerec.model.checkpoint import load
from edgerec.sysinfo import machine, provenance

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "ml-1m-ncf"
DEFAULT_MODEL = HERE / "runs" / "neumf8"  # written by benchmarks/teacher.py


def shown(path: str | Path) -> str:
    """A path as the tables print it: relative to the working directory when inside it (the defaults are absolute)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


VARIANTS = [
    ("onnx", "fp32", None),
    ("onnx", "fp16", None),
    ("onnx", "int8", None),
    ("tensorrt", "int8", None),
    ("tflite", "fp32", None),
    ("tflite", "fp16", None),
    ("tflite", "int8-dynamic", None),
    ("tflite", "int8", None),
    ("tflite", "int8-dynamic", "tflite-runtime"),
    ("tflite", "int8", "tflite-runtime"),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--model",
        default=str(DEFAULT_MODEL),
        help="checkpoint folder (default benchmarks/runs/neumf8, from `python benchmarks/teacher.py`)",
    )
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--out", default="benchmarks/runs/exports")
    ap.add_argument("--results", default="benchmarks/results")
    ap.add_argument("--tag", default="exports", help="results file name: <results>/<tag>.{json,md}")
    ap.add_argument("--only", default="", help="comma-separated artifact names to run (default: all)")
    args = ap.parse_args()
    ds = load_dataset(args.data)
    ck = load(args.model)
    rows, fp32_bytes = [], {}
    only = set(filter(None, args.only.split(",")))
    for tgt, prec, runtime in VARIANTS:
        name = f"{tgt}-{prec}" + (f"-{runtime}" if runtime else "")
        if only and name not in only:
            continue
        tol = ParityBound.for_precision(prec)
        cfg = ExportConfig(target=tgt, precision=prec, runtime=runtime, tolerance=replace(tol, hr=1.0))
        status = "passed"
        art = edgerec.export(ck, cfg, ds, out=Path(args.out) / name)
        if art.export_only:
            status = f"export-only: {art.export_only.split(':')[0]}"
        try:
            tol.check(name, art.verification)
        except GateFailed as e:
            status = f"failed: {str(e).split(': ', 1)[1]}"
        v, nbytes = art.verification, art.bytes
        if prec == "fp32":
            fp32_bytes[tgt] = nbytes
        ref = fp32_bytes.get(tgt, fp32_bytes.get("onnx"))
        rows.append(
            {
                "artifact": name,
                "verified_with": v["verified_with"],
                "hr@10": art.metrics["hr@10"],
                "ndcg@10": art.metrics["ndcg@10"],
                "delta_hr@10": v["deltas"]["hr@10"],
                "delta_ndcg@10": v["deltas"]["ndcg@10"],
                "agreement": v["agreement"],
                "max_abs_score_error": v["max_abs_score_error"],
                "batch_parity_max_diff": v["batch_parity_max_diff"],
                "bytes": nbytes,
                "bytes_vs_fp32": nbytes / ref if ref else None,
                "tolerance_hr": tol.hr,
                "status": status,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    res = Path(args.results)
    res.mkdir(parents=True, exist_ok=True)
    record = {
        "provenance": provenance(),
        "machine": machine(),
        "model": shown(args.model),
        "data": ds.summary(),
        "rows": rows,
    }
    (res / f"{args.tag}.json").write_text(json.dumps(record, indent=2) + "\n")
    cols = ["artifact", "verified in", "HR@10", "NDCG@10", "dHR@10", "dNDCG@10", "agreement", "max abs err"]
    head = "| " + " | ".join([*cols, "parity", "bytes", "vs fp32", "status"]) + " |"
    lines = [
        f"# Exports of `{record['model']}` on {ds.name}, verified in their runtimes",
        "",
        f"Machine: {record['machine']}. Source (fp32 PyTorch) vs artifact on the full test protocol; gate |dHR@10| <= "
        f"0.001 (fp32/fp16) or 0.005 (int8). Generated by {record['provenance']}.",
        "",
        head,
        "|" + "---|" * (head.count("|") - 1),
    ]
    for r in rows:
        lines.append(
            f"| {r['artifact']} | {r['verified_with']} | {r['hr@10']:.4f} | {r['ndcg@10']:.4f} | "
            f"{r['delta_hr@10']:+.4f} | {r['delta_ndcg@10']:+.4f} | {r['agreement']:.3f} | "
            f"{r['max_abs_score_error']:.1e} | {r['batch_parity_max_diff']:.1e} | {r['bytes']:,} | "
            f"{100 * r['bytes_vs_fp32']:.1f}% | {r['status']} |"
        )
    (res / f"{args.tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
