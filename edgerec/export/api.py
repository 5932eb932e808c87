"""export(): checkpoint -> artifact folder (model file, id_maps.json, manifest.json), verified in its runtime."""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from edgerec.artifact import write_manifest
from edgerec.compress.calibrate import calibration_set
from edgerec.compress.quantize import QuantConfig, QuantSpec, calibrate, load_spec
from edgerec.data.split import Dataset
from edgerec.errors import EdgerecError
from edgerec.export.lint import lint
from edgerec.export.tensorrt_engine import ONNX_FILE, EngineUnavailable
from edgerec.export.verify import ExportTolerance, gate, verify
from edgerec.io import atomic_dir
from edgerec.model.checkpoint import load as load_checkpoint
from edgerec.model.training import torch_scorer
from edgerec.runtime import load_scorer
from edgerec.targets import load_attr, target

log = logging.getLogger(__name__)

TOOLS = ("edgerec", "numpy", "torch", "onnx", "onnxruntime", "litert-torch", "ai-edge-quantizer", "ai-edge-litert")
DEFAULT_BUCKETS = (1, 1000, 0)  # 0 = the catalog size: one user against every item in one call


@dataclass(frozen=True)
class ExportConfig:
    target: str = "tflite"
    precision: str = "fp32"
    runtime: str | None = None  # default: the target's first runtime
    buckets: tuple[int, ...] = DEFAULT_BUCKETS  # fixed-batch targets only; 0 stands for the catalog size
    calibration_size: int = 20_000
    # when the checkpoint has no calibration result of its own; percentile kept HR@10 best in the compression
    # benchmark (ML-1M NeuMF-8: -0.0025 vs minmax -0.0041)
    observer: str = "percentile"
    seed: int = 0
    threads: int = 1  # runtime threads during verification
    tolerance: ExportTolerance | None = None  # default: ExportTolerance.for_precision(precision)
    candidates: int = 0  # tflite-bundle: length of the `score` signature's candidate list (0 = recommend only)
    extra: dict[str, Any] = field(default_factory=dict)  # recorded in the manifest (e.g. the profile)


def versions() -> dict[str, str]:
    out = {}
    for tool in TOOLS:
        try:
            out[tool] = metadata.version(tool)
        except metadata.PackageNotFoundError:
            continue
    return out


def resolve_buckets(buckets: tuple[int, ...], n_items: int) -> list[int]:
    resolved = sorted({n_items if b == 0 else b for b in buckets})
    if not resolved or resolved[0] < 1:
        raise EdgerecError(f"batch buckets must be positive sizes (0 = catalog size); got {list(buckets)}")
    return resolved


def _spec(folder: Path, model, ds: Dataset, cfg: ExportConfig) -> tuple[QuantSpec, str]:
    stored = load_spec(folder)
    if stored is not None:
        return stored, f"{folder.name}/quant.json (the compression step's calibration, {stored.config.observer})"
    qcfg = QuantConfig(observer=cfg.observer, calibration_size=cfg.calibration_size, seed=cfg.seed)
    return calibrate(model, ds, qcfg), f"calibrated at export ({cfg.observer}, {cfg.calibration_size} pairs)"


def export(checkpoint: str | Path, ds: Dataset, out: str | Path, cfg: ExportConfig = ExportConfig()) -> dict:
    """Export, verify in the target runtime, gate on the tolerance; returns the manifest. The folder `out` appears
    only complete. A TensorRT export without TensorRT or a GPU writes an export-only artifact (the TensorRT-ready
    ONNX verified in onnxruntime, plus trtexec.sh) and then raises EngineUnavailable."""
    t = target(cfg.target)
    t.check_precision(cfg.precision)
    runtime = cfg.runtime or t.runtimes[0]
    t.check_runtime(runtime)
    folder = Path(checkpoint)
    ck = load_checkpoint(folder)
    ck.check_data(ds)
    model = ck.model.eval()
    buckets = [] if t.dynamic_batch else resolve_buckets(cfg.buckets, ds.n_items)
    spec, calibration = None, None
    if cfg.precision == "int8" and t.calibration == "spec":
        spec, calibration = _spec(folder, model, ds, cfg)
    calib = calibration_set(ds, cfg.calibration_size, seed=cfg.seed) if t.calibration == "pairs" else None
    if calib is not None and cfg.precision == "int8":
        calibration = f"ai-edge-quantizer min/max over {cfg.calibration_size} stratified pairs of the largest bucket"
    tol = cfg.tolerance or ExportTolerance.for_precision(cfg.precision)
    missing = None
    start = time.perf_counter()
    with atomic_dir(out) as tmp:
        model_file = f"model{t.suffix}"
        exporter = load_attr(t.exporter)
        kwargs = {"buckets": buckets, "runtime": runtime, "spec": spec, "calib": calib, "candidates": cfg.candidates}
        try:
            fields = exporter(model, cfg.precision, tmp / model_file, **kwargs)
            check_runtime = t.verify_runtime(runtime)
        except EngineUnavailable as e:
            missing, model_file, check_runtime = str(e), ONNX_FILE, "onnxruntime"
            fields = {"buckets": buckets, "inputs": ["users", "items"], "output": "scores", "onnx_file": ONNX_FILE}
        shutil.copyfile(folder / "id_maps.json", tmp / "id_maps.json")
        lint_report = lint(tmp / t.onnx_file) if t.onnx_file else None
        if lint_report is not None and lint_report.get("passed") is False:
            first = (lint_report["failing"] + lint_report["errors"] + ["see the report"])[0]
            raise EdgerecError(f"polygraphy check lint failed on the exported ONNX: {first}")
        manifest = {
            "target": t.name,
            "precision": cfg.precision,
            "runtime": runtime,
            "model_file": model_file,
            "status": "export-only" if missing else "verified",
            "n_users": ds.n_users,
            "n_items": ds.n_items,
            "score": "float32 logit (sigmoid gives the probability); higher = more relevant",
            "ids": "dense indices; id_maps.json maps them to the original user and item ids",
            **fields,
            "calibration": calibration,
            **({"lint": lint_report} if lint_report else {}),
            "source": {
                "checkpoint": str(folder),
                "weights_sha256": ck.config.get("weights_sha256"),
                "arch": model.arch.to_json(),
                "metrics": {k: ck.metrics.get(k) for k in ("hr@10", "ndcg@10")},
            },
            "version": int(ck.config.get("version", 1)),  # the model's version: 1, +1 per `edgerec update`
            **({"lineage": ck.config["lineage"]} if "lineage" in ck.config else {}),
            "data": {**ds.summary(), "fingerprint": ds.fingerprint()},
            "seed": cfg.seed,
            "tolerance": asdict(tol),
            "versions": versions(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **({"engine_missing": missing} if missing else {}),
            **cfg.extra,
        }
        write_manifest(tmp, manifest)  # lets the runtime open the folder for verification
        log.info(
            "exported %s %s in %.1f s; verifying in %s",
            t.name,
            cfg.precision,
            time.perf_counter() - start,
            check_runtime,
        )
        scorer = load_scorer(tmp, threads=cfg.threads, runtime=check_runtime)
        report = verify(scorer, torch_scorer(model), ds)
        gate(report, tol, f"{t.name} {cfg.precision}")
        report["verified_with"] = check_runtime
        manifest = {**manifest, "metrics": report.pop("metrics"), "verification": report}
        if t.readme:  # the app developer's instructions travel with the artifact (and are hashed with it)
            (tmp / "README.md").write_text(load_attr(t.readme)(manifest))
        manifest = write_manifest(tmp, manifest)
    if missing:
        raise EngineUnavailable(
            f"{missing}: wrote the TensorRT-ready ONNX (verified in onnxruntime) and trtexec.sh to {out}; "
            "build the engine on the GPU host"
        )
    return manifest
