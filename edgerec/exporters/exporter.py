"""export(): checkpoint -> artifact (model file, id_maps.json, manifest.json), verified in its own runtime."""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import asdict, replace
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
from edgerec.exporters.verify import verify
from edgerec.io import atomic_dir, write_json
from edgerec.manifest import Manifest, Source, write_manifest
from edgerec.model.checkpoint import Checkpoint
from edgerec.model.training import torch_scorer
from edgerec.runtime import load_scorer
from edgerec.sysinfo import versions
from edgerec.targets import ExportContext, exporter_module, target

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
    fails at once); without, the artifact lives in a temporary folder until `.save(path)`. An exporter that cannot
    finish here (TensorRT without TensorRT or a GPU) gives an export-only artifact holding what it could verify:
    its `status` is "export-only" and `export_only` says why.
    """
    t = target(cfg.target)
    module = exporter_module(cfg.target)
    runtime = cfg.resolved_runtime
    ds = ck.align(ds)
    model = ck.model.eval()
    spec, calibration = None, None
    if cfg.precision == "int8" and t.calibration == "spec":
        spec, calibration = _spec(ck, ds, cfg)
    calib = calibration_set(ds, cfg.calibration_size, seed=cfg.seed) if t.calibration == "pairs" else None
    if calib is not None and cfg.precision == "int8":
        calibration = f"the quantizer's min/max over {cfg.calibration_size} stratified pairs of the largest bucket"
    owned = None
    if out is None:
        owned = Path(tempfile.mkdtemp(prefix="edgerec-artifact-"))
        out = owned / "artifact"
    start = time.perf_counter()
    with atomic_dir(out) as tmp:
        model_file = t.model_file(ck.version)
        (tmp / model_file).parent.mkdir(parents=True, exist_ok=True)
        ids = {"users": ids_to_list(ck.user_ids), "items": ids_to_list(ck.item_ids)}
        ctx = ExportContext(
            precision=cfg.precision,
            folder=tmp,
            model_path=tmp / model_file,
            runtime=runtime,
            buckets=() if t.dynamic_batch else tuple(resolve_buckets(cfg.buckets, ds.n_items)),
            version=ck.version,
            id_maps=ids,
            options=cfg.options,
            spec=spec,
            calib=calib,
        )
        done = module.export(model, ctx)
        model_file = done.model_file or model_file
        check_runtime = done.verify_runtime or t.verify_runtime(runtime)
        write_json(tmp / "id_maps.json", ids)
        onnx_file = done.fields.get("onnx_file", t.onnx_file)
        lint_report = lint(tmp / onnx_file) if onnx_file else None
        if lint_report is not None and lint_report.get("passed") is False:
            first = (lint_report["failing"] + lint_report["errors"] + ["see the report"])[0]
            raise EdgerecError(f"polygraphy check lint failed on the exported ONNX: {first}")
        fields = {k: v for k, v in done.fields.items() if k != "model_file"}
        manifest = Manifest(
            target=t.name,
            precision=cfg.precision,
            runtime=runtime,
            model_file=model_file,
            n_users=ds.n_users,
            n_items=ds.n_items,
            version=ck.version,
            seed=cfg.seed,
            source=Source(
                checkpoint=str(ck.path) if ck.path else None,
                weights_sha256=ck.weights_sha256,
                arch=model.arch.to_json(),
                metrics={k: ck.metrics.get(k) for k in ("hr@10", "ndcg@10")},
            ),
            data={**ds.summary(), "fingerprint": ds.fingerprint()},
            tolerance=asdict(cfg.bound),
            versions=versions(),
            created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            calibration=calibration,
            target_fields=fields,
            lint=lint_report,
            lineage=ck.config.get("lineage"),
            export_only=done.export_only,
            extra=cfg.extra,
        )
        write_manifest(tmp, manifest.to_json())  # lets the runtime open the folder for verification
        log.info(
            "exported %s %s in %.1f s; verifying in %s",
            t.name,
            cfg.precision,
            time.perf_counter() - start,
            check_runtime,
        )
        scorer = load_scorer(tmp, threads=cfg.threads, runtime=check_runtime)
        what = f"{t.name} {cfg.precision}"
        report = verify(scorer, torch_scorer(model), ds, cfg.bound, what, check_runtime)
        report.gate.enforce(report)
        manifest = replace(manifest, metrics=report.metrics, verification=report.to_json())
        readme = getattr(module, "readme", None)
        if readme is not None:  # the app developer's instructions travel with the artifact (and are hashed with it)
            (tmp / "README.md").write_text(readme(manifest.to_json()))
        written = write_manifest(tmp, manifest.to_json())
    return Artifact(out, written, owned=owned)
