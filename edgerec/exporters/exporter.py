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
from edgerec.data.features import FeaturePath
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
from edgerec.targets import ExportContext, Exported, Target, exporter_module, target

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


def _context(
    ck: Checkpoint, ds: Dataset, cfg: ExportConfig, t: Target, folder: Path, user_features: FeaturePath | None = None
) -> tuple[ExportContext, str | None]:
    """What the target's exporter gets, and how int8 scales were obtained (None: no calibration)."""
    spec, calibration = None, None
    if cfg.precision == "int8" and t.calibration == "spec":
        spec, calibration = _spec(ck, ds, cfg)
    calib = calibration_set(ds, cfg.calibration_size, seed=cfg.seed) if t.calibration == "pairs" else None
    if calib is not None and cfg.precision == "int8":
        calibration = f"the quantizer's min/max over {cfg.calibration_size} stratified pairs of the largest bucket"
    ctx = ExportContext(
        precision=cfg.precision,
        folder=folder,
        model_path=folder / t.model_file(ck.version),
        runtime=cfg.resolved_runtime,
        buckets=() if t.dynamic_batch else tuple(resolve_buckets(cfg.buckets, ds.n_items)),
        version=ck.version,
        id_maps={"users": ids_to_list(ck.user_ids), "items": ids_to_list(ck.item_ids)},
        options=cfg.options,
        spec=spec,
        calib=calib,
        user_features=user_features,
    )
    return ctx, calibration


def _lint(folder: Path, onnx_file: str | None) -> dict | None:
    """polygraphy check lint of the artifact's ONNX file, if it has one; a failure is a one-line error."""
    report = lint(folder / onnx_file) if onnx_file else None
    if report is not None and report.get("passed") is False:
        first = (report["failing"] + report["errors"] + ["see the report"])[0]
        raise EdgerecError(f"polygraphy check lint failed on the exported ONNX: {first}")
    return report


def _manifest(
    ck: Checkpoint,
    ds: Dataset,
    cfg: ExportConfig,
    ctx: ExportContext,
    done: Exported,
    calibration: str | None,
    lint_report: dict | None,
) -> Manifest:
    """The artifact's manifest before verification."""
    arch = ck.model.arch
    return Manifest(
        target=cfg.target,
        precision=cfg.precision,
        runtime=ctx.runtime,
        model_file=done.model_file or ctx.model_path.relative_to(ctx.folder).as_posix(),
        n_users=ds.n_users,
        n_items=ds.n_items,
        version=ck.version,
        seed=cfg.seed,
        source=Source(
            checkpoint=ck.path.name if ck.path else None,
            weights_sha256=ck.weights_sha256,
            arch=arch.to_json(),
            metrics={k: ck.metrics.get(k) for k in ("hr@10", "ndcg@10")},
        ),
        data={**ds.summary(), "fingerprint": ds.fingerprint()},
        tolerance=asdict(cfg.bound),
        versions=versions(),
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        target_fields={k: v for k, v in done.fields.items() if k != "model_file"},
        lineage=ck.config.get("lineage"),
        export_only=done.export_only,
        extra=cfg.extra,
        calibration=calibration,
        lint=lint_report,
    )


def export(ck: Checkpoint, ds: Dataset, cfg: ExportConfig = ExportConfig(), out: str | Path | None = None) -> Artifact:
    """Export, verify in the target runtime, gate on the parity bound (GateFailed), return the Artifact.

    With `out` the folder is written in place atomically (it appears only complete, and a second writer into it
    fails at once); without, the artifact lives in a temporary folder until `.save(path)`. An exporter that cannot
    finish here (TensorRT without TensorRT or a GPU) gives an export-only artifact holding what it could verify:
    its `status` is "export-only" and `export_only` says why.
    """
    t, module = target(cfg.target), exporter_module(cfg.target)
    user_features = ck.feature_path("user")  # what the fold leaves out: new users' vectors from their features
    ck = ck.folded()  # a feature model exports as its folded NeuMF: the same scores for every known id
    ds = ck.align(ds)
    model = ck.model.eval()
    owned = None
    if out is None:
        owned = Path(tempfile.mkdtemp(prefix="edgerec-artifact-"))
        out = owned / "artifact"
    start = time.perf_counter()
    with atomic_dir(out) as tmp:
        ctx, calibration = _context(ck, ds, cfg, t, tmp, user_features)
        ctx.model_path.parent.mkdir(parents=True, exist_ok=True)
        done = module.export(model, ctx)
        write_json(tmp / "id_maps.json", ctx.id_maps)
        lint_report = _lint(tmp, done.fields.get("onnx_file", t.onnx_file))
        manifest = _manifest(ck, ds, cfg, ctx, done, calibration, lint_report)
        write_manifest(tmp, manifest.to_json())  # lets the runtime open the folder for verification
        check_runtime = done.verify_runtime or t.verify_runtime(ctx.runtime)
        log.info("exported %s %s in %.1f s; verifying in %s", t.name, cfg.precision, time.perf_counter() - start,
                 check_runtime)  # fmt: skip
        scorer = load_scorer(tmp, threads=cfg.threads, runtime=check_runtime)
        report = verify(scorer, torch_scorer(model), ds, cfg.bound, f"{t.name} {cfg.precision}", check_runtime)
        report.gate.enforce(report)
        manifest = replace(manifest, metrics=report.metrics, verification=report.to_json())
        readme = getattr(module, "readme", None)
        if readme is not None:  # the app developer's instructions travel with the artifact (and are hashed with it)
            (tmp / "README.md").write_text(readme(manifest.to_json()))
        written = write_manifest(tmp, manifest.to_json())
    return Artifact(out, written, owned=owned)
