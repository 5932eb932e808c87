"""GMF, MLP and NeuMF; training; safetensors checkpoints. The names below import torch on first use."""

from typing import Any

_LAZY = {
    "NCF": "edgerec.model.ncf",
    "NCFArch": "edgerec.model.ncf",
    "neumf_from_pretrained": "edgerec.model.ncf",
    "Checkpoint": "edgerec.model.checkpoint",
    "load": "edgerec.model.checkpoint",
    "save": "edgerec.model.checkpoint",
    "TrainConfig": "edgerec.model.config",
    "fit": "edgerec.model.training",
    "torch_scorer": "edgerec.model.training",
    "train": "edgerec.model.training",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'edgerec.model' has no attribute {name!r}")


__all__ = sorted(_LAZY)
