"""The public verbs. Each takes an object plus one validated config and returns an object that carries its metrics
and saves itself:

    ck = edgerec.train("synthetic", edgerec.TrainConfig(epochs=5))              # -> Checkpoint
    small = edgerec.compress(ck, "synthetic", edgerec.CompressConfig(quantize=edgerec.QuantConfig()))
    art = edgerec.export(small, edgerec.ExportConfig(target="tflite-bundle", precision="int8"), data="synthetic")
    report = edgerec.bench(art)                                                  # -> BenchReport
    art.save("artifacts/phone"); small.save("runs/small")

`data` is a Dataset or anything `edgerec.load_dataset` reads (a path, "synthetic[:users=N,...]"); it may be left out
where the checkpoint stores its own (an updated one). A gate that refuses a result raises GateFailed (its `report`
holds the numbers); bad input raises EdgerecError (ConfigError for a bad config value). Heavy backends are
imported inside the verbs, so `import edgerec` stays light.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgerec.errors import EdgerecError

if TYPE_CHECKING:
    from torch.distributed import ProcessGroup

    from edgerec.artifact import Artifact
    from edgerec.benchmarking.latency import BenchConfig, BenchReport
    from edgerec.compression.config import CompressConfig
    from edgerec.data import Dataset, Interactions
    from edgerec.exporters.config import ExportConfig
    from edgerec.importers.config import ImportConfig
    from edgerec.model.checkpoint import Checkpoint
    from edgerec.model.config import TrainConfig
    from edgerec.serving.load import LoadConfig, LoadResult
    from edgerec.serving.server import TritonServer
    from edgerec.updates.config import UpdateConfig

Progress = Callable[[str, int, int, dict], None]


def dataset(data: Dataset | str | Path, seed: int = 0) -> Dataset:
    """data as a Dataset: passed through, or loaded by edgerec.load_dataset (split seed `seed`)."""
    from edgerec.data import Dataset, load_dataset

    return data if isinstance(data, Dataset) else load_dataset(data, seed=seed)


def _checkpoint(ckpt: Checkpoint | str | Path) -> Checkpoint:
    from edgerec.model.checkpoint import Checkpoint, load

    return ckpt if isinstance(ckpt, Checkpoint) else load(ckpt)


def _data_for(ck: Checkpoint, data: Dataset | str | Path | None) -> Dataset:
    if data is not None:
        return dataset(data)
    stored = ck.data
    if stored is None:
        raise EdgerecError("give the data the checkpoint was trained on (this checkpoint does not store its own)")
    return stored


def train(
    data: Dataset | str | Path,
    cfg: TrainConfig | None = None,
    progress: Progress | None = None,
    init: Checkpoint | str | Path | None = None,
    group: ProcessGroup | None = None,
) -> Checkpoint:
    """Train the model `cfg` describes on `data`; the Checkpoint's metrics are its test HR@10 / NDCG@10 (sampled
    protocol and full ranking), its report also has ItemPop's and the training log.

    With `init` (a checkpoint: an imported one, or a GMF + MLP pair imported as NeuMF) training continues from its
    weights and id maps, and cfg's architecture fields are not used; the data is matched to its id maps.

    `group`: a torch.distributed process group this process trains in as one of its ranks (the caller joined it,
    e.g. `edgerec.model.distributed.torchrun_group()`); None trains alone, or with cfg.nproc > 1 in worker
    processes of its own."""
    from edgerec.model.checkpoint import Checkpoint
    from edgerec.model.config import TrainConfig
    from edgerec.model.distributed import fit_nproc
    from edgerec.model.training import train as train_model

    ds = dataset(data)
    start = None
    if init is not None:
        ck = _checkpoint(init)
        ds, start = ck.align(ds), ck.model
    model, report = train_model(ds, cfg or TrainConfig(), progress, init=start, parallel=fit_nproc, group=group)
    return Checkpoint.create(model, ds, report)


def import_model(
    sources: str | Path | list[str | Path],
    cfg: ImportConfig | str,
    data: Dataset | str | Path | None = None,
) -> Checkpoint:
    """A model trained elsewhere as a Checkpoint (`cfg` or just its format: "keras-h5", "recbole", "dle",
    "state-dict"). Nothing runs from the files; the import is refused unless the source's own math and the imported
    NeuMF agree within 1e-5 on the logit. With `data`, its metrics are measured there (matched by original id)."""
    from edgerec.importers.config import ImportConfig
    from edgerec.importers.importer import import_model as run

    cfg = ImportConfig(format=cfg) if isinstance(cfg, str) else cfg
    return run(sources, cfg, None if data is None else dataset(data))


def evaluate(ckpt: Checkpoint | str | Path, data: Dataset | str | Path | None = None, full: bool = True) -> dict:
    """HR@10 / NDCG@10 of a checkpoint as it will run (the exact integer simulation when it is calibrated)."""
    from edgerec.compression.quantize import runtime_model
    from edgerec.metrics import evaluate as evaluate_scores
    from edgerec.model.training import torch_scorer

    ck = _checkpoint(ckpt)
    ds = _data_for(ck, data)
    ds = ck.align(ds)
    return evaluate_scores(torch_scorer(runtime_model(ck)), ds, full=full)


def compress(
    ckpt: Checkpoint | str | Path,
    data: Dataset | str | Path | None,
    cfg: CompressConfig,
    progress: Progress | None = None,
) -> Checkpoint:
    """Prune / distill / quantize (or search) `ckpt`; every step is measured against it and gated by
    cfg.tolerance. The result carries the step reports (`.report["steps"]`) and its calibration."""
    from edgerec.compression.steps import compress as run

    ck = _checkpoint(ckpt)
    return run(ck, _data_for(ck, data), cfg, progress)


def export(
    ckpt: Checkpoint | str | Path,
    cfg: ExportConfig | None = None,
    data: Dataset | str | Path | None = None,
    out: str | Path | None = None,
) -> Artifact:
    """Export for cfg.target at cfg.precision, verify in the target's runtime, gate on the parity bound.

    Without `out` the artifact lives in a temporary folder until `.save(path)`; with it, it is written there
    atomically. An export whose engine cannot be built here (TensorRT) returns an export-only artifact."""
    from edgerec.exporters.config import ExportConfig
    from edgerec.exporters.exporter import export as run

    ck = _checkpoint(ckpt)
    return run(ck, _data_for(ck, data), cfg or ExportConfig(), out)


def bench(
    artifact: Artifact | str | Path, cfg: BenchConfig | None = None, data: Dataset | str | Path | None = None
) -> BenchReport:
    """Latency (p50 / p90 / p99 per batch and for one user against the catalog), throughput, load time and peak RSS
    of an artifact in its own runtime, and with `data` its HR@10 / NDCG@10 there. Torch-free."""
    from edgerec.artifact import Artifact
    from edgerec.benchmarking.latency import BenchConfig, BenchReport, bench_artifact

    folder = artifact.folder if isinstance(artifact, Artifact) else Path(artifact)
    ds = None if data is None else dataset(data)
    return BenchReport(bench_artifact(folder, cfg or BenchConfig(), ds))


def serve(
    repo: Artifact | str | Path, host: str = "127.0.0.1", http_port: int = 8000, grpc_port: int = 8001
) -> TritonServer:
    """A Triton Inference Server started on a repository (`--target triton`) and ready: every file checked against
    its manifest first. Use it as a context manager, or call `.stop()`. Needs the server environment
    (`edgerec serve --setup`)."""
    from edgerec.artifact import Artifact
    from edgerec.serving.server import TritonServer

    folder = repo.folder if isinstance(repo, Artifact) else Path(repo)
    return TritonServer(folder, host, http_port, grpc_port).start()


def bench_server(
    url: str, repo: Artifact | str | Path | int, cfg: LoadConfig | None = None, grpc_url: str | None = None
) -> list[LoadResult]:
    """Closed-loop load on a served repository over HTTP and gRPC at each concurrency (p50 / p90 / p99,
    recommendations per second, errors, Triton's batch sizes). `repo`: the served repository (its folder or
    Artifact: the request stream draws from its users), or the number of users. Torch-free."""
    from edgerec.artifact import Artifact
    from edgerec.manifest import read_manifest
    from edgerec.serving.load import LoadConfig, bench_server

    if isinstance(repo, int):
        n_users = repo
    else:
        n_users = int(read_manifest(repo.folder if isinstance(repo, Artifact) else Path(repo))["n_users"])
    return bench_server(url, cfg or LoadConfig(), n_users, grpc_url)


def update(
    ckpt: Checkpoint | str | Path,
    new: Interactions | str | Path,
    cfg: UpdateConfig | None = None,
    data: Dataset | str | Path | None = None,
    progress: Progress | None = None,
) -> Checkpoint:
    """Fine-tune `ckpt` on new interactions (unseen users and items grow its tables), gated against it; the result
    is the next version, with its lineage and its own data. A refused update raises GateFailed with its
    UpdateReport (`.report`) and GateResult (`.gate`)."""
    from edgerec.data import Interactions, load_interactions
    from edgerec.updates.config import UpdateConfig
    from edgerec.updates.feedback import is_event_log, read_feedback
    from edgerec.updates.incremental import child_checkpoint, run_update
    from edgerec.updates.report import FeedbackRead

    ck = _checkpoint(ckpt)
    cfg = cfg or UpdateConfig()
    feedback = None
    if isinstance(new, Interactions):
        rows = new
    elif is_event_log(Path(new)):  # the serving event log: the positives not consumed yet
        rows, read = read_feedback(Path(new), cfg.positives, ck.config.get("lineage"))
        feedback = FeedbackRead.from_json(read)
    else:
        rows = load_interactions(Path(new), strict=True)
    result = run_update(ck, rows, None if data is None else dataset(data), cfg, progress, feedback)
    result.gate.enforce(result.report, "update rejected by the regression gate: ")
    return child_checkpoint(result)


def rollout(
    repo: Artifact | str | Path, ckpt: Checkpoint | str | Path, data: Dataset | str | Path | None = None
) -> dict:
    """Export `ckpt` with a Triton repository's settings, verify it, and add it as the repository's next version
    (a running `edgerec serve` picks it up; the previous version stays for rollback). Returns the new manifest."""
    from edgerec.artifact import Artifact
    from edgerec.updates.rollout import rollout

    ck = _checkpoint(ckpt)
    folder = repo.folder if isinstance(repo, Artifact) else Path(repo)
    return rollout(folder, ck, _data_for(ck, data))


def rollback(repo: Artifact | str | Path, version: int) -> dict:
    """Serve `version` of a Triton repository again (one it holds). Torch-free. Returns the new manifest."""
    from edgerec.artifact import Artifact
    from edgerec.serving.versions import rollback

    return rollback(repo.folder if isinstance(repo, Artifact) else Path(repo), version)


def load(path: str | Path) -> Any:  # -> Checkpoint | Artifact
    """A checkpoint folder (config.json + model.safetensors) or an artifact folder (manifest.json), verified."""
    from edgerec.artifact import Artifact, is_artifact

    path = Path(path)
    if not path.is_dir():
        raise EdgerecError(f"{path}: no such folder (expected a checkpoint or an artifact folder)")
    if is_artifact(path):
        return Artifact.load(path)
    from edgerec.model.checkpoint import is_checkpoint, load

    if is_checkpoint(path):
        return load(path)
    raise EdgerecError(
        f"{path}: neither a checkpoint (config.json + model.safetensors) nor an artifact (manifest.json) folder"
    )
