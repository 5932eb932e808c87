"""Profile -> steps -> artifact + report: what `edgerec export --profile` runs.

Steps, each the stage behind one of the public verbs, with the profile's own step config: train (only without a model),
compress (when the profile has a `compress` section), export (calibrate, convert, verify in the target runtime, gate
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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from edgerec.data.split import Dataset
from edgerec.errors import EdgerecError
from edgerec.io import SavesJson, atomic_dir, build_lock, cache_root, sha256_file
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

    version = f"{edgerec.__version__}+{code_hash()[:16]}"
    data = ds.fingerprint()
    steps = []
    if model is None:
        cfg = asdict(profile.train)
        inputs: list[Any] = ["train", version, data, cfg]
        if profile.train.features is not None:  # the tables' content, not only their paths
            tables = (profile.train.features.user, profile.train.features.item)
            inputs.append([sha256_file(Path(t)) if t and Path(t).is_file() else t for t in tables])
        steps.append(
            Step(
                "train",
                _key(inputs),
                f"NeuMF-{cfg['factors']} on {ds.name}, {cfg['epochs']} epochs",
            )
        )
        source = steps[-1].key
    else:
        source = _model_hash(model)
    c = profile.compress
    if c is not None:
        steps.append(Step("compress", _key(["compress", version, data, source, asdict(c)]), _what(c)))
        source = steps[-1].key
    export_cfg = asdict(export_config(profile))
    steps.append(
        Step("export", _key(["export", version, data, source, export_cfg]), f"{profile.target} {profile.precision}")
    )
    steps.append(Step("bench", "", f"{profile.package}, {profile.bench.threads} thread(s)"))
    return steps


def _what(c: Any) -> str:  # c: CompressConfig
    parts = []
    if c.prune is not None:
        parts.append(f"prune {c.prune.mlp:g}" + (f" in {c.prune.steps} steps" if c.prune.steps > 1 else ""))
    if c.distill is not None:
        parts.append(f"distill {c.train.epochs} epochs")
    if c.quantize is not None:
        parts.append(f"quantize {c.quantize.embeddings}/{c.quantize.mlp}")
    if c.search is not None:
        parts.append("search")
    return " + ".join(parts) or "compress"


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


def _load(folder: Path) -> Any:
    from edgerec.model.checkpoint import load

    return load(folder)


def _train(ds: Dataset, cfg: Any, folder: Path) -> None:  # cfg: TrainConfig
    from edgerec.model.checkpoint import Checkpoint
    from edgerec.model.distributed import fit_nproc
    from edgerec.model.training import train

    model, report = train(ds, cfg, parallel=fit_nproc)
    Checkpoint.create(model, ds, report).save(folder)


def _compress(source: Path, ds: Dataset, cfg: Any, folder: Path) -> None:  # cfg: CompressConfig
    from edgerec.compression.steps import compress

    compress(_load(source), ds, cfg).save(folder)


def _export(source: Path, ds: Dataset, cfg: Any, folder: Path) -> None:  # cfg: ExportConfig
    """Export into folder. Where the target cannot be finished here, the export-only artifact stays and its
    manifest says why (`export_only`, which run() reports)."""
    from edgerec.exporters.exporter import export

    export(_load(source), ds, cfg, folder)


def export_config(profile: Profile) -> Any:  # -> ExportConfig
    """The profile's export, recording the profile in the manifest."""
    record = {"profile": profile.to_json(), "delegate": profile.runtime.delegate}
    return replace(profile.export, extra={**profile.export.extra, **record})


@dataclass(frozen=True)
class ProfileRun(SavesJson):
    """What one profile's run produced: the artifact, its verification, its bench record, and the outcome:
    "passed", "failed" (a budget or a step failed: `failures`) or "export-only" (`failures` says why)."""

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "profile", "target", "precision", "bytes", "HR@10", "NDCG@10", "dHR@10", "p50 ms", "p99 ms", "items/s", "status"
    )  # fmt: skip

    profile: str
    target: str
    precision: str
    outcome: str
    failures: tuple[str, ...] = ()
    data: str | None = None  # the data it was verified on
    artifact: str | None = None
    bytes: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    deltas: dict[str, Any] = field(default_factory=dict)
    verified_with: str | None = None
    budget_key: str = "catalog_top10"
    bench: dict[str, Any] | None = None

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"

    @property
    def status(self) -> str:
        """The outcome with its reasons, as the comparison table shows it."""
        return self.outcome + (": " + "; ".join(self.failures) if self.failures else "")

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if v is not None and k not in ("outcome", "failures")}
        return {**out, "status": self.status}

    def cells(self) -> list[str]:
        """The row of the comparison table, one cell per COLUMNS."""
        lat = (self.bench or {}).get("latency_ms", {}).get(self.budget_key)
        ips = (self.bench or {}).get("items_per_s", {}).get(self.budget_key)
        m, d = self.metrics, self.deltas
        cell = {
            "profile": self.profile,
            "target": self.target,
            "precision": self.precision,
            "bytes": f"{self.bytes:,}" if self.bytes else "-",
            "HR@10": f"{m['hr@10']:.4f}" if "hr@10" in m else "-",
            "NDCG@10": f"{m['ndcg@10']:.4f}" if "ndcg@10" in m else "-",
            "dHR@10": f"{d['hr@10']:+.4f}" if "hr@10" in d else "-",
            "p50 ms": f"{lat['p50']:.3f}" if lat else "-",
            "p99 ms": f"{lat['p99']:.3f}" if lat else "-",
            "items/s": f"{ips:,.0f}" if ips else "-",
            "status": self.status,
        }
        return [cell[c] for c in self.COLUMNS]


@dataclass(frozen=True)
class DryRun:
    """The steps a profile would run, and which of them the cache already holds."""

    profile: str
    steps: tuple[Step, ...]
    cached: tuple[bool, ...]


def run(
    profile: Profile,
    ds: Dataset,
    out: str | Path,
    model: str | Path | None = None,
    cache: Path | None = None,
    bench_time_s: float | None = None,
) -> ProfileRun:
    """Run the profile's steps; the run's record is also written to out/<profile.output.bench_file>."""
    cache = cache or default_cache()
    model_dir = Path(model) if model is not None else None
    source = model_dir
    export_only = None
    for step in plan(profile, ds, model_dir):
        folder = step.folder(cache)
        if step.name == "train":
            _step(step, folder, _load, lambda f=folder: _train(ds, profile.train, f))
            source = folder
        elif step.name == "compress":
            _step(step, folder, _load, lambda f=folder, s=source: _compress(s, ds, profile.compress, f))
            source = folder
        elif step.name == "export":
            _step(step, folder, read_manifest, lambda f=folder, s=source: _export(s, ds, export_config(profile), f))
            export_only = read_manifest(folder).get("export_only")
            with atomic_dir(out) as tmp:
                shutil.copytree(folder, tmp, dirs_exist_ok=True)
    manifest = read_manifest(out)
    done = dict(
        profile=profile.name,
        data=ds.name,
        target=profile.target,
        precision=profile.precision,
        artifact=str(out),
        bytes=manifest["files"][manifest["model_file"]]["bytes"],
        metrics=manifest["metrics"],
        deltas=manifest["verification"]["deltas"],
        verified_with=manifest["verification"]["verified_with"],
        budget_key=profile.budget.latency_key,
    )
    ok, installed = runtime_version_ok(profile)
    if export_only is None and not ok:
        export_only = f"{profile.package} {profile.runtime.version} is {installed} here"
    if export_only is not None:
        result = ProfileRun(outcome="export-only", failures=(export_only,), **done)
    else:
        also = (profile.budget.batch,) if profile.budget.batch else ()  # the budget's batch is always measured
        bench_cfg = replace(profile.bench, also=tuple(sorted({*profile.bench.also, *also})))
        if bench_time_s is not None:
            bench_cfg = replace(bench_cfg, min_time_s=bench_time_s)
        from edgerec.benchmarking.latency import bench_artifact

        record = bench_artifact(Path(out), bench_cfg, None)
        failures = tuple(profile.budget.failures(record))
        done["bytes"] = record["bytes"]  # what the budget counts: the model file, or what a web page downloads
        result = ProfileRun(outcome="failed" if failures else "passed", failures=failures, bench=record, **done)
    result.save(Path(out) / profile.output.bench_file)
    return result


def dry_run(profile: Profile, ds: Dataset, model: str | Path | None = None, cache: Path | None = None) -> DryRun:
    cache = cache or default_cache()
    steps = plan(profile, ds, Path(model) if model is not None else None)
    return DryRun(profile.name, tuple(steps), tuple(s.name != "bench" and s.folder(cache).is_dir() for s in steps))
