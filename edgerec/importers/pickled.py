"""Reading pickles that `torch.load(weights_only=True)` refuses (RecBole's checkpoints and Dataset files) without
running any of their code.

A pickle is a program: every global it names is looked up (imported) and may be called. This reader's `find_class`
imports nothing. It answers with edgerec's own functions for the few globals whose meaning is data (the tensor
rebuilds, rebuilt as numpy arrays over the file's raw storage bytes; `OrderedDict`; `torch.Size`; dtypes; numpy's
array and scalar rebuilds; plain builtin containers) and with an inert stub class for every other global: calling
a stub or setting its state only records the arguments. So a RecBole `Config` comes out as a stub whose recorded
state holds its values, a tensor as a numpy array, and a `__reduce__` that would run a command as a stub that
recorded the command's text. No torch code runs either: torch's zip container is read with zipfile.
"""

from __future__ import annotations

import _compat_pickle
import builtins
import io
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from edgerec.errors import EdgerecError
from edgerec.io import read_bytes

# torch storage classes -> numpy dtypes (bfloat16 is widened to float32 from its 16 bits)
_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16",
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
_TORCH_DTYPES = {"float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool"}


class Inert:
    """A global the pickle names, never imported: calling it, or setting its state, records the arguments."""

    qualname = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs
        self.state: Any = None
        self.items: dict[Any, Any] = {}
        self.list: list[Any] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Inert:
        return _stub(self.qualname + "()")(*args, **kwargs)

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __setitem__(self, key: Any, value: Any) -> None:
        self.items[key] = value

    def append(self, value: Any) -> None:
        self.list.append(value)

    def extend(self, values: Any) -> None:
        self.list.extend(values)

    def __repr__(self) -> str:
        return f"<inert {self.qualname}>"

    def fields(self) -> dict[str, Any]:
        """The recorded state as a dict (what an object's __dict__ would have held), {} when there is none."""
        state = self.state
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):  # (dict, slots)
            state = {**(state[0] or {}), **state[1]}
        return dict(state) if isinstance(state, dict) else {}


_STUBS: dict[str, type[Inert]] = {}


def _stub(qualname: str) -> type[Inert]:
    if qualname not in _STUBS:
        _STUBS[qualname] = type(f"Inert[{qualname}]", (Inert,), {"qualname": qualname})
    return _STUBS[qualname]


class StorageType:
    def __init__(self, name: str) -> None:
        self.name = name


class Storage:
    """Raw bytes of one torch storage, viewed as its dtype."""

    def __init__(self, data: bytes, kind: str) -> None:
        dtype = _STORAGE_DTYPES[kind]
        if dtype == "bfloat16":
            bits = np.frombuffer(data, dtype=np.uint16).astype(np.uint32) << 16
            self.array = bits.view(np.float32)
        else:
            self.array = np.frombuffer(data, dtype=dtype)


def _rebuild_tensor(storage: Any, offset: int, size: Any, stride: Any, *_rest: Any) -> Any:
    """torch._utils._rebuild_tensor(_v2) as a numpy array (copied out of the storage), checked against its bounds."""
    if not isinstance(storage, Storage):
        return _stub("torch.Tensor")(storage, offset, size, stride)
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    base = storage.array
    if any(s < 0 for s in (*size, *stride)) or offset < 0:
        raise EdgerecError("a tensor in the file has a negative size, stride or offset")
    extent = offset + (sum((n - 1) * s for n, s in zip(size, stride, strict=True)) + 1 if all(size) else 0)
    if extent > base.size:
        raise EdgerecError("a tensor in the file reaches past the end of its storage")
    if not all(size):
        return np.zeros(size, dtype=base.dtype)
    item = base.itemsize
    view = np.lib.stride_tricks.as_strided(base[offset:], size, tuple(s * item for s in stride))
    return np.array(view)


def _rebuild_parameter(data: Any, *_rest: Any) -> Any:
    return data


def _size(values: Any = ()) -> tuple:
    return tuple(values)


def _reconstruct(cls: Any, shape: Any, dtype: Any) -> Any:  # numpy's ndarray rebuild, for ndarray only
    if cls is not np.ndarray:
        return _stub("numpy._reconstruct")(cls, shape, dtype)
    return np.ndarray.__new__(np.ndarray, shape, dtype)


def _scalar(dtype: Any, data: Any = None) -> Any:
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        return _stub("numpy.scalar")(dtype, data)
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _dtype(name: Any, align: bool = False, copy: bool = False) -> Any:
    return np.dtype(name)


_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch", "Size"): _size,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _dtype,
    **{(m, "_reconstruct"): _reconstruct for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(m, "scalar"): _scalar for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{("builtins", n): getattr(builtins, n) for n in ("set", "frozenset", "complex", "slice")},
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, storages: dict[str, bytes] | None) -> None:
        super().__init__(io.BytesIO(data))
        self.storages = storages
        self.protocol = data[1] if data[:1] == b"\x80" and len(data) > 1 else 0

    def find_class(self, module: str, name: str) -> Any:  # imports nothing
        if self.protocol < 3:  # protocol 2 (torch.save's) writes Python 2 names: commands.check_call, __builtin__.set
            module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return StorageType(name)
        if module == "torch" and name in _TORCH_DTYPES:
            return name
        return _stub(f"{module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        if self.storages is None or not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage"):
            return _stub("persistent")(pid)
        kind, key = pid[1], str(pid[2])
        if not isinstance(kind, StorageType) or key not in self.storages:
            return _stub("persistent")(pid)
        return Storage(self.storages[key], kind.name)


def globals_named(data: bytes) -> set[str]:
    """Every `module.name` global a pickle names (what loading it with pickle would import)."""
    import pickletools

    found: set[str] = set()
    strings: list[str] = []
    for op, arg, _ in pickletools.genops(io.BytesIO(data)):
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
            strings.append(str(arg))
        elif op.name in ("GLOBAL", "INST"):
            found.add(str(arg).replace(" ", "."))
        elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
            found.add(f"{strings[-2]}.{strings[-1]}")
    return found


def contents(path: Path) -> tuple[bytes, dict[str, bytes] | None]:
    """(the pickle, the storages by key): from a torch.save zip file, or a plain pickle with no storages."""
    raw = read_bytes(path, "a pickle file")
    if not zipfile.is_zipfile(io.BytesIO(raw)):
        return raw, None
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        pkl = [n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pkl) != 1:
            raise EdgerecError(f"{path}: a zip file but not one torch.save wrote (no single data.pkl)")
        root = pkl[0][: -len("data.pkl")]
        storages = {n[len(root) + 5 :]: z.read(n) for n in z.namelist() if n.startswith(root + "data/")}
        return z.read(pkl[0]), storages


def load(path: Path) -> Any:
    """The object a torch.save zip file or a plain pickle holds, read as described above."""
    raw, storages = contents(path)
    try:
        return _Unpickler(raw, storages).load()
    except EdgerecError:
        raise
    except Exception as e:  # a malformed pickle raises anything from its opcodes
        raise EdgerecError(f"{path}: not a readable pickle ({type(e).__name__}: {e})") from None
