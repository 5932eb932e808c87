"""A client of an edgerec Triton repository being served, over HTTP or gRPC (tritonclient).

Dense user / item indices go in for recommend and score (id_maps.json of the served version maps original ids);
feedback takes original ids. Every server-side error comes back as a one-line EdgerecError: the server answers a
bad request (unknown id, too many candidates, a bad event, feedback off) with HTTP 400 / gRPC INVALID_ARGUMENT and
its own faults with 500 / INTERNAL; the message says which. K and the longest candidate list are read from the
served model's config; the catalog's sizes belong to each version (model.json) and are not asked of the server.
"""

from __future__ import annotations

from http.client import HTTPException
from typing import Any, NamedTuple

import numpy as np

from edgerec.errors import EdgerecError
from edgerec.serving.triton_config import ROUTER

PROTOCOLS = ("http", "grpc")
REFUSED = ("400", "StatusCode.INVALID_ARGUMENT")  # the status of a bad request, over HTTP and gRPC
NO_ROUTER = ("unknown model", "is not found", "not ready", "not available")  # Triton's words for a missing model


class Answer(NamedTuple):
    """A versioned answer: top_items / top_scores [B, k] in the answering version's indices, versions [B], and the
    items' original ids [B, k] (None when no experiment router answered: map with that version's id_maps.json)."""

    items: np.ndarray
    scores: np.ndarray
    versions: np.ndarray
    item_ids: np.ndarray | None


class Client:
    def __init__(self, url: str, protocol: str = "http", timeout_s: float = 30.0) -> None:
        if protocol not in PROTOCOLS:
            raise EdgerecError(f"protocol must be http or grpc; got {protocol!r}")
        self.url, self.protocol = url.removeprefix("http://").removeprefix("grpc://"), protocol
        if protocol == "http":
            import tritonclient.http as tc

            self._tc = tc
            self._c = tc.InferenceServerClient(self.url, connection_timeout=timeout_s, network_timeout=timeout_s)
        else:
            import tritonclient.grpc as tc

            self._tc = tc
            self._c = tc.InferenceServerClient(self.url)
        self.timeout_s = timeout_s
        params = self._call(lambda: self._config("recommend").get("parameters", {}))
        try:
            self.k = int(params["k"]["string_value"])
            self.max_candidates = int(params["max_candidates"]["string_value"])
        except (KeyError, TypeError, ValueError):
            raise EdgerecError(f"{url}: the served `recommend` model is not an edgerec repository's") from None

    def _config(self, model: str) -> dict[str, Any]:
        if self.protocol == "http":
            return self._c.get_model_config(model)
        return self._c.get_model_config(model, as_json=True)["config"]

    def _call(self, fn: Any) -> Any:
        from tritonclient.utils import InferenceServerException

        try:
            return fn()
        except InferenceServerException as e:
            message = (str(e.message() or "").strip().splitlines() or ["no message"])[0]
            status = e.status()
            what = "refused the request" if status in REFUSED else f"failed ({status})" if status else "failed"
            raise EdgerecError(f"server {self.url} {what}: {message}") from None
        except (OSError, HTTPException) as e:  # HTTPException: a connection the server closed (it went away)
            raise EdgerecError(f"server {self.url}: cannot reach it ({e})") from None

    def _infer(self, model: str, arrays: dict[str, np.ndarray], outputs: list[str]) -> list[np.ndarray]:
        inputs = []
        for name, a in arrays.items():
            dtype = {np.dtype(np.int64): "INT64", np.dtype(object): "BYTES"}.get(a.dtype, "FP32")
            x = self._tc.InferInput(name, list(a.shape), dtype)
            x.set_data_from_numpy(a)
            inputs.append(x)
        wanted = [self._tc.InferRequestedOutput(name) for name in outputs]
        result = self._call(lambda: self._c.infer(model, inputs, outputs=wanted))
        return [result.as_numpy(name) for name in outputs]

    def recommend(self, users: Any, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(top_items [B, k], top_scores [B, k]) for dense user indices (one request of B users)."""
        k = self.k if k is None else k
        if not 1 <= k <= self.k:
            raise EdgerecError(f"k must lie in 1..{self.k} (the repository's K); got {k}")
        u = np.asarray(users, dtype=np.int64).reshape(-1, 1)
        items, scores = self._infer("recommend", {"users": u}, ["top_items", "top_scores"])
        return items[:, :k], scores[:, :k]

    def recommend_experiment(self, users: Any, k: int | None = None) -> Answer:
        """Top-k for dense user indices (of the served version) through the running experiment's router: each row
        answered by the version of the user's arm, which `versions` names (pass it to `feedback`). Without an
        experiment, `recommend`'s answer and the one version served."""
        k = self.k if k is None else k
        if not 1 <= k <= self.k:
            raise EdgerecError(f"k must lie in 1..{self.k} (the repository's K); got {k}")
        u = np.asarray(users, dtype=np.int64).reshape(-1, 1)
        try:
            got = self._infer(ROUTER, {"users": u}, ["top_items", "top_scores", "version", "item_ids"])
        except EdgerecError as e:
            if not any(s in str(e) for s in NO_ROUTER):
                raise
            items, scores = self.recommend(u, k)
            served = self.served_versions()
            if len(served) != 1:
                raise EdgerecError(
                    f"server {self.url}: serves versions {served} of recommend and no experiment"
                ) from None
            return Answer(items, scores, np.full(len(u), int(served[0]), dtype=np.int64), None)
        items, scores, versions, ids = got
        texts = np.array([[x.decode() if isinstance(x, bytes) else str(x) for x in row] for row in ids[:, :k]])
        return Answer(items[:, :k], scores[:, :k], versions.reshape(-1).astype(np.int64), texts)

    def score(self, users: Any, items: Any) -> np.ndarray:
        """[B, N] scores of each user's candidate list."""
        u = np.asarray(users, dtype=np.int64).reshape(-1, 1)
        i = np.asarray(items, dtype=np.int64).reshape(len(u), -1)
        return self._infer("score", {"users": u, "items": i}, ["scores"])[0]

    def feedback(
        self,
        user: str,
        event: str,
        timestamp: int,
        item: str | None = None,
        shown: list[str] | None = None,
        version: str | int | None = None,
    ) -> int:
        """Log one event (original ids); its seq in the event log, once it is on disk. `version`: the model version
        whose answer the event is about (`recommend_experiment`'s), which an experiment's report reads."""
        arrays: dict[str, np.ndarray] = {
            "user": np.array([str(user).encode()], dtype=object),
            "event": np.array([event.encode()], dtype=object),
            "timestamp": np.array([int(timestamp)], dtype=np.int64),
        }
        if item is not None:
            arrays["item"] = np.array([str(item).encode()], dtype=object)
        if shown:
            arrays["shown"] = np.array([str(s).encode() for s in shown], dtype=object)
        if version is not None:
            arrays["version"] = np.array([str(version).encode()], dtype=object)
        return int(self._infer("feedback", arrays, ["seq"])[0].reshape(-1)[0])

    def served_versions(self, model: str = "recommend") -> list[str]:
        """The versions of `model` the server has loaded now (Triton's model metadata)."""
        if self.protocol == "http":
            meta = self._call(lambda: self._c.get_model_metadata(model))
        else:
            meta = self._call(lambda: self._c.get_model_metadata(model, as_json=True))
        return [str(v) for v in meta.get("versions", [])]

    def server_version(self) -> str:
        """The Triton server's own version (its metadata)."""
        if self.protocol == "http":
            meta = self._call(self._c.get_server_metadata)
        else:
            meta = self._call(lambda: self._c.get_server_metadata(as_json=True))
        return str(meta.get("version", "unknown"))

    def stats(self, model: str = "recommend") -> dict[str, Any]:
        """Triton's statistics of `model`: requests, executions and the batch sizes it ran."""
        if self.protocol == "http":
            raw = self._call(lambda: self._c.get_inference_statistics(model))
        else:
            raw = self._call(lambda: self._c.get_inference_statistics(model, as_json=True))
        merged: dict[str, Any] = {"inference_count": 0, "execution_count": 0, "batches": {}}
        for s in raw.get("model_stats", []):
            merged["inference_count"] += int(s.get("inference_count", 0))
            merged["execution_count"] += int(s.get("execution_count", 0))
            for b in s.get("batch_stats", []):
                size = int(b["batch_size"])
                merged["batches"][size] = merged["batches"].get(size, 0) + int(b["compute_infer"]["count"])
        return merged

    def close(self) -> None:
        self._c.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
