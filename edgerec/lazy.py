"""Lazy attributes for packages whose public names pull in heavy modules (torch, exporters) on first use."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_getattr(package: str, names: dict[str, str]) -> Callable[[str], Any]:
    """A module-level __getattr__ that imports names[attr] when `attr` is first accessed.

    names[attr] is a module path ("edgerec.model.ncf": the attribute of the same name there) or "module:name" for a
    public name that differs from the module's own.
    """

    def __getattr__(attr: str) -> Any:
        if attr in names:
            module, _, target = names[attr].partition(":")
            return getattr(importlib.import_module(module), target or attr)
        raise AttributeError(f"module {package!r} has no attribute {attr!r}")

    return __getattr__
