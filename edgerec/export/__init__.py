"""Exporters (ONNX, TensorRT, TFLite) behind one verb: export(checkpoint, data, out, ExportConfig(...)).

Heavy backends (torch, onnx, litert-torch, ai-edge-quantizer, tensorrt) are imported only when used: the names
below load on first access, so `edgerec.export.cli` can describe the command without them.
"""

from edgerec.lazy import lazy_getattr

_LAZY = {
    "ExportConfig": "edgerec.export.api",
    "export": "edgerec.export.api",
    "ExportTolerance": "edgerec.export.verify",
}


__getattr__ = lazy_getattr("edgerec.export", _LAZY)

__all__ = sorted(_LAZY)
