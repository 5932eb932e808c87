"""TFLite scorer on ai-edge-litert (LiteRT) or the legacy tflite-runtime package.

One signature per batch bucket ("b1", "b1000", ...). Quantized outputs are dequantized with the output tensor's
own scale and zero point, read from the interpreter (edgerec's int8 exports keep the score in float, but a model
from elsewhere may not).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgerec.errors import EdgerecError
from edgerec.runtime.base import BucketedScorer


def interpreter_class(runtime: str):  # -> the Interpreter class of the runtime package
    try:
        if runtime == "tflite-runtime":
            from tflite_runtime.interpreter import Interpreter
        else:
            from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        pkg = "tflite-runtime (it needs numpy<2)" if runtime == "tflite-runtime" else "ai-edge-litert"
        raise EdgerecError(f"the {runtime} runtime is not installed: pip install {pkg}") from None
    return Interpreter


# tflite-runtime 2.14 computes hybrid (float activations, int8 weights) FULLY_CONNECTED and EMBEDDING_LOOKUP wrongly
# when the weights carry per-channel scales: silently wrong scores (max error 0.35-0.45 measured on NeuMF). Static
# int8 (int8 activations) and per-tensor models are right there. Such models are refused on that runtime.
def legacy_broken_ops(interp: Any) -> list[str]:
    """Hybrid FULLY_CONNECTED / EMBEDDING_LOOKUP ops whose int8 weights have several quantization scales."""
    tensors = {d["index"]: d for d in interp.get_tensor_details()}

    def scales(idx: int) -> int:
        return len(tensors.get(int(idx), {}).get("quantization_parameters", {}).get("scales", ()))

    bad = []
    for op in interp._get_ops_details():  # the only API exposing op -> tensor wiring in both runtimes
        ins = [int(i) for i in op["inputs"] if int(i) >= 0]
        if op["op_name"] == "EMBEDDING_LOOKUP" and any(scales(i) > 1 for i in ins[1:]):
            bad.append(op["op_name"])
        elif op["op_name"] == "FULLY_CONNECTED" and len(ins) > 1:
            hybrid = tensors.get(ins[0], {}).get("dtype") == np.float32 and scales(ins[1]) > 1
            if hybrid:
                bad.append(op["op_name"])
    return bad


class TFLiteScorer(BucketedScorer):
    def __init__(self, folder: Path, manifest: dict[str, Any], threads: int, runtime: str) -> None:
        super().__init__(folder, manifest, threads, runtime)
        Interpreter = interpreter_class(runtime)
        kwargs = {}
        if manifest.get("delegate") == "none":  # plain TFLite kernels, without the default XNNPACK delegate
            from importlib import import_module

            module = "tflite_runtime.interpreter" if runtime == "tflite-runtime" else "ai_edge_litert.interpreter"
            resolver = import_module(module).OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
            kwargs["experimental_op_resolver_type"] = resolver
        try:
            self.interp = Interpreter(model_path=str(self.model_path), num_threads=threads, **kwargs)
        except (ValueError, RuntimeError) as e:
            raise EdgerecError(f"{self.model_path}: {runtime} cannot load it ({str(e).splitlines()[0]})") from None
        if runtime == "tflite-runtime" and (bad := legacy_broken_ops(self.interp)):
            raise EdgerecError(
                f"{self.model_path}: per-channel dynamic-range {bad[0]} gives silently wrong scores on "
                "tflite-runtime 2.14; re-export with --runtime tflite-runtime (per-tensor quantization)"
            )
        sigs = self.interp.get_signature_list()
        self.runners, self.dequant = {}, {}
        for b in self.buckets:
            key = f"b{b}"
            if key not in sigs or sorted(sigs[key]["inputs"]) != ["items", "users"]:
                raise EdgerecError(f"{self.model_path}: no signature {key} with inputs users, items")
            runner = self.interp.get_signature_runner(key)
            (out_name, out), *_ = runner.get_output_details().items()
            scale, zero = out["quantization"]
            self.runners[b] = (runner, out_name)
            self.dequant[b] = (float(scale), int(zero)) if out["dtype"] != np.float32 else None

    def _run_bucket(self, bucket: int, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        runner, out_name = self.runners[bucket]
        out = runner(users=users, items=items)[out_name]
        if (dq := self.dequant[bucket]) is not None:
            out = (out.astype(np.float32) - dq[1]) * dq[0]
        return out


# the runtime packages this artifact runs on (the first is the default); both read the same flatbuffer
SCORERS = {"ai-edge-litert": TFLiteScorer, "tflite-runtime": TFLiteScorer}
