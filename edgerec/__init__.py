"""edgerec: compress, export and benchmark NCF / NeuMF recommenders for GPU servers and phones.

The names below are the public API. Importing edgerec does not import torch: the training names
(NCF, NCFArch, TrainConfig, train, fit, save_checkpoint, load_checkpoint) load it on first use.
"""

from typing import Any

from edgerec.data import Columns, Dataset, Interactions, SyntheticConfig, generate, leave_one_out, load_dataset
from edgerec.errors import EdgerecError
from edgerec.metrics import evaluate, hr_ndcg, item_pop_scorer

__version__ = "0.1.0"

_LAZY = {
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


__all__ = [
    "Columns",
    "Dataset",
    "EdgerecError",
    "Interactions",
    "SyntheticConfig",
    "__version__",
    "evaluate",
    "generate",
    "hr_ndcg",
    "item_pop_scorer",
    "leave_one_out",
    "load_dataset",
    *_LAZY,
]
