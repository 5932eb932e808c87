"""GMF, MLP and NeuMF; training; safetensors checkpoints. Imports torch."""

from edgerec.model.checkpoint import Checkpoint, load, save
from edgerec.model.ncf import NCF, NCFArch, neumf_from_pretrained
from edgerec.model.training import TrainConfig, fit, torch_scorer, train

__all__ = [
    "NCF",
    "Checkpoint",
    "NCFArch",
    "TrainConfig",
    "fit",
    "load",
    "neumf_from_pretrained",
    "save",
    "torch_scorer",
    "train",
]
