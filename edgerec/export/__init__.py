"""Exporters (ONNX, TensorRT, TFLite) behind one verb: export(checkpoint, data, out, ExportConfig(...)).

Heavy backends (onnx, litert-torch, ai-edge-quantizer, tensorrt) are imported only when their target is chosen.
"""

from edgerec.export.api import ExportConfig, export
from edgerec.export.verify import ExportTolerance

__all__ = ["ExportConfig", "ExportTolerance", "export"]
