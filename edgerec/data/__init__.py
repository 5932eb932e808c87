"""Interactions, loaders for every supported format, leave-one-out splits and negative sampling."""

from edgerec.data.interactions import Interactions, fingerprint
from edgerec.data.loaders import FORMATS, Columns, load_dataset, load_interactions
from edgerec.data.split import Dataset, leave_one_out, sample_negatives
from edgerec.data.synthetic import SyntheticConfig, generate

__all__ = [
    "FORMATS",
    "Columns",
    "Dataset",
    "Interactions",
    "SyntheticConfig",
    "fingerprint",
    "generate",
    "leave_one_out",
    "load_dataset",
    "load_interactions",
    "sample_negatives",
]
