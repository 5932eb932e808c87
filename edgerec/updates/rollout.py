"""A checkpoint rolled out into a served Triton repository: exported with the repository's own settings, verified
(the export's parity gate), then added as the next version (edgerec.serving.versions.add_version) or as the
candidate of an experiment beside the served version (edgerec.experiments.repository.start)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from edgerec.artifact import Artifact
from edgerec.data.split import Dataset
from edgerec.experiments import repository
from edgerec.experiments.config import ExperimentConfig
from edgerec.exporters.config import ExportConfig
from edgerec.exporters.exporter import export
from edgerec.model.checkpoint import Checkpoint
from edgerec.serving.config import TritonConfig
from edgerec.serving.server import check_repository
from edgerec.serving.versions import add_version


def export_for(repo: Path, ck: Checkpoint, ds: Dataset, version: int | None = None) -> Artifact:
    """`ck` exported (as `version`, default its own) with the repository's precision and Triton settings, into a
    temporary folder, gated on the precision's parity bound."""
    manifest = check_repository(repo)
    settings = {k: v for k, v in manifest["triton"].items() if k != "version"}
    cfg = ExportConfig(target="triton", precision=manifest["precision"], options=TritonConfig(**settings))
    if version is not None and version != ck.version:
        ck = replace(ck, config={**ck.config, "version": version})
    return export(ck, ds, cfg)


def rollout(repo: str | Path, ck: Checkpoint, ds: Dataset) -> dict[str, Any]:
    """The repository's new manifest. Nothing in the repository changes unless the export verified."""
    art = export_for(Path(repo), ck, ds)
    try:
        return add_version(repo, art.folder)
    finally:
        art.discard()


def start_experiment(repo: str | Path, ck: Checkpoint, ds: Dataset, cfg: ExperimentConfig) -> dict[str, Any]:
    """`ck` as the candidate of an experiment (numbered past every version the repository holds, whatever its own
    version); the repository's new manifest. Nothing changes unless the export verified."""
    repository.check_can_start(repo)  # before the export's work
    art = export_for(Path(repo), ck, ds, max(ck.version, repository.next_version(repo)))
    try:
        return repository.start(repo, art.folder, cfg)
    finally:
        art.discard()
