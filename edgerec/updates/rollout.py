"""Roll an updated checkpoint out into a served Triton repository: exported with the repository's own settings,
verified, then added as the next version (edgerec.serving.versions.add_version)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgerec.data.split import Dataset
from edgerec.exporters.config import ExportConfig
from edgerec.exporters.exporter import export
from edgerec.model.checkpoint import Checkpoint
from edgerec.serving.config import TritonConfig
from edgerec.serving.server import check_repository
from edgerec.serving.versions import add_version


def rollout(repo: str | Path, ck: Checkpoint, ds: Dataset) -> dict[str, Any]:
    """The repository's new manifest. Nothing in the repository changes unless the export verified."""
    manifest = check_repository(Path(repo))
    settings = {k: v for k, v in manifest["triton"].items() if k != "version"}
    cfg = ExportConfig(target="triton", precision=manifest["precision"], options=TritonConfig(**settings))
    art = export(ck, ds, cfg)  # a temporary folder, gated on the precision's parity bound
    try:
        return add_version(repo, art.folder)
    finally:
        art.discard()
