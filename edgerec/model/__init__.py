"""GMF, MLP and NeuMF; training; safetensors checkpoints. The names below import torch on first use."""

from edgerec.lazy import lazy_getattr

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


__getattr__ = lazy_getattr("edgerec.model", _LAZY)

__all__ = sorted(_LAZY)
