"""Exporters (ONNX, TensorRT, TFLite, the phone bundle) behind one verb, edgerec.export. The target table
(edgerec.targets) names each exporter as "module:function"; backends are imported only when their target runs."""
