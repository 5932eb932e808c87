"""edgerec: compress, export and benchmark NCF / NeuMF recommenders for GPU servers and phones.

The verbs (edgerec.api) take an object and one validated config and return an object:
    train(data, TrainConfig) -> Checkpoint          compress(ckpt, data, CompressConfig) -> Checkpoint
    export(ckpt, ExportConfig, data) -> Artifact    bench(artifact, BenchConfig) -> BenchReport
    update(ckpt, new, UpdateConfig) -> Checkpoint   evaluate(ckpt, data) -> metrics    load(path)
    import_model(files, ImportConfig, data) -> Checkpoint (a model trained in Keras, RecBole, NVIDIA DLE, PyTorch)
    serve(triton_repo) -> TritonServer              bench_server(url, repo, LoadConfig) -> [LoadResult]
    rollout(triton_repo, ckpt) -> manifest          rollback(triton_repo, version) -> manifest
Every name below loads its module on first use, so `import edgerec` (and with it the console script's start-up,
see edgerec.entry) imports neither numpy nor torch.
"""

from edgerec.lazy import lazy_getattr

__version__ = "0.1.0"

_VERBS = (
    *("train", "evaluate", "compress", "export", "bench", "update", "load", "dataset", "import_model"),
    *("serve", "bench_server", "rollout", "rollback"),
)
_DATA = ("Columns", "Dataset", "Interactions", "SyntheticConfig", "generate", "leave_one_out", "load_dataset")
_COMPRESSION = ("CompressConfig", "PruneConfig", "DistillConfig", "QuantConfig", "SearchConfig")
_LAZY = {
    **dict.fromkeys(_VERBS, "edgerec.api"),
    **dict.fromkeys(_DATA, "edgerec.data"),
    **dict.fromkeys(_COMPRESSION, "edgerec.compression.config"),
    **dict.fromkeys(("EdgerecError", "ConfigError", "GateFailed"), "edgerec.errors"),
    **dict.fromkeys(("DropTolerance", "ParityBound"), "edgerec.gates"),
    "TrainConfig": "edgerec.model.config",
    "ExportConfig": "edgerec.exporters.config",
    "UpdateConfig": "edgerec.updates.config",
    "ImportConfig": "edgerec.importers.config",
    **dict.fromkeys(("BenchConfig", "BenchReport"), "edgerec.benchmarking.latency"),
    "Checkpoint": "edgerec.model.checkpoint",
    "Artifact": "edgerec.artifact",
    **dict.fromkeys(("load_profile", "Profile"), "edgerec.profiles.schema"),
    "NCFArch": "edgerec.model.ncf",
    "TritonConfig": "edgerec.serving.config",
    **dict.fromkeys(("LoadConfig", "LoadResult"), "edgerec.serving.load"),
    "TritonServer": "edgerec.serving.server",
    "Client": "edgerec.serving.client",
}

__getattr__ = lazy_getattr("edgerec", _LAZY)

__all__ = ["__version__", *_LAZY]
