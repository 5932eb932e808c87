"""edgerec: compress, export and benchmark NCF / NeuMF recommenders for GPU servers and phones.

The verbs (edgerec.api) take an object and one validated config and return an object:
    train(data, TrainConfig) -> Checkpoint          compress(ckpt, data, CompressConfig) -> Checkpoint
    export(ckpt, ExportConfig, data) -> Artifact    bench(artifact, BenchConfig) -> BenchReport
    update(ckpt, new, UpdateConfig) -> Checkpoint   evaluate(ckpt, data) -> Evaluation    load(path)
    import_model(files, ImportConfig, data) -> Checkpoint (a model trained in Keras, RecBole, NVIDIA DLE, PyTorch)
    serve(triton_repo) -> TritonServer              bench_server(url, repo, LoadConfig) -> LoadReport
    rollout(triton_repo, ckpt) -> ServedState       rollback(triton_repo, version) -> ServedState
    run_profile(profile, out) -> ProfileRun         compare_profiles(folder, out) -> [ProfileRun]
    recommend(model, user= | history=) -> Recommendations, and what each CLI command runs (edgerec.api)
Every name below loads its module on first use, so `import edgerec` (and with it the console script's start-up,
see edgerec.entry) imports neither numpy nor torch.
"""

from edgerec.lazy import lazy_getattr

__version__ = "0.1.0"

_VERBS = (
    *("train", "evaluate", "compress", "export", "bench", "update", "load", "dataset", "import_model"),
    *("serve", "setup_server", "bench_server", "rollout", "rollback", "update_chain", "train_and_save"),
    *("run_profile", "plan_profile", "compare_profiles", "recommend", "delta", "apply_delta", "verify_on"),
    *("load_checkpoint", "target_names", "target", "app_web", "serve_site", "experiment_report"),
    *("add_items", "add_users"),
    *("experiment_start", "experiment_shadow", "experiment_stop", "experiment_promote", "experiment_status"),
    "shadow_report",
)
_DATA = ("Columns", "Dataset", "Interactions", "SyntheticConfig", "generate", "leave_one_out", "load_dataset")
_COMPRESSION = ("CompressConfig", "PruneConfig", "DistillConfig", "QuantConfig", "SearchConfig")
_LAZY = {
    **dict.fromkeys(_VERBS, "edgerec.api"),
    **dict.fromkeys(_DATA, "edgerec.data"),
    **dict.fromkeys(_COMPRESSION, "edgerec.compression.config"),
    **dict.fromkeys(("EdgerecError", "ConfigError", "GateFailed"), "edgerec.errors"),
    **dict.fromkeys(("TrainConfig", "FeaturesConfig"), "edgerec.model.config"),
    "FeatureConfig": "edgerec.model.config",
    "ExportConfig": "edgerec.exporters.config",
    "UpdateConfig": "edgerec.updates.config",
    "ImportConfig": "edgerec.importers.config",
    "BenchConfig": "edgerec.benchmarking.config",
    "BenchReport": "edgerec.benchmarking.latency",
    **dict.fromkeys(("GateResult", "DropTolerance", "ParityBound"), "edgerec.gates"),
    "Checkpoint": "edgerec.model.checkpoint",
    "Artifact": "edgerec.artifact",
    **dict.fromkeys(("load_profile", "Profile"), "edgerec.profiles.schema"),
    "NCFArch": "edgerec.model.ncf",
    "TritonConfig": "edgerec.serving.config",
    "LoadConfig": "edgerec.serving.config",
    **dict.fromkeys(("LoadResult", "LoadReport"), "edgerec.serving.load"),
    **dict.fromkeys(("FoldInConfig", "ExplainConfig"), "edgerec.runtime.config"),
    "TritonServer": "edgerec.serving.server",
    "Client": "edgerec.serving.client",
    "ExperimentConfig": "edgerec.experiments.config",
    "ExperimentReport": "edgerec.experiments.report",
    "ExperimentState": "edgerec.experiments.repository",
    "ShadowReport": "edgerec.experiments.shadow",
}

__getattr__ = lazy_getattr("edgerec", _LAZY)

__all__ = ["__version__", *_LAZY]
