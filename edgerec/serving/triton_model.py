"""The python-backend model of an edgerec Triton repository, copied into each version folder as model.py.

It runs the ONNX file beside it (model.onnx) through onnxruntime, for the Triton build that has only the python
backend (`pip install nvidia-pytriton`); a full Triton serves the same ONNX with its native onnxruntime backend.
Self-contained on purpose: it needs numpy, onnxruntime and Triton's triton_python_backend_utils, not edgerec.

Every request is checked before anything runs (ids in range, shapes, candidate list length): a bad request gets an
error response with Triton's INVALID_ARG code (HTTP 400, gRPC INVALID_ARGUMENT) and the others in the same batch are
answered; a failure of onnxruntime itself is INTERNAL (HTTP 500). The valid requests of a batch are run in one call.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils  # provided by Triton's python backend


class TritonPythonModel:
    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        folder = Path(args["model_repository"]) / args["model_version"]
        sizes = json.loads((folder / "model.json").read_text())  # this version's own sizes (tables grow)
        self.n_users, self.n_items = int(sizes["n_users"]), int(sizes["n_items"])
        self.max_candidates = int(sizes["max_candidates"])
        self.inputs = [x["name"] for x in config["input"]]
        self.outputs = [x["name"] for x in config["output"]]
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(params.get("threads", 1))
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(folder / params.get("onnx_file", "model.onnx")), options, providers=["CPUExecutionProvider"]
        )

    def _read(self, request: Any) -> dict[str, np.ndarray]:
        """The request's arrays, checked: users [1] in 0..n_users-1, items [N] in 0..n_items-1."""
        arrays = {}
        for name in self.inputs:
            tensor = pb_utils.get_input_tensor_by_name(request, name)
            if tensor is None:
                raise ValueError(f"missing input {name}")
            arrays[name] = tensor.as_numpy()
        users = arrays["users"].reshape(-1)
        bad = users[(users < 0) | (users >= self.n_users)]
        if bad.size:
            raise ValueError(f"unknown user {int(bad[0])}: user ids are 0..{self.n_users - 1} (see id_maps.json)")
        arrays["users"] = users.astype(np.int64)
        if "items" in arrays:
            items = arrays["items"].reshape(len(users), -1)
            if not 1 <= items.shape[1] <= self.max_candidates:
                raise ValueError(f"candidate lists must hold 1..{self.max_candidates} items; got {items.shape[1]}")
            bad = items[(items < 0) | (items >= self.n_items)]
            if bad.size:
                raise ValueError(f"unknown item {int(bad[0])}: item ids are 0..{self.n_items - 1}")
            arrays["items"] = items.astype(np.int64)
        return arrays

    def execute(self, requests: list[Any]) -> list[Any]:
        responses: list[Any] = [None] * len(requests)
        groups: dict[tuple, list[tuple[int, dict[str, np.ndarray]]]] = {}
        for n, request in enumerate(requests):
            try:
                arrays = self._read(request)
            except ValueError as e:
                error = pb_utils.TritonError(str(e), pb_utils.TritonError.INVALID_ARG)
                responses[n] = pb_utils.InferenceResponse(output_tensors=[], error=error)
                continue
            shape = tuple(a.shape[1:] for a in arrays.values())  # requests of one shape run together
            groups.setdefault(shape, []).append((n, arrays))
        for members in groups.values():
            feed = {name: np.concatenate([a[name] for _, a in members]) for name in self.inputs}
            try:
                results = self.session.run(self.outputs, feed)
            except Exception as e:  # onnxruntime's own exception types; the server keeps serving
                error = pb_utils.TritonError(f"onnxruntime: {str(e).splitlines()[0]}", pb_utils.TritonError.INTERNAL)
                for n, _ in members:
                    responses[n] = pb_utils.InferenceResponse(output_tensors=[], error=error)
                continue
            start = 0
            for n, arrays in members:
                rows = slice(start, start + len(arrays["users"]))
                start = rows.stop
                tensors = [pb_utils.Tensor(name, r[rows]) for name, r in zip(self.outputs, results, strict=True)]
                responses[n] = pb_utils.InferenceResponse(output_tensors=tensors)
        return responses
