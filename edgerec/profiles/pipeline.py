"""Profile -> steps -> artifact + report: what `edgerec export --profile` runs.

Steps, each one of the public verbs (edgerec.api): train (only without --model: NeuMF-8 with the default settings on
the given data), compress (when the profile prunes), export (calibrate, convert, verify in the target runtime, gate
on the parity bound), bench (latency in the target runtime, budgets). Every step but bench is cached under a
content hash of its inputs and settings (data fingerprint, input weights, configs, edgerec version and a hash of
its code): re-running with the same inputs reuses it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edgerec import api
from edgerec.data.split import Dataset
from edgerec.errors import EdgerecError
from edgerec.io import atomic_dir, build_lock, cache_root, sha256_file, write_json
from edgerec.manifest import read_manifest
from edgerec.profiles.schema import Profile, runtime_version_ok

log = logging.getLogger(__name__)


def default_cache() -> Path:
    return cache_root() / "steps"


def code_hash() -> str:
    """Identity of the installed edgerec code: a changed exporter must not reuse an old cached step."""
    import edgerec

    root = Path(edgerec.__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def _key(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class Step:
    name: str
    key: str
    detail: str

    def folder(self, cache: Path) -> Path:
        return cache / f"{self.name}-{self.key[:20]}"


def _model_hash(model: Path) -> str:
    """The checkpoint's identity: its weights and, when present, its calibration result."""
    if not ((model / "model.safetensors").is_file() and (model / "config.json").is_file()):
        from edgerec.model.checkpoint import load

        load(model)  # not a checkpoint folder: the one-line error says what it is and what was expected
    parts = [sha256_file(model / "model.safetensors")]
    if (model / "quant.json").exists():
        parts.append(sha256_file(model / "quant.json"))
    return _key(parts)


def plan(profile: Profile, ds: Dataset, model: Path | None) -> list[Step]:
    import edgerec
    from edgerec.model.config import TrainConfig

    version = f"{edgerec.__version__}+{code_hash()[:16]}"
    data = ds.fingerprint()
    steps = []
    if model is None:
        cfg = asdict(TrainConfig())
        steps.append(
            Step("train", _key(["train", version, data, cfg]), f"NeuMF-8 on {ds.name}, {cfg['epochs']} epochs")
        )
        source = steps[-1].key
    else:
        source = _model_hash(model)
    c = profile.compression
    if c.prune > 0:
        what = f"prune {c.prune:g}" + (f" in {c.prune_steps} steps" if c.prune_steps > 1 else "")
        what += f" + distill {c.distill_epochs} epochs" if c.distill else ""
        steps.append(Step("compress", _key(["compress", version, data, source, c.model_dump()]), what))
        source = steps[-1].key
    export_cfg = asdict(export_config(profile))
    steps.append(
        Step("export", _key(["export", version, data, source, export_cfg]), f"{profile.target} {profile.precision}")
    )
    steps.append(Step("bench", "", f"{profile.runtime.package}, {profile.runtime.threads} thread(s)"))
    return steps


def _step(step: Step, folder: Path, check: Callable[[Path], Any], build: Callable[[], Any]) -> None:
    """Reuse the cached step or build it. Builders of one step take turns (build_lock): a second process that needs
    a step the first is building waits for it and then reuses it."""
    if not _cached(folder, check):
        with build_lock(folder):
            if not _cached(folder, check):
                log.info("%s: %s", step.name, step.detail)
                build()
                return
    log.info("%s: reusing %s", step.name, folder)


def _cached(folder: Path, check) -> bool:
    if not folder.is_dir():
        return False
    try:
        check(folder)
        return True
    except EdgerecError:
        return False


def _train(ds: Dataset, folder: Path) -> None:
    api.train(ds).save(folder)


def _compress(profile: Profile, teacher_dir: Path, ds: Dataset, folder: Path) -> None:
    from edgerec.compression.config import CompressConfig, DistillConfig, PruneConfig
    from edgerec.model.config import fine_tune_config

    c = profile.compression
    cfg = CompressConfig(
        prune=PruneConfig.uniform(c.prune, steps=c.prune_steps),
        distill=DistillConfig(rank_k=c.rank_k) if c.distill else None,
        train=fine_tune_config(c.distill_epochs),
    )
    api.compress(teacher_dir, ds, cfg).save(folder)


def export_config(profile: Profile) -> Any:  # -> ExportConfig
    """The export the profile asks for."""
    from edgerec.exporters.config import ExportConfig

    return ExportConfig(
        target=profile.target,
        precision=profile.precision,
        runtime=profile.runtime.package,
        buckets=tuple(profile.buckets),
        calibration_size=profile.compression.calibration_size,
        observer=profile.compression.observer,
        threads=profile.runtime.threads,
        candidates=profile.candidates,
        explain=profile.explain,
        triton=profile.triton,
        tolerance=profile.tolerance,
        extra={"profile": profile.model_dump(), "delegate": profile.runtime.delegate},
    )


def _export(profile: Profile, model_dir: Path, ds: Dataset, folder: Path) -> None:
    """Export into folder. Where the target's engine cannot be built here, the export-only artifact stays and its
    manifest says why (`engine_missing`, which run() reports)."""
    api.export(model_dir, export_config(profile), ds, out=folder)


def budget_failures(profile: Profile, record: dict) -> list[str]:
    b = profile.budget
    key = b.latency_key
    lat = record["latency_ms"].get(key)
    out = []
    if b.bytes is not None and record["bytes"] > b.bytes:
        out.append(f"bytes {record['bytes']:,} > budget {b.bytes:,}")
    for name, limit in (("p50", b.p50_ms), ("p99", b.p99_ms)):
        if limit is not None and lat is not None and lat[name] > limit:
            out.append(f"{name} {lat[name]:.3f} ms > budget {limit} ms at batch {key}")
    return out


def run(
    profile: Profile,
    ds: Dataset,
    out: str | Path,
    model: str | Path | None = None,
    cache: Path | None = None,
    dry_run: bool = False,
    bench_time_s: float = 1.0,
) -> dict:
    """Run the profile's steps; returns the report row (also written to out/<profile.output.bench_file>)."""
    from edgerec.benchmarking.latency import BenchConfig

    cache = cache or default_cache()
    model_dir = Path(model) if model is not None else None
    steps = plan(profile, ds, model_dir)
    if dry_run:
        return {"profile": profile.name, "steps": [asdict(s) | {"cached": s.folder(cache).is_dir()} for s in steps]}
    source = model_dir
    status = None
    for step in steps:
        folder = step.folder(cache)
        if step.name == "train":
            _step(step, folder, api.load, lambda f=folder: _train(ds, f))
            source = folder
        elif step.name == "compress":
            _step(step, folder, api.load, lambda f=folder, src=source: _compress(profile, src, ds, f))
            source = folder
        elif step.name == "export":
            _step(step, folder, read_manifest, lambda f=folder, src=source: _export(profile, src, ds, f))
            missing = read_manifest(folder).get("engine_missing")
            status = f"export-only: {missing}" if missing else None
            with atomic_dir(out) as tmp:
                shutil.copytree(folder, tmp, dirs_exist_ok=True)
    manifest = read_manifest(out)
    row: dict[str, Any] = {
        "profile": profile.name,
        "target": profile.target,
        "precision": profile.precision,
        "bytes": manifest["files"][manifest["model_file"]]["bytes"],
        "metrics": manifest["metrics"],
        "deltas": manifest["verification"]["deltas"],
        "verified_with": manifest["verification"]["verified_with"],
        "artifact": str(out),
        "budget_key": profile.budget.latency_key,
    }
    ok, installed = runtime_version_ok(profile)
    if status is None and not ok:
        status = f"export-only: {profile.runtime.package} {profile.runtime.version} is {installed} here"
    if status is None:
        also = (profile.budget.batch,) if profile.budget.batch else ()  # the budget's batch is always measured
        bench_cfg = BenchConfig(threads=profile.runtime.threads, min_time_s=bench_time_s, also=also)
        record = api.bench(out, bench_cfg).record
        row["bench"] = record
        failures = budget_failures(profile, record)
        status = "failed: " + "; ".join(failures) if failures else "passed"
    row["status"] = status
    write_json(Path(out) / profile.output.bench_file, row)
    return row
