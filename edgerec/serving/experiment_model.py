"""The python-backend `experiment` model of an edgerec Triton repository while an experiment runs: the router,
copied into experiment/1/ as model.py, with edgerec/experiments/assign.py beside it as edgerec_assign.py.

It takes what `recommend` takes (`users`: dense indices of the control version, the one the repository serves) and
answers `top_items`, `top_scores` (in the answering version's own indices), `item_ids` (the items' original ids) and
`version` (the model version that produced each row), by calling `recommend` of that version through Triton's
business-logic scripting (BLS, `pb_utils.InferenceRequest(model_version=...)`): one call per version and batch.

- mode "ab": a user's arm is `assign.arm(original user id, salt, traffic)`: B users are answered by the candidate
  (their original id looked up in its id map), A users by the control. A B user the candidate does not know, or a
  failed candidate call, is answered by the control, and the answer says so (`version`).
- mode "shadow": every answer comes from the control. After the answers are sent, a worker thread asks the
  candidate the same question through BLS and appends one JSON line per user to $EDGEREC_SHADOW_LOG (set by
  `edgerec serve --shadow-log`): both top-K lists as original ids, their overlap, the candidate's latency or its
  error (`batch` numbers the candidate's calls, `latency_ms` is that call's). The worker's queue is bounded: when
  the candidate falls behind, requests are not shadowed (counted as `dropped` on the next line) and no answer
  waits for it.

Self-contained on purpose: numpy, the standard library and Triton's triton_python_backend_utils, not edgerec.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils  # provided by Triton's python backend

OUTPUTS = ("top_items", "top_scores")


def _assign_module(folder: Path) -> Any:
    spec = importlib.util.spec_from_file_location("edgerec_assign", folder / "edgerec_assign.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["edgerec_assign"] = module
    spec.loader.exec_module(module)
    return module


def _id_maps(repo: Path, version: int) -> dict[str, list[str]]:
    maps = json.loads((repo / "recommend" / str(version) / "id_maps.json").read_text())
    return {key: [str(x) for x in maps[key]] for key in ("users", "items")}


def _recommend(version: int, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """recommend of `version` for dense users [n] (BLS); RuntimeError with the server's message on an error."""
    tensor = pb_utils.Tensor("users", users.reshape(-1, 1).astype(np.int64))
    request = pb_utils.InferenceRequest(
        model_name="recommend", model_version=int(version), inputs=[tensor], requested_output_names=list(OUTPUTS)
    )
    response = request.exec()
    if response.has_error():
        raise RuntimeError(response.error().message())
    items, scores = (pb_utils.get_output_tensor_by_name(response, name).as_numpy() for name in OUTPUTS)
    return items.reshape(len(users), -1), scores.reshape(len(users), -1)


class TritonPythonModel:
    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        folder = Path(args["model_repository"]) / args["model_version"]
        repo = Path(args["model_repository"]).parent
        self.assign = _assign_module(folder)
        self.mode = params["mode"]
        self.control, self.candidate = int(params["control"]), int(params["candidate"])
        self.salt, self.traffic = params["salt"], float(params["traffic"])
        self.k = int(params["k"])
        control, candidate = _id_maps(repo, self.control), _id_maps(repo, self.candidate)
        self.users = control["users"]  # dense index of the control -> original id
        self.candidate_users = {u: n for n, u in enumerate(candidate["users"])}
        self.items = {self.control: np.array(control["items"], dtype=object),
                      self.candidate: np.array(candidate["items"], dtype=object)}  # fmt: skip
        self.arm: dict[int, int] = {}  # control dense index -> candidate dense index (B), or -1 (A)
        self.shadow_queue: queue.Queue | None = None
        if self.mode == "shadow":
            self.shadow_log = os.environ.get("EDGEREC_SHADOW_LOG") or None
            self.shadow_queue = queue.Queue(maxsize=int(params.get("shadow_queue", 64)))
            self.dropped, self.batches = 0, 0
            self.worker = threading.Thread(target=self._shadow_worker, name="edgerec-shadow", daemon=True)
            self.worker.start()

    def _candidate_index(self, user: int) -> int:
        """The candidate's dense index of a control user in arm B, else -1."""
        known = self.arm.get(user)
        if known is None:
            original = self.users[user]
            b = self.mode == "ab" and self.assign.arm(original, self.salt, self.traffic) == "B"
            known = self.candidate_users.get(original, -1) if b else -1
            self.arm[user] = known
        return known

    def _read(self, request: Any) -> np.ndarray:
        users = pb_utils.get_input_tensor_by_name(request, "users").as_numpy().reshape(-1).astype(np.int64)
        bad = users[(users < 0) | (users >= len(self.users))]
        if bad.size:
            raise ValueError(f"unknown user {int(bad[0])}: user ids are 0..{len(self.users) - 1} (see id_maps.json)")
        return users

    def execute(self, requests: list[Any]) -> list[Any]:
        responses: list[Any] = [None] * len(requests)
        rows: list[tuple[int, int, int, int]] = []  # (request, row, control's dense user, candidate's or -1)
        sizes = {}
        for n, request in enumerate(requests):
            try:
                users = self._read(request)
            except ValueError as e:  # the request's own fault: HTTP 400, gRPC INVALID_ARGUMENT
                error = pb_utils.TritonError(str(e), pb_utils.TritonError.INVALID_ARG)
                responses[n] = pb_utils.InferenceResponse(output_tensors=[], error=error)
                continue
            sizes[n] = len(users)
            rows.extend((n, r, u, self._candidate_index(u)) for r, u in enumerate(users.tolist()))
        answers = self._answer(rows)
        for n, size in sizes.items():
            mine = [answers[(n, r)] for r in range(size)]
            error = next((a for a in mine if isinstance(a, str)), None)
            if error is not None:  # a version's model failed: the server's fault
                fault = pb_utils.TritonError(error, pb_utils.TritonError.INTERNAL)
                responses[n] = pb_utils.InferenceResponse(output_tensors=[], error=fault)
                continue
            ids = np.array([[str(x).encode() for x in self.items[v][i]] for v, i, _ in mine], dtype=object)
            tensors = [pb_utils.Tensor("top_items", np.stack([i for _, i, _ in mine])),
                       pb_utils.Tensor("top_scores", np.stack([s for _, _, s in mine])),
                       pb_utils.Tensor("version", np.array([[v] for v, _, _ in mine], dtype=np.int64)),
                       pb_utils.Tensor("item_ids", ids)]  # fmt: skip
            responses[n] = pb_utils.InferenceResponse(output_tensors=tensors)
        if self.shadow_queue is not None and rows:
            self._shadow(rows, answers)
        return responses

    def _answer(self, rows: list[tuple[int, int, int, int]]) -> dict[tuple[int, int], Any]:
        """{(request, row): (version, items, scores) or an error message}: one BLS call per version; the rows of a
        failed candidate call are answered by the control."""
        answers: dict[tuple[int, int], Any] = {}
        control = [row for row in rows if row[3] < 0]
        candidate = [row for row in rows if row[3] >= 0]
        if candidate:
            try:
                items, scores = _recommend(self.candidate, np.array([row[3] for row in candidate], dtype=np.int64))
                for (n, r, _, _), i, s in zip(candidate, items, scores, strict=True):
                    answers[(n, r)] = (self.candidate, i[: self.k], s[: self.k])
            except RuntimeError:
                control += candidate
        if control:
            try:
                items, scores = _recommend(self.control, np.array([row[2] for row in control], dtype=np.int64))
                for (n, r, _, _), i, s in zip(control, items, scores, strict=True):
                    answers[(n, r)] = (self.control, i[: self.k], s[: self.k])
            except RuntimeError as e:
                for n, r, _, _ in control:
                    answers[(n, r)] = f"recommend version {self.control}: {e}"
        return answers

    # -- shadow ---------------------------------------------------------------------------------------------------

    def _shadow(self, rows: list[tuple[int, int, int, int]], answers: dict[tuple[int, int], Any]) -> None:
        job = []
        for n, r, u, _ in rows:
            answer = answers.get((n, r))
            if isinstance(answer, tuple):
                job.append((self.users[u], [str(x) for x in self.items[answer[0]][answer[1]]]))
        try:
            self.shadow_queue.put_nowait((time.time(), job))
        except queue.Full:
            self.dropped += len(job)

    def _shadow_worker(self) -> None:
        while True:
            task = self.shadow_queue.get()
            if task is None:
                return
            at, job = task
            self.batches += 1
            known = [(u, live) for u, live in job if u in self.candidate_users]
            error, took, tops = None, 0.0, []
            if known:
                start = time.perf_counter()
                try:
                    dense = np.array([self.candidate_users[u] for u, _ in known], dtype=np.int64)
                    items, _ = _recommend(self.candidate, dense)
                    tops = [[str(x) for x in self.items[self.candidate][row[: self.k]]] for row in items]
                except Exception as e:  # the candidate's failure is logged, never raised into the live path
                    error = str(e).splitlines()[0][:300] if str(e) else type(e).__name__
                took = (time.perf_counter() - start) * 1e3
            lines = []
            for n, (user, live) in enumerate(job):
                line: dict[str, Any] = {"ts": round(at, 3), "batch": self.batches, "user": user,
                                        "control": self.control, "candidate": self.candidate, "live": live}  # fmt: skip
                if user not in self.candidate_users:
                    line["error"] = "the candidate does not know this user"
                elif error is not None:
                    line["error"] = error
                else:
                    top = tops[[u for u, _ in known].index(user)]
                    line["shadow"] = top
                    line["overlap"] = len(set(top) & set(live)) / max(len(live), 1)
                line["latency_ms"] = round(took, 3)
                if n == 0 and self.dropped:
                    line["dropped"], self.dropped = self.dropped, 0
                lines.append(json.dumps(line, separators=(",", ":")))
            self._write(lines)

    def _write(self, lines: list[str]) -> None:
        if not self.shadow_log or not lines:
            return
        try:
            with open(self.shadow_log, "a") as fh:
                fh.write("\n".join(lines) + "\n")
        except OSError:
            pass  # a full or missing disk loses shadow lines, never an answer

    def finalize(self) -> None:
        if self.shadow_queue is not None:
            with contextlib.suppress(queue.Full):
                self.shadow_queue.put(None, timeout=5)
            self.worker.join(10)
