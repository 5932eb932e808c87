"""export(): checkpoint -> artifact (model file, id_maps.json, manifest.json), verified in its own runtime."""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from edgerec.artifact import Artifact
from edgerec.compression.calibrate import calibration_set
from edgerec.compression.config import QuantConfig
from edgerec.compression.quantize import QuantSpec, calibrate, spec_of
from edgerec.data.interactions import ids_to_list
from edgerec.data.split import Dataset
from edgerec.errors import EdgerecError
from edgerec.exporters.config import ExportConfig
from edgerec.exporters.lint import lint
from edgerec.exporters.tensorrt_engine import ONNX_FILE, EngineUnavailable
from edgerec.exporters.verify import verify
from edgerec.io import atomic_dir, write_json
from edgerec.manifest import write_manifest
from edgerec.model.checkpoint import Checkpoint
from edgerec.model.training import torch_scorer
from edgerec.runtime import load_scorer
from edgerec.sysinfo import versions
from edgerec.targets import load_attr, target

log = logging.getLogger(__name__)


def resolve_buckets(buckets: tuple[int, ...], n_items: int) -> list[int]:
    resolved = sorted({n_items if b == 0 else b for b in buckets})
    if not resolved or resolved[0] < 1:
        raise EdgerecError(f"batch buckets must be positive sizes (0 = catalog size); got {list(buckets)}")
    return resolved


def _spec(ck: Checkpoint, ds: Dataset, cfg: ExportConfig) -> tuple[QuantSpec, str]:
    stored = spec_of(ck)
    if stored is not None:
        return stored, f"the checkpoint's quant.json (the compression step's calibration, {stored.config.observer})"
    qcfg = QuantConfig(observer=cfg.observer, calibration_size=cfg.calibration_size, seed=cfg.seed)
    return calibrate(ck.model, ds, qcfg), f"calibrated at export ({cfg.observer}, {cfg.calibration_size} pairs)"


def export(ck: Checkpoint, ds: Dataset, cfg: ExportConfig = ExportConfig(), out: str | Path | None = None) -> Artifact:
    """Export, verify in the target runtime, gate on the parity bound (GateFailed), return the Artifact.

    With `out` the folder is written in place atomically (it appears only complete, and a second writer into it
    fails at once); without, the artifact lives in a temporary folder until `.save(path)`. A TensorRT export
    without TensorRT or a GPU gives an export-only artifact (the TensorRT-ready ONNX verified in onnxruntime, plus
    trtexec.sh): its `status` is "export-only" and `engine_missing` says why.
    """
    t = target(cfg.target)
    runtime = cfg.resolved_runtime
    ds = ck.align(ds)
    model = ck.model.eval()
    buckets = [] if t.dynamic_batch else resolve_buckets(cfg.buckets, ds.n_items)
    spec, calibration = None, None
    if cfg.precision == "int8" and t.calibration == "spec":
        spec, calibration = _spec(ck, ds, cfg)
    calib = calibration_set(ds, cfg.calibration_size, seed=cfg.seed) if t.calibration == "pairs" else None
    if calib is not None and cfg.precision == "int8":
        calibration = f"ai-edge-quantizer min/max over {cfg.calibration_size} stratified pairs of the largest bucket"
    tol = cfg.bound
    owned = None
    if out is None:
        owned = Path(tempfile.mkdtemp(prefix="edgerec-artifact-"))
        out = owned / "artifact"
    missing = None
    start = time.perf_counter()
    with atomic_dir(out) as tmp:
        model_file = t.model_file(ck.version)
        (tmp / model_file).parent.mkdir(parents=True, exist_ok=True)
        exporter = load_attr(t.exporter)
        kwargs = {"buckets": buckets, "runtime": runtime, "spec": spec, "calib": calib}
        kwargs |= {"candidates": cfg.candidates, "explain": cfg.explain}  # the phone bundle's; the others ignore them
        ids = {"users": ids_to_list(ck.user_ids), "items": ids_to_list(ck.item_ids)}
        kwargs |= {"triton": cfg.triton, "version": ck.version, "id_maps": ids}  # the Triton repository's
        try:
            fields = exporter(model, cfg.precision, tmp / model_file, **kwargs)
            check_runtime = t.verify_runtime(runtime)
            missing = fields.pop("engine_missing", None)  # a repository whose engines are built on the GPU host
        except EngineUnavailable as e:
            missing, model_file, check_runtime = str(e), ONNX_FILE, "onnxruntime"
            fields = {"buckets": buckets, "inputs": ["users", "items"], "output": "scores", "onnx_file": ONNX_FILE}
        write_json(tmp / "id_maps.json", ids)
        onnx_file = fields.get("onnx_file", t.onnx_file)
        lint_report = lint(tmp / onnx_file) if onnx_file else None
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
                "checkpoint": str(ck.path) if ck.path else None,
                "weights_sha256": ck.weights_sha256,
                "arch": model.arch.to_json(),
                "metrics": {k: ck.metrics.get(k) for k in ("hr@10", "ndcg@10")},
            },
            "version": ck.version,  # the model's version: 1, +1 per `edgerec update`
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
        report["verified_with"] = check_runtime
        tol.gate(
            f"{t.name} {cfg.precision}",
            report["deltas"],
            report["agreement"],
            report["batch_parity_max_diff"],
            report["parity_batch"],
        ).enforce(report)
        manifest = {**manifest, "metrics": report.pop("metrics"), "verification": report}
        if t.readme:  # the app developer's instructions travel with the artifact (and are hashed with it)
            (tmp / "README.md").write_text(load_attr(t.readme)(manifest))
        manifest = write_manifest(tmp, manifest)
    return Artifact(out, manifest, owned=owned)
