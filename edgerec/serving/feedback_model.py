"""The python-backend `feedback` model of an edgerec Triton repository, copied into feedback/1/ as model.py, with
edgerec/serving/events.py beside it as edgerec_events.py (the same writer `edgerec update` reads with).

A request: user (original id, string), event (impression | click | purchase, or the repository's own list),
timestamp (unix seconds), item (string; clicks and purchases), shown (the item ids an impression showed) and version
(optional: the model version whose answer the event is about, for experiments). The
answer: `seq`, the record's number in the log, sent only after the record is on disk (fsync). The log folder is
$EDGEREC_FEEDBACK_LOG, set by `edgerec serve --log-dir`; without it every request gets an error saying so. A bad
event, and a request to a server without a log, is the client's error (Triton's INVALID_ARG: HTTP 400, gRPC
INVALID_ARGUMENT); an event the disk did not take is the server's (INTERNAL: HTTP 500).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils  # provided by Triton's python backend


def _events_module(folder: Path) -> Any:
    spec = importlib.util.spec_from_file_location("edgerec_events", folder / "edgerec_events.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["edgerec_events"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _text(request: Any, name: str) -> list[str]:
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        return []
    values = tensor.as_numpy().reshape(-1)
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values]


class TritonPythonModel:
    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        folder = Path(args["model_repository"]) / args["model_version"]
        self.events = _events_module(folder)
        types = tuple(t for t in params.get("event_types", "impression,click,purchase").split(",") if t)
        self.log = None
        self.off = None
        log_dir = os.environ.get("EDGEREC_FEEDBACK_LOG")
        if not log_dir:
            self.off = "feedback logging is off: start the server with `edgerec serve REPO --log-dir DIR`"
            return
        self.log = self.events.EventLog(
            log_dir,
            max_bytes=int(params.get("segment_bytes", 16 << 20)),
            max_age_s=int(params.get("segment_seconds", 3600)),
            types=types,
            max_lag_s=int(params.get("max_lag_seconds", 3600)),
        )

    def _one(self, request: Any) -> Any:
        if self.log is None:
            raise self.events.EventError(self.off)
        users, events, items, shown = (_text(request, n) for n in ("user", "event", "item", "shown"))
        version = _text(request, "version")
        ts = pb_utils.get_input_tensor_by_name(request, "timestamp")
        if len(users) != 1 or len(events) != 1 or ts is None or ts.as_numpy().size != 1 or len(items) > 1:
            raise self.events.EventError("one event per request: user [1], event [1], timestamp [1], item [0..1]")
        if len(version) > 1:
            raise self.events.EventError("one event per request: version [0..1]")
        seq = self.log.append(users[0], items[0] if items else None, events[0], int(ts.as_numpy().reshape(-1)[0]),
                              shown, version[0] if version else None)  # fmt: skip
        return pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("seq", np.array([seq], dtype=np.int64))])

    def execute(self, requests: list[Any]) -> list[Any]:
        responses = []
        for request in requests:
            try:
                responses.append(self._one(request))
            except (self.events.EventError, OverflowError, ValueError) as e:
                error = pb_utils.TritonError(str(e), pb_utils.TritonError.INVALID_ARG)
                responses.append(pb_utils.InferenceResponse(output_tensors=[], error=error))
            except OSError as e:  # the disk: the event is not logged, and the client is told so
                error = pb_utils.TritonError(f"feedback not logged: {e.strerror or e}", pb_utils.TritonError.INTERNAL)
                responses.append(pb_utils.InferenceResponse(output_tensors=[], error=error))
        return responses

    def finalize(self) -> None:
        if self.log is not None:
            self.log.close()
