"""Opening a source file safely: what kind it is (by its first bytes, not its name) and its tensors as numpy.

HDF5 is read by h5py (the Keras reader), safetensors as it is, pickles by `torch.load(weights_only=True)` (which
refuses any global beyond tensors and containers) or, for RecBole's files, by `pickled.load` (no code runs).
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from edgerec.errors import EdgerecError
from edgerec.importers import pickled
from edgerec.io import read_bytes

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
FORMAT_HINT = {"hdf5": "keras-h5", "safetensors": "state-dict", "torch-zip": "dle, recbole or state-dict"}


def kind(path: Path) -> str:
    """'hdf5', 'safetensors', 'torch-zip', 'corrupt-zip', 'pickle' or 'unknown', from the file's first bytes."""
    head = read_bytes(path, "a model file", size=16)
    if head.startswith(HDF5_MAGIC):
        return "hdf5"
    if head[:2] == b"PK":
        return "torch-zip" if zipfile.is_zipfile(path) else "corrupt-zip"
    if head[:1] == b"\x80":
        return "pickle"
    if len(head) >= 9 and head[8:9] == b"{":
        return "safetensors"
    return "unknown"


def expect(path: Path, fmt: str, allowed: tuple[str, ...]) -> str:
    """path's kind, refusing a file of another format than --format says."""
    k = kind(path)
    if k == "corrupt-zip":
        raise EdgerecError(f"{path}: a truncated or corrupt zip file (torch.save writes zip files): not readable")
    if k not in allowed:
        hint = f" (it looks like {k}: try --format {FORMAT_HINT[k]})" if k in FORMAT_HINT else ""
        raise EdgerecError(f"{path}: not a {fmt} file{hint}")
    return k


def _numpy(value: Any) -> np.ndarray:
    import torch

    if value.dtype == torch.bfloat16:
        value = value.float()
    return value.detach().cpu().numpy()


def torch_weights(path: Path) -> Any:
    """torch.load(weights_only=True); a pickle that needs more than tensors and containers is refused, with why."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        safe = {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter"}
        named = sorted(n for n in _globals(path) - safe if not (n.startswith("torch.") and "Storage" in n))
        if not named:  # nothing refused: the pickle itself is broken
            raise EdgerecError(f"{path}: not a readable PyTorch file ({str(e).splitlines()[0][:200]})") from None
        shown = ", ".join(named)[:200]
        raise EdgerecError(
            f"{path}: refused: loading this pickle would import and call code it names ({shown}); edgerec reads "
            "weights only: re-save it as a state_dict (torch.save(model.state_dict(), 'model.pth')) or as "
            "safetensors (safetensors.torch.save_file(model.state_dict(), 'model.safetensors'))"
        ) from None
    except (RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile) as e:
        raise EdgerecError(f"{path}: not a readable PyTorch file ({str(e).splitlines()[0][:200]})") from None


def _globals(path: Path) -> set[str]:
    try:
        return pickled.globals_named(pickled.contents(path)[0])
    except Exception:  # only for the message
        return set()


def state_dict(path: Path, fmt: str) -> dict[str, np.ndarray]:
    """The tensors of a state_dict file (.pth / .pt zip or pickle, or safetensors), by key, as numpy arrays.

    A checkpoint dict that wraps its state_dict under "state_dict" or "model" is unwrapped."""
    k = expect(path, fmt, ("torch-zip", "pickle", "safetensors"))
    if k == "safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return {name: _numpy(t) for name, t in load_file(str(path)).items()}
        except (SafetensorError, OSError) as e:
            raise EdgerecError(f"{path}: unreadable safetensors file ({e})") from None
    obj = torch_weights(path)
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    import torch

    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise EdgerecError(f"{path}: not a state_dict (expected a mapping of tensor names to tensors)")
    return {str(name): _numpy(t) for name, t in obj.items()}


def strip_prefix(tensors: dict[str, np.ndarray], prefix: str = "module.") -> dict[str, np.ndarray]:
    """DistributedDataParallel saves every key under `module.`."""
    if tensors and all(k.startswith(prefix) for k in tensors):
        return {k[len(prefix) :]: v for k, v in tensors.items()}
    return tensors
