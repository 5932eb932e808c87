"""edgerec: compress, export and benchmark NCF / NeuMF recommenders for GPU servers and phones.

The names in _LAZY are the public API; each loads its module on first use, so `import edgerec` (and with it the
console script's start-up, see edgerec.entry) imports neither numpy nor torch.
"""

from edgerec.lazy import lazy_getattr

__version__ = "0.1.0"

_DATA = ("Columns", "Dataset", "Interactions", "SyntheticConfig", "generate", "leave_one_out", "load_dataset")
_LAZY = {
    **dict.fromkeys(_DATA, "edgerec.data"),
    "EdgerecError": "edgerec.errors",
    **dict.fromkeys(("evaluate", "hr_ndcg", "item_pop_scorer"), "edgerec.metrics"),
    **dict.fromkeys(("NCF", "NCFArch"), "edgerec.model.ncf"),
    "TrainConfig": "edgerec.model.config",
    **dict.fromkeys(("train", "fit", "torch_scorer"), "edgerec.model.training"),
    "save_checkpoint": "edgerec.model.checkpoint:save",
    "load_checkpoint": "edgerec.model.checkpoint:load",
}

__getattr__ = lazy_getattr("edgerec", _LAZY)

__all__ = ["__version__", *_LAZY]
