"""TensorRT scorer: deserializes the artifact's engine and runs one optimization profile per batch bucket.

UNVERIFIED HERE: TensorRT cannot be installed on the machines edgerec is developed on (its PyPI packages download
the libraries from NVIDIA's index at install time, which is unreachable), and they have no GPU. This code follows
the documented TensorRT 10 Python API (Runtime.deserialize_cuda_engine, IExecutionContext.set_input_shape /
set_tensor_address / execute_async_v3) with cuda-python for device memory; it has never been run. Everything up to
the engine -- the TensorRT-ready ONNX and its accuracy in onnxruntime -- is verified by the onnx target.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgerec.errors import EdgerecError
from edgerec.runtime.base import BucketedScorer
from edgerec.runtime.onnx import OnnxScorer


def _cuda_check(result: tuple) -> Any:
    err, *rest = result
    if int(err) != 0:
        raise EdgerecError(f"CUDA call failed with error {int(err)}")
    return rest[0] if len(rest) == 1 else rest


class TensorRTScorer(BucketedScorer):
    def __init__(self, folder: Path, manifest: dict[str, Any], threads: int, runtime: str) -> None:
        super().__init__(folder, manifest, threads, runtime)
        try:
            import tensorrt as trt
            from cuda.bindings import runtime as cudart
        except ImportError as e:
            raise EdgerecError(f"the TensorRT runtime needs tensorrt and cuda-python on a GPU host ({e})") from None
        self.trt, self.cudart = trt, cudart
        logger = trt.Logger(trt.Logger.WARNING)
        engine = trt.Runtime(logger).deserialize_cuda_engine(self.model_path.read_bytes())
        if engine is None:
            raise EdgerecError(f"{self.model_path}: TensorRT cannot deserialize it (built for another GPU or version?)")
        self.engine, self.context = engine, engine.create_execution_context()
        self.stream = _cuda_check(cudart.cudaStreamCreate())
        big = self.buckets[-1]
        self.buffers = {name: _cuda_check(cudart.cudaMalloc(big * 4)) for name in ("users", "items", "scores")}
        for name, ptr in self.buffers.items():
            self.context.set_tensor_address(name, int(ptr))

    def _run_bucket(self, bucket: int, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        cudart, kind = self.cudart, self.cudart.cudaMemcpyKind
        profile = self.buckets.index(bucket)  # one optimization profile per bucket, in bucket order
        self.context.set_optimization_profile_async(profile, int(self.stream))
        for name, host in (("users", users), ("items", items)):
            self.context.set_input_shape(name, (bucket,))
            _cuda_check(
                cudart.cudaMemcpyAsync(
                    self.buffers[name], host.ctypes.data, host.nbytes, kind.cudaMemcpyHostToDevice, self.stream
                )
            )
        if not self.context.execute_async_v3(int(self.stream)):
            raise EdgerecError(f"{self.model_path}: TensorRT execution failed")
        out = np.empty(bucket, dtype=np.float32)
        _cuda_check(
            cudart.cudaMemcpyAsync(
                out.ctypes.data, self.buffers["scores"], out.nbytes, kind.cudaMemcpyDeviceToHost, self.stream
            )
        )
        _cuda_check(cudart.cudaStreamSynchronize(self.stream))
        return out


# onnxruntime runs the artifact's TensorRT-ready ONNX: all that can be verified without TensorRT
SCORERS = {"tensorrt": TensorRTScorer, "onnxruntime": OnnxScorer}
