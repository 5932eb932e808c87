"""An experiment in a served Triton repository: start (a candidate version beside the live one, both loaded, and the
router model), stop (the live version alone again) and promote (the candidate served alone). Torch-free.

    REPO/experiment/config.pbtxt            the router: control and candidate versions, salt, traffic, mode
    REPO/experiment/1/model.py              edgerec/serving/experiment_model.py
    REPO/experiment/1/edgerec_assign.py     edgerec/experiments/assign.py (the one assignment function)

While it runs, the server models' version policy is `specific: [control, candidate]`; the manifest describes the
control (the served version) and holds the experiment's record under "experiment"; ended experiments go to
"experiments" with how they ended. Every change holds the repository's write lock and ends with manifest.json
rewritten (every file hashed again); a running `edgerec serve` (poll mode) loads the candidate and the router, or
unloads them, on its next poll. A roll-out or a rollback is refused while an experiment runs.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edgerec.errors import EdgerecError
from edgerec.experiments import assign
from edgerec.experiments.config import ExperimentConfig
from edgerec.io import SavesJson, write_lock
from edgerec.manifest import write_manifest
from edgerec.serving import triton_config, versions
from edgerec.serving.server import check_repository

RUNNING, ENDED = "experiment", "experiments"  # the manifest's keys


@dataclass(frozen=True)
class ExperimentState(SavesJson):
    """A repository's experiment: the running one's record (None when none runs), the version it serves alone
    otherwise, the versions held and the ended experiments."""

    running: dict[str, Any] | None
    served: int
    held: tuple[int, ...]
    ended: tuple[dict[str, Any], ...]

    @classmethod
    def of(cls, repo: Path, manifest: dict[str, Any]) -> ExperimentState:
        return cls(
            running=manifest.get(RUNNING),
            served=int(manifest["triton"]["version"]),
            held=tuple(versions.versions(repo)),
            ended=tuple(manifest.get(ENDED, ())),
        )

    def to_json(self) -> dict[str, Any]:
        return {"running": self.running, "served": self.served, "held": list(self.held), "ended": list(self.ended)}


def next_version(repo: str | Path) -> int:
    """The version number a candidate gets: one past the newest the repository holds."""
    return max(versions.versions(Path(repo)), default=0) + 1


def check_can_start(repo: str | Path) -> dict[str, Any]:
    """The repository's manifest, or a one-line error: not a Triton repository, or an experiment running."""
    repo = Path(repo)
    manifest = check_repository(repo)
    running = manifest.get(RUNNING)
    if running:
        raise EdgerecError(
            f"{repo}: an experiment is running already ({running['mode']}: version {running['candidate']} beside "
            f"{running['control']}, since {running['started']}): stop or promote it first"
        )
    return manifest


def start(repo: str | Path, new: str | Path, cfg: ExperimentConfig) -> dict[str, Any]:
    """Add the verified repository `new` (one version, the next) to `repo` as the candidate of an experiment beside
    the served version; returns the new manifest. On any failure the repository is left as it was."""
    repo, new = Path(repo), Path(new)
    with write_lock(repo):
        manifest = check_can_start(repo)
        incoming = versions.check_incoming(repo, manifest, new)
        control, candidate = int(manifest["triton"]["version"]), int(incoming["triton"]["version"])
        configs = {m: (repo / m / triton_config.CONFIG).read_bytes() for m in triton_config.MODELS}
        try:
            versions.set_policy(repo, control, manifest)  # the candidate's folders appear unserved
            versions.copy_version(repo, new, candidate)
            _write_router(repo, manifest, control, candidate, cfg)
            versions.set_policy(repo, [control, candidate], manifest)
            record = {
                "mode": cfg.mode,
                "control": control,
                "candidate": candidate,
                "traffic": cfg.traffic if cfg.mode == "ab" else 0.0,
                "salt": cfg.salt,
                "started": _now(),
                "candidate_source": incoming.get("source"),
            }
            out = {k: v for k, v in manifest.items() if k not in ("files", "format", "format_version")}
            out[RUNNING] = record
            out["model_versions"] = {**versions.version_records(manifest), str(candidate): versions.record(incoming)}
            return write_manifest(repo, out)
        except BaseException:
            _remove_router(repo)
            for model, text in configs.items():
                (repo / model / triton_config.CONFIG).write_bytes(text)
                shutil.rmtree(repo / model / str(candidate), ignore_errors=True)
            raise


def stop(repo: str | Path) -> dict[str, Any]:
    """End the running experiment: the control version alone, the router removed, the record kept under
    "experiments" (the candidate's folders stay on disk, as a rolled-back version's do)."""
    repo = Path(repo)
    with write_lock(repo):
        manifest, running = _running(repo)
        _remove_router(repo)
        versions.serve_alone(repo, int(running["control"]), manifest)
        out = {k: v for k, v in manifest.items() if k not in ("files", "format", "format_version", RUNNING)}
        out[ENDED] = [*manifest.get(ENDED, []), {**running, "ended": _now(), "outcome": "stopped"}]
        return write_manifest(repo, out)


def promote(repo: str | Path, gate: dict[str, Any] | None = None) -> dict[str, Any]:
    """End the running experiment with the candidate served alone (a roll-out: the manifest describes it, its id
    maps become the repository's); `gate` (the gate's result, when one was checked) is kept in the record."""
    repo = Path(repo)
    with write_lock(repo):
        manifest, running = _running(repo)
        candidate = int(running["candidate"])
        _remove_router(repo)
        versions.serve_alone(repo, candidate, manifest)
        ended = {**running, "ended": _now(), "outcome": "promoted", **({"gate": gate} if gate else {})}
        rest = {k: v for k, v in manifest.items() if k != RUNNING}
        rest[ENDED] = [*manifest.get(ENDED, []), ended]
        event = {"served": candidate, "from": running["control"], "at": ended["ended"], "action": "promote"}
        return versions.finish(repo, rest, candidate, versions.version_records(manifest), event)


def status(repo: str | Path) -> ExperimentState:
    repo = Path(repo)
    return ExperimentState.of(repo, check_repository(repo))


def _running(repo: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    manifest = check_repository(repo)
    running = manifest.get(RUNNING)
    if not running:
        raise EdgerecError(f"{repo}: no experiment is running (edgerec experiment start / shadow)")
    return manifest, running


def _write_router(repo: Path, manifest: dict[str, Any], control: int, candidate: int, cfg: ExperimentConfig) -> None:
    """REPO/experiment, built in a hidden sibling and renamed into place (Triton never sees half of it)."""
    from edgerec.serving.config import TritonConfig

    here = Path(triton_config.__file__).parent
    _remove_router(repo)
    hidden = _beside(repo, "incoming")
    (hidden / "1").mkdir(parents=True)
    shutil.copyfile(here / "experiment_model.py", hidden / "1" / "model.py")
    shutil.copyfile(Path(assign.__file__), hidden / "1" / "edgerec_assign.py")
    triton_config.no_bytecode(hidden / "1")
    settings = {k: v for k, v in manifest["triton"].items() if k in TritonConfig.__dataclass_fields__}
    params = {"control": control, "candidate": candidate, "salt": cfg.salt, "traffic": cfg.traffic,
              "mode": cfg.mode, "shadow_queue": cfg.shadow_queue}  # fmt: skip
    triton_config.write(triton_config.ROUTER, TritonConfig(**settings), params, hidden)
    triton_config.check_router(hidden / triton_config.CONFIG)
    hidden.rename(repo / triton_config.ROUTER)


def _remove_router(repo: Path) -> None:
    """The router folder renamed away first (Triton unloads a model whose folder is gone), then deleted."""
    gone = _beside(repo, "removed")
    shutil.rmtree(gone, ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        (repo / triton_config.ROUTER).rename(gone)
    shutil.rmtree(gone, ignore_errors=True)
    shutil.rmtree(_beside(repo, "incoming"), ignore_errors=True)


def _beside(repo: Path, what: str) -> Path:
    """A hidden sibling of the repository (the same file system, so a rename moves it; outside the folder Triton
    reads, which would take any folder in it for a model)."""
    return repo.resolve().parent / f".{repo.resolve().name}.{triton_config.ROUTER}.{what}"


def config_of(record: dict[str, Any], cfg: ExperimentConfig | None = None) -> ExperimentConfig:
    """The report's config for a running experiment: `cfg`'s statistics with the experiment's split and salt."""
    base = asdict(cfg or ExperimentConfig())
    return ExperimentConfig(**{**base, "mode": record["mode"], "salt": record["salt"],
                               "traffic": record["traffic"] or base["traffic"]})  # fmt: skip


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
