"""Exporters (ONNX, TensorRT, TFLite) behind one verb: export(checkpoint, data, out, ExportConfig(...)).

Heavy backends (torch, onnx, litert-torch, ai-edge-quantizer, tensorrt) are imported only when used: the names
below load on first access, so `edgerec.export.cli` can describe the command without them.
"""

from typing import Any

_LAZY = {
    "ExportConfig": "edgerec.export.api",
    "export": "edgerec.export.api",
    "ExportTolerance": "edgerec.export.verify",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'edgerec.export' has no attribute {name!r}")


__all__ = sorted(_LAZY)
