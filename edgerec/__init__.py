"""edgerec: compress, export and benchmark NCF / NeuMF recommenders for GPU servers and phones.

The names in _LAZY are the public API; each loads its module on first use, so `import edgerec` (and with it the
console script's start-up, see edgerec.entry) imports neither numpy nor torch.
"""

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    **{
        n: ("edgerec.data", n)
        for n in ("Columns", "Dataset", "Interactions", "SyntheticConfig", "generate", "leave_one_out", "load_dataset")
    },
    "EdgerecError": ("edgerec.errors", "EdgerecError"),
    **{n: ("edgerec.metrics", n) for n in ("evaluate", "hr_ndcg", "item_pop_scorer")},
    "NCF": ("edgerec.model.ncf", "NCF"),
    "NCFArch": ("edgerec.model.ncf", "NCFArch"),
    "TrainConfig": ("edgerec.model.config", "TrainConfig"),
    "train": ("edgerec.model.training", "train"),
    "fit": ("edgerec.model.training", "fit"),
    "torch_scorer": ("edgerec.model.training", "torch_scorer"),
    "save_checkpoint": ("edgerec.model.checkpoint", "save"),
    "load_checkpoint": ("edgerec.model.checkpoint", "load"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'edgerec' has no attribute {name!r}")


__all__ = ["__version__", *_LAZY]
