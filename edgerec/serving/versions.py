"""Model versions inside a Triton repository: roll a new version in, roll back to an old one (torch-free).

Roll-out adds REPO/recommend/<v>/ and REPO/score/<v>/ (each built in a hidden sibling and renamed into place:
Triton only takes numeric folders for versions, so it never sees half of one) and sets the version policy to the
newest version; a running `edgerec serve` (which polls the repository) then loads it and unloads the old one, which
stays on disk. Rollback sets the policy to one specific version. The configs' other fields never change. The
manifest describes the served version, keeps every version's record under "model_versions", and lists every file's hash
again after each change (the write holds the repository's write lock; manifest.json is replaced atomically).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgerec.errors import EdgerecError
from edgerec.io import SavesJson, write_bytes, write_lock
from edgerec.manifest import MANIFEST, write_manifest
from edgerec.serving import triton_config
from edgerec.serving.server import check_repository

# the manifest fields that belong to one version (the rest describe the repository)
VERSION_FIELDS = ("model_file", "score_file", "onnx_file", "n_users", "n_items", "metrics", "verification", "source",
                  "version", "lineage", "data", "calibration", "created")  # fmt: skip


@dataclass(frozen=True)
class ServedState(SavesJson):
    """What a repository serves after a roll-out or a rollback: the served version, the versions it holds, the
    served version's metrics at export, the roll-out history; `manifest` is the repository's manifest.json."""

    version: int
    held: tuple[int, ...]
    metrics: dict[str, Any]
    rollouts: tuple[dict[str, Any], ...]
    manifest: dict[str, Any]

    @classmethod
    def of(cls, manifest: dict[str, Any]) -> ServedState:
        return cls(
            version=int(manifest["triton"]["version"]),
            held=tuple(sorted(int(v) for v in manifest.get("model_versions", {str(manifest["triton"]["version"]): 0}))),
            metrics=dict(manifest.get("metrics", {})),
            rollouts=tuple(manifest.get("rollouts", ())),
            manifest=manifest,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "held": list(self.held),
            "metrics": self.metrics,
            "rollouts": list(self.rollouts),
        }


def versions(repo: Path) -> list[int]:
    """The versions present for every server model, ascending."""
    found = None
    for model in triton_config.MODELS:
        folder = repo / model
        mine = {int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit()} if folder.is_dir() else set()
        found = mine if found is None else found & mine
    return sorted(found or ())


def record(manifest: dict[str, Any]) -> dict[str, Any]:
    return {k: manifest[k] for k in VERSION_FIELDS if k in manifest}


def version_records(manifest: dict[str, Any]) -> dict[str, Any]:
    return dict(manifest.get("model_versions") or {str(manifest["triton"]["version"]): record(manifest)})


def set_policy(repo: Path, served: int | list[int] | None, manifest: dict[str, Any]) -> None:
    """served None: serve the newest (latest, as many as the repository's served_versions); else only the version(s)
    named (an experiment serves two)."""
    from google.protobuf import text_format

    for model in triton_config.MODELS:
        path = repo / model / triton_config.CONFIG
        c = triton_config.parse(path)
        c.ClearField("version_policy")
        if served is None:
            c.version_policy.latest.num_versions = int(manifest["triton"].get("served_versions", 1))
        else:
            c.version_policy.specific.versions.extend([served] if isinstance(served, int) else served)
        write_bytes(path, text_format.MessageToString(c).encode())


def serve_alone(repo: Path, version: int, manifest: dict[str, Any]) -> None:
    """Serve `version` and nothing else: the newest policy when it is the newest held, else that one version."""
    set_policy(repo, None if version == max(versions(repo)) else version, manifest)


def refuse_during_experiment(repo: Path, manifest: dict[str, Any], what: str) -> None:
    running = manifest.get("experiment")
    if running:
        raise EdgerecError(
            f"{repo}: an experiment is running (version {running['candidate']} beside {running['control']}): "
            f"`edgerec experiment stop` or `promote` it before a {what}"
        )


def finish(repo: Path, manifest: dict[str, Any], served: int, history: dict[str, Any], event: dict) -> dict:
    current = history[str(served)]
    manifest = {k: v for k, v in manifest.items() if k not in ("files", "format", "format_version")}
    manifest = {**manifest, **current}
    manifest["triton"] = {**manifest["triton"], "version": served}
    manifest["model_versions"] = history
    manifest["rollouts"] = [*manifest.get("rollouts", []), event]
    shutil.copyfile(repo / "recommend" / str(served) / "id_maps.json", repo / ".id_maps.json.tmp")
    (repo / ".id_maps.json.tmp").replace(repo / "id_maps.json")  # the served version's ids, atomically
    return write_manifest(repo, manifest)


def add_version(repo: str | Path, new: str | Path) -> dict[str, Any]:
    """Copy the server models of the verified repository `new` (one version, the next) into `repo` and serve it."""
    repo, new = Path(repo), Path(new)
    with write_lock(repo):
        manifest = check_repository(repo)
        refuse_during_experiment(repo, manifest, "roll-out")
        incoming = check_incoming(repo, manifest, new)
        v = int(incoming["triton"]["version"])
        copy_version(repo, new, v)
        set_policy(repo, None, manifest)
        history = {**version_records(manifest), str(v): record(incoming)}
        event = {"served": v, "from": manifest["triton"]["version"], "at": _now(), "action": "rollout"}
        return finish(repo, manifest, v, history, event)


def check_incoming(repo: Path, manifest: dict[str, Any], new: Path) -> dict[str, Any]:
    """The manifest of the verified repository `new` once it may join `repo`: the next version, the same settings."""
    incoming = check_repository(new)
    v = int(incoming["triton"]["version"])
    have = versions(repo)
    if have and v <= max(have):
        raise EdgerecError(f"{repo}: holds versions {have}; the new model is version {v} (update the model first)")
    mine, theirs = _settings(manifest), _settings(incoming)
    if mine != theirs:
        key = next(k for k in sorted(set(mine) | set(theirs)) if mine.get(k) != theirs.get(k))
        raise EdgerecError(
            f"{new}: its {key} is {theirs.get(key)!r}, the repository's {mine.get(key)!r} (versions share them)"
        )
    return incoming


def copy_version(repo: Path, new: Path, v: int) -> None:
    """The server models' folders of version `v` from `new` into `repo`, each renamed into place when complete."""
    for model in triton_config.MODELS:
        hidden = repo / model / f".{v}.incoming"
        shutil.rmtree(hidden, ignore_errors=True)
        shutil.copytree(new / model / str(v), hidden)
        hidden.rename(repo / model / str(v))


def rollback(repo: str | Path, version: int) -> dict[str, Any]:
    """Serve `version` (one that is in the repository) and nothing newer; the newest again with `version` = newest."""
    repo = Path(repo)
    with write_lock(repo):
        manifest = check_repository(repo)
        refuse_during_experiment(repo, manifest, "rollback")
        have = versions(repo)
        if version not in have:
            raise EdgerecError(f"{repo}: no version {version} to roll back to; it holds versions {have}")
        history = version_records(manifest)
        if str(version) not in history:
            raise EdgerecError(f"{repo}/{MANIFEST}: has no record of version {version}")
        serve_alone(repo, version, manifest)
        event = {"served": version, "from": manifest["triton"]["version"], "at": _now(), "action": "rollback"}
        return finish(repo, manifest, version, history, event)


def _settings(manifest: dict[str, Any]) -> dict[str, Any]:
    """What a new version must share with the repository: precision and every Triton setting."""
    return {"precision": manifest["precision"], **{k: v for k, v in manifest["triton"].items() if k != "version"}}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
