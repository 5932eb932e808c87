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

import contextlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgerec.devices import CPUS as EMULATED_CPUS
from edgerec.errors import EdgerecError

if TYPE_CHECKING:
    from torch.distributed import ProcessGroup

    from edgerec.apps.web import WebSite
    from edgerec.artifact import Artifact
    from edgerec.benchmarking.config import BenchConfig
    from edgerec.benchmarking.latency import BenchReport
    from edgerec.compression.config import CompressConfig
    from edgerec.data import Dataset, Interactions
    from edgerec.data.config import Columns
    from edgerec.devices.verify import EmulationReport
    from edgerec.experiments.config import ExperimentConfig
    from edgerec.experiments.report import ExperimentReport
    from edgerec.experiments.repository import ExperimentState
    from edgerec.experiments.shadow import ShadowReport
    from edgerec.exporters.config import ExportConfig
    from edgerec.importers.config import ImportConfig
    from edgerec.metrics import Evaluation
    from edgerec.model.checkpoint import Checkpoint
    from edgerec.model.config import FeatureConfig, TrainConfig
    from edgerec.model.new_items import AddedIds
    from edgerec.profiles.pipeline import DryRun, ProfileRun
    from edgerec.profiles.schema import Profile
    from edgerec.runtime.config import ExplainConfig
    from edgerec.runtime.recommend import Recommendations
    from edgerec.serving.config import LoadConfig
    from edgerec.serving.load import LoadReport
    from edgerec.serving.server import TritonServer
    from edgerec.serving.versions import ServedState
    from edgerec.targets import Target
    from edgerec.updates.config import UpdateConfig
    from edgerec.updates.report import UpdateChain

Progress = Callable[[str, int, int, dict], None]


def dataset(data: Dataset | str | Path, seed: int = 0, columns: Columns | None = None) -> Dataset:
    """data as a Dataset: passed through, or loaded by edgerec.load_dataset (split seed `seed`, CSV / Parquet
    column names `columns`)."""
    from edgerec.data import Columns, Dataset, load_dataset

    return data if isinstance(data, Dataset) else load_dataset(data, seed=seed, columns=columns or Columns())


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
    protocol and full ranking), its report also has ItemPop's and the training log. With cfg.objective "rating":
    RMSE / MAE on the held-out 10 % of the rated rows (edgerec.data.ratings), the global mean's beside them; the
    checkpoint records its objective (config.json "objective"), which the other verbs read.

    With `init` (a checkpoint: an imported one, or a GMF + MLP pair imported as NeuMF) training continues from its
    weights and id maps, and cfg's architecture fields are not used; the data is matched to its id maps.

    `group`: a torch.distributed process group this process trains in as one of its ranks (the caller joined it,
    e.g. `edgerec.model.distributed.torchrun_group()`); None trains alone, or with cfg.nproc > 1 in worker
    processes of its own."""
    from edgerec.model.checkpoint import Checkpoint
    from edgerec.model.config import TrainConfig
    from edgerec.model.distributed import fit_nproc
    from edgerec.model.training import train as train_model

    cfg = cfg or TrainConfig()
    ds = dataset(data)
    start = None
    if init is not None:
        ck = _checkpoint(init)
        if ck.objective != cfg.objective:
            raise EdgerecError(f"{init}: a model trained on the {ck.objective} objective; continue it with that one")
        ds, start = ck.align(ds), ck.model
    model, report = train_model(ds, cfg, progress, init=start, parallel=fit_nproc, group=group)
    return Checkpoint.create(model, ds, report, extra={"objective": cfg.objective})


def train_and_save(
    data: Dataset | str | Path,
    out: str | Path,
    cfg: TrainConfig | None = None,
    progress: Progress | None = None,
    init: Checkpoint | str | Path | None = None,
    threads: int | None = None,
    command: dict[str, Any] | None = None,
) -> Checkpoint | None:
    """What `edgerec train` runs: PyTorch on `threads` threads (default: the cores the load average leaves free);
    under torchrun this process trains as its rank of torchrun's group and rank 0 alone saves; the checkpoint is
    saved to `out` with `command` in its report. Returns it, or None on a rank that does not save."""
    import torch

    from edgerec.model.distributed import torchrun_group
    from edgerec.sysinfo import free_cores

    torch.set_num_threads(threads or free_cores())
    with torchrun_group() as group:
        ck = train(data, cfg, progress, init, group)
        if group is not None and group.rank() != 0:
            return None
    if command is not None:
        ck.config["report"]["command"] = command
    ck.save(out)
    return ck


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


def evaluate(ckpt: Checkpoint | str | Path, data: Dataset | str | Path | None = None, full: bool = True) -> Evaluation:
    """HR@10 / NDCG@10 of a checkpoint as it will run (the exact integer simulation when it is calibrated), beside
    ItemPop's on the same data. A rating model: RMSE / MAE on the held-out rows of its rating split, beside the
    global mean's; only on the data it was trained on (the split is that data's, by the training seed)."""
    from edgerec.compression.quantize import runtime_model, spec_of
    from edgerec.metrics import Evaluation, item_pop_scorer
    from edgerec.metrics import evaluate as evaluate_scores
    from edgerec.model.training import objective_metrics, torch_scorer

    ck = _checkpoint(ckpt)
    ds = ck.align(_data_for(ck, data))
    if ck.objective == "rating":
        if ds.fingerprint() != ck.config.get("data", {}).get("fingerprint"):
            raise EdgerecError(
                f"{ck.path or 'the model'}: a rating model is evaluated on the held-out rows of the data it was "
                "trained on; this is other data (its fingerprint differs)"
            )
        measured = objective_metrics(ck.model, ds, "rating", int(ck.report["train_config"]["seed"]))
        kind = ck.model.arch.kind
        return Evaluation(kind, ds.name, measured["metrics"], measured["global_mean"], baseline="global mean")
    spec = spec_of(ck)
    name = ck.model.arch.kind
    if spec is not None:  # measured as it will run, not as its fp32 weights
        name = f"{name} ({spec.config.embeddings} emb, {spec.config.mlp} MLP)"
    metrics = evaluate_scores(torch_scorer(runtime_model(ck)), ds, full=full)
    return Evaluation(name, ds.name, metrics, evaluate_scores(item_pop_scorer(ds), ds, full=full))


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
    """Latency (p50 / p90 / p99 per batch and for one user against the catalog; a phone bundle's fold_in and
    explain), throughput, load time and peak RSS of an artifact in its own runtime, and with `data` its HR@10 /
    NDCG@10 there. With `cfg.client == "web"` a phone bundle is run by the web client instead (LiteRT.js in headless
    Chromium): its signatures, the page's load time and the bytes it downloads. Torch-free."""
    from edgerec.artifact import Artifact
    from edgerec.benchmarking.config import BenchConfig
    from edgerec.benchmarking.latency import BenchReport, bench_artifact

    folder = artifact.folder if isinstance(artifact, Artifact) else Path(artifact)
    ds = None if data is None else dataset(data)
    return BenchReport(bench_artifact(folder, cfg or BenchConfig(), ds))


def serve(
    repo: Artifact | str | Path,
    host: str = "127.0.0.1",
    http_port: int = 8000,
    grpc_port: int = 8001,
    log_dir: str | Path | None = None,
    poll: int = 2,
    env: str | Path | None = None,
    timeout: float = 90.0,
    shadow_log: str | Path | None = None,
) -> TritonServer:
    """A Triton Inference Server started on a repository (`--target triton`) and ready: every file checked against
    its manifest first. `log_dir`: the feedback model's event log (None: feedback is refused); `poll`: seconds
    between re-reads of the repository, so a rolled-out version or a rollback is served (0 = load once);
    `shadow_log`: the JSON-lines file a shadow experiment's router appends to. Use it as a context manager, or call
    `.stop()`. Needs the server environment (`setup_server`)."""
    from edgerec.serving.server import TritonServer

    for name, port in (("http_port", http_port), ("grpc_port", grpc_port)):
        if not 1 <= port <= 65535:
            raise EdgerecError(f"{name} must lie in 1..65535; got {port}")
    if poll < 0:
        raise EdgerecError(f"poll must be >= 0 seconds; got {poll}")
    server = TritonServer(
        _folder(repo), host, http_port, grpc_port, env_path=None if env is None else Path(env), poll_seconds=poll,
        log_dir=None if log_dir is None else str(log_dir), shadow_log=None if shadow_log is None else str(shadow_log),
    )  # fmt: skip
    try:
        return server.start(timeout)
    except BaseException:  # a failed or interrupted start leaves no process behind
        server.stop()
        raise


def bench_server(
    url: str, repo: Artifact | str | Path | int, cfg: LoadConfig | None = None, grpc_url: str | None = None
) -> LoadReport:
    """Closed-loop load on a served repository over HTTP and gRPC at each concurrency (p50 / p90 / p99,
    recommendations per second, errors, Triton's batch sizes). `repo`: the served repository (its folder or
    Artifact: the request stream draws from its users), or the number of users. Torch-free."""
    from edgerec.manifest import read_manifest
    from edgerec.serving.config import LoadConfig
    from edgerec.serving.load import LoadReport, bench_server

    n_users = repo if isinstance(repo, int) else int(read_manifest(_folder(repo))["n_users"])
    return LoadReport(url, tuple(bench_server(url, cfg or LoadConfig(), n_users, grpc_url)))


def update(
    ckpt: Checkpoint | str | Path,
    new: Interactions | str | Path,
    cfg: UpdateConfig | None = None,
    data: Dataset | str | Path | None = None,
    progress: Progress | None = None,
    columns: Columns | None = None,
) -> Checkpoint:
    """Fine-tune `ckpt` on new interactions (unseen users and items grow its tables), gated against it; the result
    is the next version, with its lineage and its own data. A refused update raises GateFailed with its
    UpdateReport (`.report`) and GateResult (`.gate`)."""
    from edgerec.data import Columns, Interactions, load_interactions
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
        rows = load_interactions(Path(new), columns or Columns(), strict=True)
    result = run_update(ck, rows, None if data is None else dataset(data), cfg, progress, feedback)
    result.gate.enforce(result.report, "update rejected by the regression gate: ")
    return child_checkpoint(result)


def update_chain(
    ckpt: Checkpoint | str | Path,
    new: Interactions | str | Path,
    out: str | Path,
    cfg: UpdateConfig | None = None,
    data: Dataset | str | Path | None = None,
    columns: Columns | None = None,
    repo: Artifact | str | Path | None = None,
    profile: Profile | str | Path | None = None,
    artifact: str | Path | None = None,
    cache: str | Path | None = None,
    progress: Progress | None = None,
) -> UpdateChain:
    """What `edgerec update` runs: the update (see `update`) saved to `out`; then with `repo` its roll-out as that
    served repository's next version, and with `profile` the profile's steps on it (its artifact in `artifact`,
    default OUT-PROFILE). The repository and the profile are checked before any work; a refused update raises
    GateFailed and writes nothing."""
    from edgerec.profiles.schema import load_profile
    from edgerec.serving.server import check_repository
    from edgerec.updates.report import UpdateChain

    parent = Path(ckpt) if isinstance(ckpt, str | Path) else ckpt.path
    if parent is not None and Path(out).resolve() == Path(parent).resolve():
        raise EdgerecError("an update never overwrites its parent: choose another output folder")
    prof = load_profile(profile) if isinstance(profile, str | Path) else profile
    if repo is not None:
        check_repository(_folder(repo))  # a repository that cannot take the update fails before the work
    child = update(ckpt, new, cfg, data, progress, columns)
    folder = child.save(out)
    served = None if repo is None else rollout(repo, child)
    run = None
    if prof is not None:
        run = run_profile(prof, artifact or f"{folder}-{prof.name}", child.data, folder, cache)
    return UpdateChain(child, Path(folder), served, run)


def rollout(
    repo: Artifact | str | Path, ckpt: Checkpoint | str | Path, data: Dataset | str | Path | None = None
) -> ServedState:
    """Export `ckpt` with a Triton repository's settings, verify it, and add it as the repository's next version
    (a running `edgerec serve` picks it up; the previous version stays for rollback). Returns what it now serves."""
    from edgerec.serving.versions import ServedState
    from edgerec.updates.rollout import rollout

    ck = _checkpoint(ckpt)
    return ServedState.of(rollout(_folder(repo), ck, _data_for(ck, data)))


def rollback(repo: Artifact | str | Path, version: int) -> ServedState:
    """Serve `version` of a Triton repository again (one it holds). Torch-free. Returns what it now serves."""
    from edgerec.serving.versions import ServedState, rollback

    return ServedState.of(rollback(_folder(repo), version))


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


def recommend(
    model: str | Path,
    user: str | None = None,
    history: list[str] | None = None,
    k: int = 10,
    explain: ExplainConfig | None = None,
    data: Dataset | str | Path | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Recommendations:
    """The top-K for a user the model knows (`user`, an original id; with `data` its history is excluded and
    explains) or for a new user folded in from `history` (original item ids: the history never leaves the
    caller) and / or known by their `attributes` ({column: value}, a model with user features: the vectors of its
    user feature path, where a history's fold-in then starts), each with reasons when `explain` is given.
    `model`: a checkpoint folder, or a phone bundle exported with explain. Torch-free."""
    from edgerec.runtime.recommend import recommend as run

    return run(model, user, history, k, explain, None if data is None else dataset(data), attributes)


def run_profile(
    profile: Profile | str | Path,
    out: str | Path,
    data: Dataset | str | Path | None = None,
    model: Checkpoint | str | Path | None = None,
    cache: str | Path | None = None,
) -> ProfileRun:
    """A target profile's steps (train without `model`, compress, export, verify, bench, budgets), each cached
    under a hash of its inputs; the artifact and its record land in `out`. Without `data`: the data `model`
    stores, else the embedded synthetic data. A budget that fails is the run's outcome ("failed"), not an error."""
    from edgerec.profiles.pipeline import run

    prof, ds, folder = _profile_inputs(profile, data, model)
    return run(prof, ds, out, folder, None if cache is None else Path(cache))


def plan_profile(
    profile: Profile | str | Path,
    data: Dataset | str | Path | None = None,
    model: Checkpoint | str | Path | None = None,
    cache: str | Path | None = None,
) -> DryRun:
    """The steps run_profile would run, and which of them are cached already."""
    from edgerec.profiles.pipeline import dry_run

    prof, ds, folder = _profile_inputs(profile, data, model)
    return dry_run(prof, ds, folder, None if cache is None else Path(cache))


def _profile_inputs(
    profile: Profile | str | Path, data: Dataset | str | Path | None, model: Checkpoint | str | Path | None
) -> tuple[Profile, Dataset, Path | None]:
    from edgerec.profiles.schema import Profile, load_profile

    prof = profile if isinstance(profile, Profile) else load_profile(profile)  # a bad name fails before the data
    if model is not None and not isinstance(model, str | Path):  # a Checkpoint
        if model.path is None:
            raise EdgerecError("a profile's steps are cached by the model's files: save the checkpoint first")
        model = model.path
    folder = None if model is None else Path(model)
    if data is None and folder is not None:
        stored = _checkpoint(folder).data
        if stored is not None:
            return prof, stored, folder
    return prof, dataset("synthetic" if data is None else data), folder


def compare_profiles(
    profiles: str | Path | list[Profile],
    out: str | Path,
    data: Dataset | str | Path | None = None,
    model: str | Path | None = None,
    cache: str | Path | None = None,
    results: str | Path | None = None,
    min_time_s: float | None = None,
    threads: int | None = None,
    command: list[str] | None = None,
) -> list[ProfileRun]:
    """Every profile of a folder (or a list) run as run_profile does, plus the fp32 PyTorch source measured by the
    same harness in the same run (the first row); profiles.{json,md,png} written to `results` (default `out`),
    naming `command` and the commit. `threads` overrides every profile's bench threads."""
    from dataclasses import replace

    from edgerec.profiles.compare import compare, write_reports
    from edgerec.profiles.schema import load_profiles

    chosen = profiles if isinstance(profiles, list) else load_profiles(profiles)
    if threads is not None:
        chosen = [replace(p, bench=replace(p.bench, threads=threads)) for p in chosen]
    ds = dataset("synthetic" if data is None else data)
    folder = Path(out)
    rows = compare(chosen, ds, folder, None if model is None else Path(model), None if cache is None else Path(cache),
                   min_time_s)  # fmt: skip
    write_reports(rows, Path(results) if results else folder, f"Target profiles on {ds.name}", command or [])
    return rows


def delta(parent: Artifact | str | Path, child: Artifact | str | Path, out: str | Path) -> dict:
    """The small update from one phone bundle to the next (byte ranges and a hash chain); returns delta.json's
    content. Torch-free."""
    from edgerec.updates.delta import make_delta

    return make_delta(_folder(parent), _folder(child), out)


def apply_delta(bundle: Artifact | str | Path, delta: str | Path, out: str | Path) -> dict:
    """`bundle` with the delta applied, written to `out` (may be `bundle`: replaced atomically once it checked
    out, as the app does); returns the new manifest. Torch-free."""
    from edgerec.updates.delta import apply_delta as run

    return run(_folder(bundle), delta, out)


def app_web(
    bundle: Artifact | str | Path, out: str | Path, items: str | Path | None = None, demo_users: bool = False
) -> WebSite:
    """A static site that runs the phone bundle in the browser through LiteRT.js (fold_in -> recommend -> explain
    on the device, by signature name), written atomically to `out`; `items`: a CSV / TSV of item ids and titles.
    The bundle's manifest and file hashes are checked first. A bundle with user_features (a model trained with user
    features) also gets a form of its user encoder's columns: the attributes are encoded in the page, then
    user_features -> recommend (with picks: fold_in_from). A bundle with neither fold_in (exported without
    --explain) nor user_features is refused unless `demo_users` (the page then uses known users' vectors). LiteRT.js
    comes from npm (installed once into edgerec's cache). Serve it with `python -m http.server --bind 127.0.0.1 8080
    --directory OUT`. Torch-free."""
    from edgerec.apps.web import build_site

    return build_site(_folder(bundle), out, items, demo_users)


def serve_site(site: WebSite | str | Path, port: int = 8080) -> contextlib.AbstractContextManager[str]:
    """A context manager serving a site of `app_web` from 127.0.0.1:`port` in a thread of this process (with the
    headers that make the page cross-origin isolated); yields its URL. Torch-free."""
    from edgerec.apps.browser import serve_site as serve
    from edgerec.apps.web import WebSite

    if not 1 <= port <= 65535:
        raise EdgerecError(f"port must lie in 1..65535; got {port}")
    return serve(site.folder if isinstance(site, WebSite) else Path(site), port)


def experiment_report(
    log: str | Path, versions: tuple[str, str], cfg: ExperimentConfig | None = None
) -> ExperimentReport:
    """An A/B test's report from a feedback event log: arm A serves `versions[0]` (live), arm B `versions[1]`.
    Per arm users, impressions, clicks, purchases, CTR and conversion with intervals; the difference; the
    sample-ratio check; the mSPRT decision (valid however often it is read); the sample size. numpy only."""
    from edgerec.experiments.config import ExperimentConfig
    from edgerec.experiments.report import experiment_report as report
    from edgerec.experiments.report import load_events

    return report(load_events(log), (str(versions[0]), str(versions[1])), cfg or ExperimentConfig())


def experiment_start(
    repo: Artifact | str | Path,
    ckpt: Checkpoint | str | Path,
    cfg: ExperimentConfig | None = None,
    data: Dataset | str | Path | None = None,
) -> ExperimentState:
    """Start an experiment in a Triton repository: `ckpt` exported with its settings, verified (the roll-out's
    parity gate) and added as the candidate version beside the served one, both loaded, with the `experiment`
    router model. cfg.mode "ab": each user answered by the arm of a seeded hash of their original id (cfg.traffic
    of them by the candidate), every answer naming its version; "shadow": everyone answered by the served version,
    the candidate measured on the same requests. A running `edgerec serve` picks it up. Refused while one runs."""
    from edgerec.experiments.config import ExperimentConfig
    from edgerec.experiments.repository import check_can_start, status
    from edgerec.updates.rollout import start_experiment

    folder = _folder(repo)
    check_can_start(folder)  # before the checkpoint and the data are read
    ck = _checkpoint(ckpt)
    start_experiment(folder, ck, _data_for(ck, data), cfg or ExperimentConfig())
    return status(folder)


def experiment_shadow(
    repo: Artifact | str | Path,
    ckpt: Checkpoint | str | Path,
    cfg: ExperimentConfig | None = None,
    data: Dataset | str | Path | None = None,
) -> ExperimentState:
    """`experiment_start` in shadow mode: live answers from the served version only; the candidate scores the same
    requests in the background, its top-K, overlap, latency and errors logged (`edgerec serve --shadow-log`)."""
    from dataclasses import replace

    from edgerec.experiments.config import ExperimentConfig

    return experiment_start(repo, ckpt, replace(cfg or ExperimentConfig(), mode="shadow"), data)


def experiment_stop(repo: Artifact | str | Path) -> ExperimentState:
    """End the running experiment: the served version alone again, the router removed, the record kept in the
    manifest's "experiments". Torch-free."""
    from edgerec.experiments.repository import status, stop

    stop(_folder(repo))
    return status(_folder(repo))


def experiment_promote(
    repo: Artifact | str | Path, log: str | Path | None = None, cfg: ExperimentConfig | None = None
) -> ExperimentState:
    """End the running experiment by serving the candidate alone (a roll-out: the manifest describes it). With
    `log` (the feedback event log) the A/B report is the gate: it must decide for the candidate (arm B) with the
    sample ratio intact, else GateFailed with the report and nothing changes. Torch-free."""
    from edgerec.experiments.repository import config_of, promote, status
    from edgerec.gates import GateResult

    folder = _folder(repo)
    running = status(folder).running
    if not running:
        raise EdgerecError(f"{folder}: no experiment is running (edgerec experiment start / shadow)")
    gate = None
    if log is not None:
        if running["mode"] != "ab":
            raise EdgerecError(f"{folder}: a shadow experiment has no A/B report to gate on: promote it without a log")
        rep = experiment_report(log, (str(running["control"]), str(running["candidate"])), config_of(running, cfg))
        failures = () if rep.decision == "B" else (f"the report does not decide for the candidate: {rep.message}",)
        result = GateResult("experiment", failures)
        result.enforce(rep, "promotion refused by the experiment's report: ")
        gate = result.to_json() | {"p_value": rep.p_value, "relative": rep.relative, "decided_at": rep.decided_at}
    promote(folder, gate)
    return status(folder)


def experiment_status(repo: Artifact | str | Path) -> ExperimentState:
    """The repository's running experiment (or none), the version it serves, the versions held, the ended
    experiments. Torch-free."""
    from edgerec.experiments.repository import status

    return status(_folder(repo))


def shadow_report(log: str | Path) -> ShadowReport:
    """A shadow experiment's report from the router's shadow log: users shadowed, the candidate's errors, top-K
    overlap with the live answers, the candidate's latency percentiles, requests dropped. numpy only."""
    from edgerec.experiments.shadow import shadow_report as read

    return read(log)


def add_items(
    ckpt: Checkpoint | str | Path, items: str | Path, out: str | Path, cfg: FeatureConfig | None = None
) -> AddedIds:
    """New items into a model trained with item features, without retraining: the rows of the items in `items`
    (a feature table: CSV / TSV / Parquet / MovieLens movies.dat) that the model does not know are computed from
    their features by the training encoder, the id maps grow, and the checkpoint is written atomically to `out` as
    the next version (its lineage names the parent). From there export, delta and rollout carry them like any
    other item."""
    return _add_from_features(ckpt, items, out, "item", cfg)


def add_users(
    ckpt: Checkpoint | str | Path, users: str | Path, out: str | Path, cfg: FeatureConfig | None = None
) -> AddedIds:
    """New users into a model trained with user features, without history: their vectors from their features alone
    (the user feature path), the id maps grow, the checkpoint is written atomically to `out`; `recommend --user`,
    export and rollout then serve them like any other user."""
    return _add_from_features(ckpt, users, out, "user", cfg)


def _add_from_features(
    ckpt: Checkpoint | str | Path, table: str | Path, out: str | Path, side: str, cfg: FeatureConfig | None
) -> AddedIds:
    from edgerec.data.features import read_features
    from edgerec.model.config import FeatureConfig
    from edgerec.model.new_items import AddedIds, add_from_features

    ck = _checkpoint(ckpt)
    rows = read_features(table, side, cfg or FeatureConfig())  # type: ignore[arg-type]
    child, added, known = add_from_features(ck, rows, side)  # type: ignore[arg-type]
    child.save(out)
    size = len(child.item_ids if side == "item" else child.user_ids)
    k = child.model.features.neighbours.get(side, 0)  # type: ignore[union-attr]  (a feature model: checked above)
    return AddedIds(Path(out), side, added, known, size, child.version, k)


def verify_on(
    artifact: Artifact | str | Path,
    arch: str = "arm64",
    cpus: tuple[str, ...] | None = None,
    data: Dataset | str | Path | None = None,
    users: int = 300,
    wheel: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> EmulationReport:
    """A TFLite artifact run under emulated CPUs of `arch` (qemu-user in a cached Debian root, edgerec's own wheel
    inside) and compared with this machine, per CPU: max |score error|, top-10 agreement, dHR@10, seconds, or the
    error; recorded in the manifest under "verified_on". Needs root."""
    from edgerec.devices.verify import EmulationReport, verify_arm64

    if arch != "arm64":
        raise EdgerecError(f"arch must be arm64 (the one emulated here); got {arch!r}")
    cpus = EMULATED_CPUS if cpus is None else cpus
    if not cpus:
        raise EdgerecError("name at least one CPU to emulate, e.g. cortex-a53")
    if users < 1:
        raise EdgerecError("users must be at least 1")
    ds = None if data is None else dataset(data)
    folder = _folder(artifact)
    found = verify_arm64(folder, cpus, ds, users, None if wheel is None else Path(wheel), progress or print)
    return EmulationReport(str(folder), found)


def setup_server(env: str | Path | None = None) -> Path:
    """Create the Triton server's own environment (nvidia-pytriton, numpy < 2, onnxruntime; default
    ~/.cache/edgerec/serve-env); returns its folder."""
    from edgerec.serving import env as serve_env

    return serve_env.setup(None if env is None else Path(env))


def _folder(obj: Artifact | str | Path) -> Path:
    from edgerec.artifact import Artifact

    return obj.folder if isinstance(obj, Artifact) else Path(obj)


def target_names() -> tuple[str, ...]:
    """The export targets installed (edgerec.targets)."""
    from edgerec.targets import names

    return names()


def target(name: str) -> Target:
    """An export target's record: its precisions, delegates, options config, runtimes."""
    from edgerec.targets import target as find

    return find(name)


def load_checkpoint(path: str | Path) -> Checkpoint:
    """A checkpoint folder (config.json + model.safetensors), every file hash-checked."""
    return _checkpoint(Path(path))
