"""ai-edge-quantizer -> litert-quantizer (issue 32, item 6): every TFLite artifact edgerec makes, from both quantizers,
side by side.

    python benchmarks/quantizer_move.py [--data synthetic:users=300,items=180,seed=3] [--epochs 4] [--model CKPT]
                                        [--bundles BEFORE AFTER]

litert-quantizer is ai-edge-quantizer renamed by its authors (Google AI Edge); edgerec's exporters import
`litert_quantizer`. One checkpoint (trained here from --data with seed 0, or --model) is exported to every variant of
the `tflite` and `tflite-bundle` targets twice, each time in a fresh process running the same edgerec code:

- ai-edge-quantizer: `litert_quantizer` and its submodules are aliased to the installed `ai_edge_quantizer` ones
  before edgerec runs (the two packages ship the same modules under the two names), so the exporters call
  ai-edge-quantizer's code;
- litert-quantizer: the package itself.

Each process records the file its `litert_quantizer.quantizer` module came from and fails if the other package's
quantizer ran. fp32 is a control: the `tflite` fp32 export does not call the quantizer, the bundle's does (its
flatbuffer utilities strip the tensor names). Every export is verified by edgerec.export in ai-edge-litert (HR@10 /
NDCG@10 on the test protocol); then the two artifacts of each variant are opened in ai-edge-litert and compared:
model bytes, sha256, top-10 agreement over the catalog (train items excluded), max |score difference| on the test
protocol's pairs. --bundles also compares two existing phone-bundle folders (e.g. `edgerec export --profile
tflite-android-int8` before and after the move). Writes results/quantizer_move.{json,md}.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OLD, NEW = "ai-edge-quantizer", "litert-quantizer"
MODULES = {OLD: "ai_edge_quantizer", NEW: "litert_quantizer"}
LEGACY = "tflite-runtime"
# what edgerec's exporters import from the quantizer (edgerec.exporters.tflite_model, bundle, small_constants)
USED = ("qtyping", "quantizer", "utils.tfl_interpreter_utils", "utils.tfl_flatbuffer_utils")
# name -> ExportConfig fields
VARIANTS: dict[str, dict[str, Any]] = {
    "tflite-fp32 (control)": {"target": "tflite", "precision": "fp32"},
    "tflite-fp16": {"target": "tflite", "precision": "fp16"},
    "tflite-int8-dynamic": {"target": "tflite", "precision": "int8-dynamic"},
    "tflite-int8": {"target": "tflite", "precision": "int8"},
    # per-tensor weights (the granularity edgerec picks for tflite-runtime 2.14); verified in ai-edge-litert
    "tflite-int8-dynamic-tflite-runtime": {"target": "tflite", "precision": "int8-dynamic", "runtime": LEGACY},
    "tflite-int8-tflite-runtime": {"target": "tflite", "precision": "int8", "runtime": LEGACY},
    "tflite-bundle-fp32": {"target": "tflite-bundle", "precision": "fp32"},
    "tflite-bundle-fp16": {"target": "tflite-bundle", "precision": "fp16"},
    "tflite-bundle-int8": {"target": "tflite-bundle", "precision": "int8"},
    "tflite-bundle-int8-candidates100": {"target": "tflite-bundle", "precision": "int8", "candidates": 100},
}


def alias_old_quantizer() -> None:
    """Make `import litert_quantizer[.x]` give the ai_edge_quantizer modules (no file of litert_quantizer is read)."""
    import importlib

    for sub in USED:
        importlib.import_module(f"ai_edge_quantizer.{sub}")
    for name, module in list(sys.modules.items()):
        if name == "ai_edge_quantizer" or name.startswith("ai_edge_quantizer."):
            sys.modules["litert_quantizer" + name[len("ai_edge_quantizer") :]] = module


def worker(quantizer: str, model: str, data: str, out: Path) -> int:
    """Export every variant with `quantizer`; write out/<variant>/ and out/worker.json."""
    from importlib import metadata

    if quantizer == OLD:
        alias_old_quantizer()
    import edgerec
    from edgerec.exporters.config import ExportConfig
    from edgerec.gates import ParityBound

    ds = edgerec.dataset(data)
    rows = {}
    for name, fields in VARIANTS.items():
        tol = ParityBound.for_precision(fields["precision"])
        cfg = ExportConfig(**fields, tolerance=replace(tol, hr=1.0))  # the gate is recorded below, not enforced
        art = edgerec.export(model, cfg, ds, out=out / name.split(" ")[0])
        v = art.verification
        gate = tol.gate(name, v["deltas"], v["agreement"], v["batch_parity_max_diff"], v["parity_batch"])
        status = "passed" if gate.passed else "failed: " + "; ".join(gate.failures)
        rows[name] = {"metrics": art.metrics, "verification": art.verification, "status": status}
        print(f"{quantizer}: {name} {art.bytes:,} bytes, HR@10 {art.metrics['hr@10']:.4f}", flush=True)
    used = {sub: sys.modules[f"litert_quantizer.{sub}"].__file__ for sub in USED}
    want = f"/{MODULES[quantizer]}/"
    wrong = {sub: f for sub, f in used.items() if want not in str(f)}
    if wrong:
        raise SystemExit(f"{quantizer} run used other files: {wrong}")
    if quantizer == OLD:
        stray = [n for n, m in sys.modules.items() if "/litert_quantizer/" in str(getattr(m, "__file__", "") or "")]
        if stray:
            raise SystemExit(f"{quantizer} run loaded litert_quantizer files: {stray[:5]}")
    record = {"quantizer": quantizer, "version": metadata.version(quantizer), "files": used, "rows": rows}
    (out / "worker.json").write_text(json.dumps(record, indent=2) + "\n")
    return 0


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def compare(folders: dict[str, Path], ds: Any) -> dict[str, Any]:  # ds: edgerec.data.Dataset
    """Both artifacts of one variant in ai-edge-litert: top-10 agreement, max |score difference|."""
    import numpy as np

    from edgerec.metrics import agreement_users, catalog_top_k, jaccard
    from edgerec.runtime import load_scorer

    a, b = (load_scorer(folders[q], runtime="ai-edge-litert") for q in (OLD, NEW))
    users = np.repeat(ds.test_users, 1 + ds.test_negatives.shape[1])
    items = np.concatenate([ds.test_items[:, None], ds.test_negatives], axis=1).ravel()
    top = agreement_users(ds)
    return {
        "agreement": jaccard(catalog_top_k(a, ds, users=top), catalog_top_k(b, ds, users=top)),
        "agreement_users": ds.n_users if top is None else len(top),
        "max_abs_score_diff": float(np.abs(a(users, items) - b(users, items)).max()),
        "pairs": len(users),
    }


def bundles(before: Path, after: Path) -> dict[str, Any]:
    """Two existing phone-bundle folders: model bytes and the manifests' metrics and verification."""
    m = {k: json.loads((p / "manifest.json").read_text()) for k, p in (("before", before), ("after", after))}
    model = {k: (p / m[k]["model_file"]).read_bytes() for k, p in (("before", before), ("after", after))}
    keys = ("agreement", "max_abs_score_error", "batch_parity_max_diff")
    return {
        "folders": {"before": str(before), "after": str(after)},
        "bytes": {k: len(v) for k, v in model.items()},
        "sha256": {k: hashlib.sha256(v).hexdigest() for k, v in model.items()},
        "identical": model["before"] == model["after"],
        "metrics": {k: {x: m[k]["metrics"][x] for x in ("hr@10", "ndcg@10")} for k in m},
        "verification": {k: {x: m[k]["verification"][x] for x in keys} for k in m},
        "tool": {k: m[k]["quantization"]["tool"] for k in m},
    }


def markdown(record: dict[str, Any]) -> str:
    v = record["versions"]
    lines = [
        "# ai-edge-quantizer -> litert-quantizer: the TFLite artifacts side by side",
        "",
        f"Machine: {record['machine']}. Model: {record['model']} on {record['data']['name']} "
        f"({record['data']['users']} users, {record['data']['items']} items); fp32 source HR@10 "
        f"{record['source']['hr@10']:.4f}, NDCG@10 {record['source']['ndcg@10']:.4f}. {OLD} {v[OLD]} "
        f"(aliased as `litert_quantizer`, {record['files'][OLD]}) vs {NEW} {v[NEW]} ({record['files'][NEW]}), the "
        f"same edgerec code, one process each. HR@10 / NDCG@10 as verified in ai-edge-litert at export; agreement: "
        f"mean Jaccard of the two artifacts' catalog top-10 over {record['rows'][0]['agreement_users']} users; "
        f"max diff: max |logit difference| over the test protocol's {record['rows'][0]['pairs']:,} pairs. "
        f"Generated by {record['provenance']}.",
        "",
        "| variant | bytes (old / new) | identical | sha256 old | sha256 new | HR@10 old / new | NDCG@10 old / new | "
        "dHR@10 | agreement | max diff | gate (old / new) |",
        "|" + "---|" * 11,
    ]
    for r in record["rows"]:
        o, n = r[OLD], r[NEW]
        lines.append(
            f"| {r['variant']} | {o['bytes']:,} / {n['bytes']:,} | {'yes' if r['identical'] else 'no'} | "
            f"`{o['sha256'][:12]}` | `{n['sha256'][:12]}` | {o['hr@10']:.4f} / {n['hr@10']:.4f} | "
            f"{o['ndcg@10']:.4f} / {n['ndcg@10']:.4f} | {n['hr@10'] - o['hr@10']:+.4f} | {r['agreement']:.3f} | "
            f"{r['max_abs_score_diff']:.1e} | {o['status']} / {n['status']} |"
        )
    same = sum(r["identical"] for r in record["rows"])
    lines += ["", f"{same} of {len(record['rows'])} variants byte-identical."]
    b = record.get("bundles")
    if b:
        lines += [
            "",
            "## The phone bundle (`edgerec export --profile tflite-android-int8`) before and after the move",
            "",
            f"before: `{b['folders']['before']}`, after: `{b['folders']['after']}`.",
            "",
            "| | model bytes | sha256 | HR@10 | NDCG@10 | agreement vs fp32 | max abs err | manifest tool |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for k in ("before", "after"):
            m, ver = b["metrics"][k], b["verification"][k]
            lines.append(
                f"| {k} | {b['bytes'][k]:,} | `{b['sha256'][k][:12]}` | {m['hr@10']:.4f} | {m['ndcg@10']:.4f} | "
                f"{ver['agreement']:.4f} | {ver['max_abs_score_error']:.1e} | {b['tool'][k].split(' ')[0]} |"
            )
        lines += ["", f"model.tflite byte-identical: {'yes' if b['identical'] else 'no'}."]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="synthetic:users=300,items=180,seed=3")
    ap.add_argument("--epochs", type=int, default=4, help="training epochs when no --model is given")
    ap.add_argument("--model", default=None, help="a checkpoint folder trained on --data (default: train one here)")
    ap.add_argument("--out", default=None, help="artifact folders (default: a temporary folder, removed)")
    ap.add_argument("--results", default=str(HERE / "results"))
    ap.add_argument("--tag", default="quantizer_move")
    ap.add_argument("--bundles", nargs=2, metavar=("BEFORE", "AFTER"), help="two phone-bundle folders to compare")
    ap.add_argument("--worker", choices=(OLD, NEW), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args.model, args.data, Path(args.out))

    import edgerec
    from edgerec.sysinfo import machine, provenance

    with tempfile.TemporaryDirectory(prefix="quantizer-move-") as tmp:
        out = Path(args.out or tmp)
        model = args.model
        if model is None:
            ck = edgerec.train(args.data, edgerec.TrainConfig(epochs=args.epochs))
            model = str(ck.save(out / "checkpoint"))
        ck = edgerec.load(model)
        path = os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")]))  # this checkout
        env = {**os.environ, "PYTHONPATH": path}
        workers = {}
        for q in (OLD, NEW):  # one after the other: the exports and their verification use the machine's cores
            cmd = [sys.executable, __file__, "--worker", q, "--model", model, "--data", args.data]
            subprocess.run([*cmd, "--out", str(out / q)], env=env, check=True)
            workers[q] = json.loads((out / q / "worker.json").read_text())
        ds = ck.align(edgerec.dataset(args.data))
        rows = []
        for name in VARIANTS:
            folders = {q: out / q / name.split(" ")[0] for q in (OLD, NEW)}
            row: dict[str, Any] = {"variant": name, **compare(folders, ds)}
            files = {}
            for q, folder in folders.items():
                w = workers[q]["rows"][name]
                files[q] = folder / json.loads((folder / "manifest.json").read_text())["model_file"]
                row[q] = {
                    "bytes": files[q].stat().st_size,
                    "sha256": sha256(files[q]),
                    "hr@10": w["metrics"]["hr@10"],
                    "ndcg@10": w["metrics"]["ndcg@10"],
                    "agreement_vs_fp32": w["verification"]["agreement"],
                    "max_abs_score_error_vs_fp32": w["verification"]["max_abs_score_error"],
                    "status": w["status"],
                }
            row["identical"] = files[OLD].read_bytes() == files[NEW].read_bytes()
            rows.append(row)
            print(json.dumps(row), flush=True)
    record = {
        "provenance": provenance(),
        "machine": machine(),
        "model": args.model or f"NeuMF-8 trained here ({args.epochs} epochs, seed 0)",
        "data": ds.summary(),
        "source": {k: ck.metrics[k] for k in ("hr@10", "ndcg@10")},
        "versions": {q: workers[q]["version"] for q in (OLD, NEW)},
        "files": {q: str(Path(workers[q]["files"]["quantizer"]).parent.name) + "/" for q in (OLD, NEW)},
        "rows": rows,
        **({"bundles": bundles(Path(args.bundles[0]), Path(args.bundles[1]))} if args.bundles else {}),
    }
    res = Path(args.results)
    res.mkdir(parents=True, exist_ok=True)
    (res / f"{args.tag}.json").write_text(json.dumps(record, indent=2) + "\n")
    text = markdown(record)
    (res / f"{args.tag}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
