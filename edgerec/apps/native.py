"""The request and output files of the native client (examples/c/bundle_client.c, on the LiteRT C API), written
and read from Python: what tests and benchmarks feed the C program and how they read its answers back.

    request file:  "ERQ1" u32 n_requests, then per request:
                     str signature, u32 n_inputs, n_inputs x input, u32 n_outputs, n_outputs x str output_name
                   input: str name, str dtype, u64 nbytes, then nbytes raw bytes, or (nbytes = 2^64 - 1) u32
                     request_index and str output_name: that output of an earlier request, chained in the client
    output file:   "ERS1" u32 n_requests, then per request: u32 n_outputs, then per output:
                     str name, str dtype, u32 rank, rank x i32 dims, u64 nbytes, nbytes raw bytes
    str:           u32 length, then the bytes; every number little-endian

numpy only.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgerec.errors import EdgerecError

REF = 2**64 - 1  # an input's size field when the tensor is an output of an earlier request
BENCH_LINE = re.compile(
    r"bench (?P<sig>\S+) calls=(?P<calls>\d+) warmup=\d+ threads=\d+ p50_us=(?P<p50>\S+) p99_us=(?P<p99>\S+) "
    r"mean_us=(?P<mean>\S+)"
)


@dataclass(frozen=True)
class Tensor:
    """An input given by value, or by reference to output `name` of request `request` (chained in the client)."""

    value: np.ndarray | None = None
    request: int = -1
    name: str = ""
    dtype: str = ""

    @property
    def type_name(self) -> str:
        return self.dtype or str(np.asarray(self.value).dtype)


Request = tuple[str, dict[str, Tensor], list[str]]  # (signature, {input name: Tensor}, [wanted output names])


def _str(s: str) -> bytes:
    b = s.encode()
    return struct.pack("<I", len(b)) + b


def encode(requests: list[Request]) -> bytes:
    """The ERQ1 request file of `requests`, in order."""
    out = [b"ERQ1", struct.pack("<I", len(requests))]
    for sig, inputs, outputs in requests:
        out += [_str(sig), struct.pack("<I", len(inputs))]
        for name, t in inputs.items():
            out += [_str(name), _str(t.type_name)]
            if t.value is None:
                out += [struct.pack("<QI", REF, t.request), _str(t.name)]
            else:
                raw = np.ascontiguousarray(t.value).tobytes()
                out += [struct.pack("<Q", len(raw)), raw]
        out += [struct.pack("<I", len(outputs)), *(_str(n) for n in outputs)]
    return b"".join(out)


def decode(data: bytes) -> list[dict[str, np.ndarray]]:
    """The ERS1 output file: per request {output name: array of its dtype and shape}."""
    if data[:4] != b"ERS1":
        raise EdgerecError("not an output file of bundle_client (no ERS1 header)")
    pos = 4

    def take(fmt: str) -> tuple:
        nonlocal pos
        vals = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return vals

    def text() -> str:
        nonlocal pos
        (n,) = take("<I")
        pos += n
        return data[pos - n : pos].decode()

    try:
        (n_requests,) = take("<I")
        results = []
        for _ in range(n_requests):
            (n_out,) = take("<I")
            got = {}
            for _ in range(n_out):
                name, dtype = text(), text()
                (rank,) = take("<I")
                shape = take(f"<{rank}i")
                (nbytes,) = take("<Q")
                got[name] = np.frombuffer(data[pos : pos + nbytes], dtype=dtype).reshape(shape)
                pos += nbytes
            results.append(got)
    except (struct.error, ValueError, TypeError) as e:
        raise EdgerecError(f"a truncated or malformed output file of bundle_client ({e})") from None
    if pos != len(data):
        raise EdgerecError(f"an output file of bundle_client with {len(data) - pos} bytes after its last output")
    return results


def bench_lines(stdout: str) -> dict[str, dict[str, float]]:
    """{signature: {"p50", "p99", "mean" in ms, "calls"}} from the client's --bench lines."""
    out = {}
    for m in BENCH_LINE.finditer(stdout):
        out[m["sig"]] = {
            "p50": float(m["p50"]) / 1e3,
            "p99": float(m["p99"]) / 1e3,
            "mean": float(m["mean"]) / 1e3,
            "calls": int(m["calls"]),
        }
    return out


def build_client(source: Path, out: Path) -> Path:
    """bundle_client built by `source`/build.sh (examples/c) into `out`, libLiteRt.so of this Python's ai-edge-litert
    beside it; its path."""
    build = subprocess.run(
        ["sh", str(source / "build.sh"), str(out)],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if build.returncode != 0:
        said = build.stderr.strip().splitlines()
        raise EdgerecError(f"{source}/build.sh failed: {said[-1] if said else f'exit status {build.returncode}'}")
    return out / "bundle_client"


def run_client(client: Path, *args: str | Path, timeout: float = 600) -> str:
    """bundle_client with `args`, in an empty environment (no Python, no LD_LIBRARY_PATH: libLiteRt.so beside it);
    its standard output, or EdgerecError with its one stderr line."""
    try:
        proc = subprocess.run(
            [str(client), *map(str, args)], env={}, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise EdgerecError(f"{client}: no answer in {timeout:g} s") from None
    if proc.returncode != 0:
        raise EdgerecError(f"{client} {' '.join(map(str, args))}: {proc.stderr.strip()[-2000:]}")
    return proc.stdout
