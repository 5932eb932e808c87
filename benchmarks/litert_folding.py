"""Which ops LiteRT evaluates once (when a signature is prepared) and which in every call, at a catalog's size: the
measurements behind the pq item tables' graph (edgerec.exporters.item_tables, docs/bundle.md "Decoded once").

    python benchmarks/litert_folding.py --items 886834

Each case is a one-subgraph TFLite model built here (a [1, 8] float input, the rest constants, the last op's output
the model's output), run in ai-edge-litert with its default XNNPACK delegate, one thread; the time is the p50 of
`--calls` invocations after one warm-up. A case whose time is near zero was evaluated when the model was prepared.
Writes benchmarks/results/litert_folding.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from edgerec.sysinfo import machine, provenance

HERE = Path(__file__).resolve().parent
FLOAT32, INT32, UINT8, INT16 = 0, 2, 3, 7  # TensorType codes
ADD, CAST, FULLY_CONNECTED, GATHER, RESHAPE = 0, 53, 9, 36, 22  # BuiltinOperator codes


class Graph:
    """A one-subgraph TFLite model under construction."""

    def __init__(self) -> None:
        from ai_edge_litert import schema_py_generated as schema

        self.schema = schema
        self.model = schema.ModelT()
        self.model.version, self.model.buffers, self.model.operatorCodes = 3, [schema.BufferT()], []
        self.sg = schema.SubGraphT()
        self.sg.tensors, self.sg.operators = [], []
        self.model.subgraphs = [self.sg]
        self.input = self.tensor([1, 8], FLOAT32)

    def tensor(self, shape: list[int], ttype: int, values: np.ndarray | None = None) -> int:
        t = self.schema.TensorT()
        t.shape, t.type, t.name, t.buffer = shape, ttype, f"t{len(self.sg.tensors)}".encode(), 0
        if values is not None:
            b = self.schema.BufferT()
            b.data = np.ascontiguousarray(values).tobytes()
            self.model.buffers.append(b)
            t.buffer = len(self.model.buffers) - 1
        self.sg.tensors.append(t)
        return len(self.sg.tensors) - 1

    def op(self, code: int, inputs: list[int], shape: list[int], ttype: int = FLOAT32) -> int:
        s = self.schema
        known = [oc.builtinCode for oc in self.model.operatorCodes]
        if code not in known:
            oc = s.OperatorCodeT()
            oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = code, code, 1
            self.model.operatorCodes.append(oc)
            known.append(code)
        i = known.index(code)
        options = {
            GATHER: (s.BuiltinOptions.GatherOptions, s.GatherOptionsT()),
            ADD: (s.BuiltinOptions.AddOptions, s.AddOptionsT()),
            FULLY_CONNECTED: (s.BuiltinOptions.FullyConnectedOptions, s.FullyConnectedOptionsT()),
        }
        if code == CAST:
            cast = s.CastOptionsT()
            cast.inDataType, cast.outDataType = self.sg.tensors[inputs[0]].type, ttype
            options[CAST] = (s.BuiltinOptions.CastOptions, cast)
        o = s.OperatorT()
        o.opcodeIndex, o.inputs = i, inputs
        o.outputs = [self.tensor(shape, ttype)]
        if code in options:
            o.builtinOptionsType, o.builtinOptions = options[code]
        self.sg.operators.append(o)
        return o.outputs[0]

    def computed(self, values: list[int]) -> int:
        """An int32 vector computed from constants (a GATHER of all its entries): not a constant to XNNPACK."""
        v = np.array(values, dtype=np.int32)
        src = self.tensor([len(v)], INT32, v)
        return self.op(GATHER, [src, self.tensor([len(v)], INT32, np.arange(len(v), dtype=np.int32))], [len(v)], INT32)

    def time(self, calls: int) -> float:
        from ai_edge_litert.interpreter import Interpreter
        from litert_quantizer.utils import tfl_flatbuffer_utils as tfl

        self.sg.inputs, self.sg.outputs = [self.input], [len(self.sg.tensors) - 1]
        interp = Interpreter(model_content=bytes(tfl.flatbuffer_utils.convert_object_to_bytearray(self.model)))
        interp.allocate_tensors()
        x = np.random.default_rng(1).normal(size=(1, 8)).astype(np.float32)
        index = interp.get_input_details()[0]["index"]
        interp.set_tensor(index, x)
        interp.invoke()
        ts = []
        for _ in range(calls):
            t0 = time.perf_counter()
            interp.set_tensor(index, x)
            interp.invoke()
            ts.append(time.perf_counter() - t0)
        return float(np.percentile(ts, 50) * 1e3)


def cases(n: int) -> list[tuple[str, Graph]]:
    rng = np.random.default_rng(0)
    books = rng.normal(size=(512, 1, 4)).astype(np.float32)
    rows16 = rng.integers(0, 512, (n, 2), dtype=np.int16)
    out = []

    def decode(g: Graph, shape: str) -> int:
        """G [n, 8] from 2 subspaces: GATHER(books, int16 rows) -> RESHAPE (shape: none, constant, computed)."""
        picked = g.op(GATHER, [g.tensor([512, 1, 4], FLOAT32, books), g.tensor([n, 2], INT16, rows16)], [n, 2, 1, 4])
        if shape == "none":
            return picked
        new = g.tensor([2], INT32, np.array([n, 8], np.int32)) if shape == "constant" else g.computed([n, 8])
        return g.op(RESHAPE, [picked, new], [n, 8])

    g = Graph()
    weights = g.tensor([256, 8], FLOAT32, rng.normal(size=(256, 8)).astype(np.float32))
    table = g.op(FULLY_CONNECTED, [g.input, weights, -1], [1, 256])  # a per-call [256] table (one subspace's dots)
    flat = g.op(RESHAPE, [table, g.tensor([1], INT32, np.array([256], np.int32))], [256])
    g.op(GATHER, [flat, g.tensor([n], INT32, rng.integers(0, 256, n, dtype=np.int32))], [n])
    out.append(("GATHER of n per-call scores by constant int32 positions (one ADC subspace)", g))
    g = Graph()
    codes = g.tensor([n, 2], UINT8, rng.integers(0, 256, (n, 2), dtype=np.uint8))
    g.op(GATHER, [g.tensor([512, 1, 4], FLOAT32, books), g.op(CAST, [codes], [n, 2], INT32)], [n, 2, 1, 4])
    out.append(("decode: CAST(uint8 codes) -> GATHER(codebooks)", g))
    g = Graph()
    g.op(GATHER, [g.tensor([512, 1, 4], FLOAT32, books), g.tensor([n, 2], INT16, rows16)], [n, 2, 1, 4])
    out.append(("decode: GATHER(codebooks, int16 rows)", g))
    g = Graph()
    decode(g, "constant")
    out.append(("decode: GATHER(codebooks, int16 rows) -> RESHAPE(constant shape)", g))
    g = Graph()
    decode(g, "computed")
    out.append(("decode: GATHER(codebooks, int16 rows) -> RESHAPE(computed shape)", g))
    g = Graph()
    g.op(FULLY_CONNECTED, [g.input, decode(g, "computed"), -1], [1, n])
    out.append(("the decode above, then FULLY_CONNECTED [1, 8] x [n, 8]", g))
    g = Graph()
    g.op(FULLY_CONNECTED, [g.input, g.tensor([n, 8], FLOAT32, rng.normal(size=(n, 8)).astype(np.float32)), -1], [1, n])
    out.append(("FULLY_CONNECTED [1, 8] x [n, 8] on a float32 constant", g))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=886_834)
    ap.add_argument("--calls", type=int, default=30)
    args = ap.parse_args()
    rows = []
    for name, g in cases(args.items):
        ms = g.time(args.calls)
        rows.append((name, ms))
        print(f"{ms:9.3f} ms  {name}", flush=True)
    lines = [
        "# Which ops LiteRT evaluates once",
        "",
        f"Written by {provenance()}; {machine()}; ai-edge-litert with its default XNNPACK delegate, one thread; "
        f"n = {args.items:,}; p50 of {args.calls} calls. Each case is a one-subgraph model of constants and a [1, 8] "
        "input (benchmarks/litert_folding.py); near zero: evaluated once, when the model was prepared. The machine "
        "is shared (load average above its 2 cores): compare orders of magnitude.",
        "",
        "| case | p50 ms |",
        "|---|---|",
        *(f"| {name} | {ms:.3f} |" for name, ms in rows),
        "",
        "What the pq tables' graph takes from it: GATHER of constants is evaluated once, a CAST is not (and nothing "
        "after it is then), so code words are int16; a RESHAPE with a constant shape goes to XNNPACK, which copies "
        "the table in every call, so the shape is computed; one per-call GATHER of n scalars (one subspace of "
        "asymmetric distance computation, which needs one per subspace and their sum) costs about what a "
        "FULLY_CONNECTED over the whole decoded table does.",
    ]
    (HERE / "results" / "litert_folding.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
