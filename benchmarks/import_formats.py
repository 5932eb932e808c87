"""Importing foreign NCF models on ML-1M (NCF split): a real RecBole NeuMF and the benchmark teacher written in the
NCF authors' Keras layout and in NVIDIA DLE's, each imported, evaluated, exported for tflite-android-int8 and
benchmarked in LiteRT, all through the `edgerec` command.

    python benchmarks/import_formats.py [--teacher benchmarks/runs/neumf8] [--recbole benchmarks/runs/recbole]

RecBole: benchmarks/recbole/train_recbole.py (in its own venv, see benchmarks/recbole/setup_venv.sh) trains NeuMF with
RecBole itself and records RecBole's own predictions on 1,000 (user, item) pairs and its test metrics. Here its
checkpoint and Dataset file are imported (`edgerec import --format recbole CKPT DATASET`), the imported logits are
compared with RecBole's on those pairs, and RecBole's full-ranking test metrics are set beside edgerec's on the same
test users. Keras / DLE: the teacher (benchmarks/teacher.py) written with tests/foreign_files.py in the layouts those
tools save (they cannot be installed here: Keras 1 + Theano, DLE's CUDA stack) and imported back. Writes
benchmarks/results/import.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from edgerec.model.checkpoint import load  # noqa: E402
from edgerec.sysinfo import machine, provenance  # noqa: E402
from tests.foreign_files import dle_state, keras_h5  # noqa: E402

DATA = HERE.parents[1] / "shared" / "data" / "ml-1m-ncf"
PROFILE = "tflite-android-int8"


def edgerec_cli(*args: str) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "edgerec.entry", *args], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"edgerec {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start, proc.stdout


def pipeline(name: str, fmt: str, sources: list[Path], work: Path, data: Path, extra: tuple[str, ...] = ()) -> dict:
    """import -> export --profile -> bench, each through the CLI; returns the numbers for the table."""
    ck_dir, art = work / f"{name}-imported", work / f"{name}-{PROFILE}"
    t_import, _ = edgerec_cli("-q", "import", "--format", fmt, *map(str, sources), *extra, "--data", str(data),
                              "--out", str(ck_dir))  # fmt: skip
    ck = load(ck_dir)
    t_export, _ = edgerec_cli("-q", "export", "--profile", PROFILE, "--model", str(ck_dir), "--data", str(data),
                              "--out", str(art))  # fmt: skip
    bench_json = work / f"{name}-bench.json"
    edgerec_cli("-q", "bench", str(art), "--data", str(data), "--json", str(bench_json))
    manifest = json.loads((art / "manifest.json").read_text())
    bench = json.loads(bench_json.read_text())
    return {
        "name": name,
        "ck": ck,
        "import_s": t_import,
        "export_s": t_export,
        "fidelity": ck.config["imported"]["fidelity"]["max_abs_logit_error"],
        "metrics": ck.metrics,
        "artifact": manifest,
        "bench": bench,
        "dir": ck_dir,
    }


def recbole_check(row: dict, recbole: Path) -> dict:
    """The imported model against RecBole's own predict() on the recorded pairs."""
    ref = json.loads((recbole / "reference_pairs.json").read_text())
    ck = row["ck"]
    uix = {str(u): k for k, u in enumerate(ck.user_ids)}
    iix = {str(i): k for k, i in enumerate(ck.item_ids)}
    users = torch.tensor([uix[str(u)] for u in ref["user_tokens"]])
    items = torch.tensor([iix[str(i)] for i in ref["item_tokens"]])
    with torch.no_grad():
        logits = ck.model(users, items).double().numpy()
    want = np.asarray(ref["forward_logit"], dtype=np.float64)
    probs = np.asarray(ref["predict"], dtype=np.float64)
    return {
        "pairs": len(want),
        "max_logit_error": float(np.max(np.abs(logits - want))),
        "max_prob_error": float(np.max(np.abs(1 / (1 + np.exp(-logits)) - probs))),
    }


def _settings(rb: dict) -> dict:
    keys = ("mf_embedding_size", "mlp_embedding_size", "mlp_hidden_size", "dropout_prob", "train_batch_size",
            "learning_rate", "train_neg_sample_args", "epochs", "stopping_step", "valid_metric")  # fmt: skip
    cfg = rb["config_dict_passed"]
    return {k: cfg[k] for k in keys if k in cfg}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--teacher", default=str(HERE / "runs" / "neumf8"))
    ap.add_argument("--recbole", default=str(HERE / "runs" / "recbole"))
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--work", default=str(HERE / "runs" / "import"))
    ap.add_argument("--results", default=str(HERE / "results" / "import.md"))
    args = ap.parse_args()
    work, data, recbole = Path(args.work), Path(args.data), Path(args.recbole)
    work.mkdir(parents=True, exist_ok=True)
    rows = []

    rb = json.loads((recbole / "recbole_metrics.json").read_text())
    rec = pipeline("recbole", "recbole", [Path(rb["checkpoint_file"]), Path(rb["dataset_pickle"])], work, data)
    rec["check"] = recbole_check(rec, recbole)
    rows.append(rec)

    teacher = load(args.teacher)
    keras_file = keras_h5(work / "NeuMF_8_[64,32,16,8].h5", teacher.model, keras=1)
    rows.append(pipeline("keras-h5", "keras-h5", [keras_file], work, data))
    torch.save(dle_state(teacher.model, fp16=True, module=True), work / "dle-model.pth")
    rows.append(pipeline("dle-fp16", "dle", [work / "dle-model.pth"], work, data))

    lines = [
        "# Importing foreign NCF models (ML-1M, NCF split)",
        "",
        f"{provenance(sys.argv)}  ",
        f"Machine: {machine()} (CPU only).",
        "",
        "Each row: `edgerec import` (fidelity check: the source format's own math vs the imported NeuMF on 4,096 "
        "pairs, float64) -> metrics on the NCF protocol -> `edgerec export --profile tflite-android-int8` (its parity "
        "gate) -> `edgerec bench` in LiteRT (one user against the 3,706-item catalog, one thread).",
        "",
        "| source | fidelity max abs logit err | HR@10 / NDCG@10 (imported, PyTorch) | full HR@10 / NDCG@10 "
        "| exported int8 in LiteRT: HR@10 / NDCG@10 | gate | artifact bytes | catalog top-10 p50 / p99 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        m, b, a = r["metrics"], r["bench"], r["artifact"]
        lat = b["latency_ms"]["catalog_top10"]
        bm = b["metrics"]
        gate = "passed" if a["status"] == "verified" else a["status"]  # a refused export raises, writes nothing
        lines.append(
            f"| {r['name']} | {r['fidelity']:.1e} | {m['hr@10']:.4f} / {m['ndcg@10']:.4f} | "
            f"{m['full_hr@10']:.4f} / {m['full_ndcg@10']:.4f} | {bm['hr@10']:.4f} / {bm['ndcg@10']:.4f} | {gate} | "
            f"{b['bytes']:,} | {lat['p50']:.3f} / {lat['p99']:.3f} |"
        )
    teacher_m = teacher.metrics
    lines += [
        "",
        f"Teacher as edgerec trained it: HR@10 {teacher_m['hr@10']:.4f} / NDCG@10 {teacher_m['ndcg@10']:.4f}, full "
        f"{teacher_m['full_hr@10']:.4f} / {teacher_m['full_ndcg@10']:.4f} (the Keras row must equal it; the DLE row "
        "is its fp16 rounding).",
        "",
        "## RecBole NeuMF, trained by RecBole 1.2.1",
        "",
        f"RecBole's settings (benchmarks/recbole/train_recbole.py): {json.dumps(_settings(rb))}",
        "",
        f"Trained {rb['epochs_run']} epochs, early-stopped on valid NDCG@10 (best epoch {rb['best_epoch']}, "
        f"counting from 0), {rb['wall_time_s']['fit']:.0f} s on one thread; RecBole {rb['versions']['recbole']}, torch "
        f"{rb['versions']['torch']}.",
        "",
        f"Imported logits vs RecBole's own `predict()` on {rec['check']['pairs']} pairs: max |logit error| "
        f"{rec['check']['max_logit_error']:.2e}, max |probability error| {rec['check']['max_prob_error']:.2e}.",
        "",
        "| same test users (the NCF test item, train positives masked) | HR@10 | NDCG@10 |",
        "|---|---|---|",
        f"| RecBole's evaluation, full ranking | {rb['test_full_ranking']['hit@10']:.4f} | "
        f"{rb['test_full_ranking']['ndcg@10']:.4f} |",
        f"| edgerec on the import, full ranking | {rec['metrics']['full_hr@10']:.4f} | "
        f"{rec['metrics']['full_ndcg@10']:.4f} |",
        f"| RecBole's model, 99 sampled negatives, scored by RecBole (train_recbole.py) | "
        f"{rb['ncf_protocol_99neg_test']['hit@10']:.4f} | {rb['ncf_protocol_99neg_test']['ndcg@10']:.4f} |",
        f"| edgerec on the import, 99 sampled negatives (NCF protocol) | {rec['metrics']['hr@10']:.4f} | "
        f"{rec['metrics']['ndcg@10']:.4f} |",
        "",
        "RecBole masks its train and valid interactions; edgerec masks the NCF train file (= RecBole's train + valid).",
    ]
    out = Path(args.results)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
