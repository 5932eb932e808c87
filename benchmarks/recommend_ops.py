"""Where the phone bundle's `recommend` spends its time, op by op, in LiteRT (one thread, XNNPACK as the bundle runs):
the fp32 bundle and the int8-compute bundle (`BundleOptions.compute = "int8"`) of one model, side by side.

    python benchmarks/recommend_ops.py [--model benchmarks/runs/neumf8] [--calls 2000] [--rounds 5]

Both bundles are built by the exporter's own functions (edgerec.exporters.bundle: convert, quantize, strip), without
the export's verification pass. For each op k of the `recommend` subgraph, a copy of the subgraph keeps ops 0..k and
returns every tensor they produce that none of them reads (so no op of the prefix is dead code, which XNNPACK would
drop); an op's cost is the p50 of its prefix minus the p50 of the prefix before it. The prefixes of both bundles are
timed in turns (round by round), pinned to one core. The whole signature is timed the same way, through its
signature runner, as `edgerec bench` does. Writes benchmarks/results/recommend_ops.{md,json}.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgerec.benchmarking.latency import one_core
from edgerec.exporters.bundle import convert, quantize, strip
from edgerec.exporters.folded import user_vectors
from edgerec.exporters.tflite_model import quiet
from edgerec.model.checkpoint import load
from edgerec.sysinfo import machine, provenance

HERE = Path(__file__).resolve().parent
TYPES = {0: "f32", 2: "i32", 9: "i8"}  # TensorType codes


def bundles(ckpt: Path) -> tuple[Any, dict[str, bytes]]:
    model = load(ckpt).model
    flat = convert(model, 10, 0)
    with quiet():
        int8 = strip(quantize(flat, "int8", "int8", model, 0)[0])
    return model, {"fp32": strip(flat), "int8 compute": int8}


class Prefixes:
    """The `recommend` subgraph of one bundle, cut after each op."""

    def __init__(self, flat: bytes) -> None:
        from ai_edge_litert import schema_py_generated as schema
        from litert_quantizer.utils import tfl_flatbuffer_utils as tfl

        self.tfl, self.model = tfl, tfl.read_model(flat)
        keys = {
            (s.signatureKey.decode() if isinstance(s.signatureKey, bytes) else s.signatureKey): s.subgraphIndex
            for s in self.model.signatureDefs
        }
        self.index = keys["recommend"]
        self.sg = self.model.subgraphs[self.index]
        names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
        self.ops = []
        for op in self.sg.operators:
            oc = self.model.operatorCodes[op.opcodeIndex]
            self.ops.append(
                {
                    "op": names[max(oc.builtinCode, oc.deprecatedBuiltinCode)],
                    "inputs": [self._shape(i) for i in op.inputs if i >= 0],
                    "outputs": [self._shape(i) for i in op.outputs],
                }
            )

    def _shape(self, i: int) -> str:
        t = self.sg.tensors[i]
        return f"{TYPES.get(t.type, t.type)}{list(t.shape)}"

    def cut(self, k: int) -> bytes:
        """Ops 0..k; outputs: what they produce and none of them reads."""
        m = copy.deepcopy(self.model)
        sg = m.subgraphs[self.index]
        sg.operators = sg.operators[: k + 1]
        read = {i for op in sg.operators for i in op.inputs}
        sg.outputs = [i for op in sg.operators for i in op.outputs if i not in read]
        m.subgraphs, m.signatureDefs = [sg], []
        return bytes(self.tfl.flatbuffer_utils.convert_object_to_bytearray(m))


def runner(flat: bytes, inputs: dict[str, np.ndarray], signature: bool) -> Any:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=flat, num_threads=1)
    if signature:
        run = interp.get_signature_runner("recommend")
        return lambda: run(**inputs)
    interp.allocate_tensors()
    for d in interp.get_input_details():  # the subgraph's inputs in order: user_gmf, user_mlp
        name = "user_gmf" if d["shape"][-1] == inputs["user_gmf"].shape[-1] else "user_mlp"
        interp.set_tensor(d["index"], inputs[name])
    try:
        interp.invoke()
    except RuntimeError:  # a cut whose ops are all evaluated at prepare leaves XNNPACK nothing to run
        return None
    return interp.invoke


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(HERE / "runs" / "neumf8"))
    ap.add_argument("--calls", type=int, default=2000, help="timed calls per prefix, over all rounds")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--results", default=str(HERE / "results"))
    args = ap.parse_args()
    model, flats = bundles(Path(args.model))
    ug, um = user_vectors(model)
    inputs = {"user_gmf": ug[:1].numpy(), "user_mlp": um[:1].numpy()}
    if ug.shape[1] == um.shape[1]:
        raise SystemExit("recommend_ops tells the two user inputs apart by width; this model's are equal")
    cases: dict[str, tuple[Prefixes, list[Any]]] = {}
    for name, flat in flats.items():
        p = Prefixes(flat)
        calls = [runner(flat, inputs, True)] + [runner(p.cut(k), inputs, False) for k in range(len(p.ops))]
        cases[name] = (p, calls)
    samples: dict[str, list[list[float]]] = {name: [[] for _ in calls] for name, (_, calls) in cases.items()}
    with one_core(True) as cpu:
        for _, calls in cases.values():
            for fn in filter(None, calls):
                for _ in range(50):
                    fn()
        for _ in range(args.rounds):
            for name, (_, calls) in cases.items():
                for fn, got in zip(calls, samples[name], strict=True):
                    for _ in range(args.calls // args.rounds if fn else 0):
                        t0 = time.perf_counter()
                        fn()
                        got.append(time.perf_counter() - t0)
    record: dict[str, Any] = {"provenance": provenance(), "machine": machine(), "cpu": cpu, "bundles": {}}
    for name, (p, _) in cases.items():
        p50 = [float(np.percentile(s, 50) * 1e3) if s else 0.0 for s in samples[name]]
        whole, prefix = p50[0], p50[1:]
        rows = [{**op, "ms": prefix[k] - (prefix[k - 1] if k else 0.0)} for k, op in enumerate(p.ops)]
        record["bundles"][name] = {"signature_p50_ms": whole, "last_prefix_p50_ms": prefix[-1], "ops": rows}
    out = Path(args.results)
    (out / "recommend_ops.json").write_text(json.dumps(record, indent=1) + "\n")
    (out / "recommend_ops.md").write_text(markdown(record, model.arch.n_items))
    print((out / "recommend_ops.md").read_text())
    return 0


def markdown(rec: dict, n: int) -> str:
    lines = [
        f"# `recommend` op by op: {n:,} items, fp32 vs int8-compute bundle",
        "",
        f"Generated by {rec['provenance']} on {rec['machine']}, one thread pinned to CPU {rec['cpu']}. LiteRT "
        "(ai-edge-litert) in Python with its default XNNPACK delegate. An op's ms: the p50 of the subgraph cut after "
        "it minus the p50 of the subgraph cut before it (each cut returns what its ops produce and none reads, so no "
        "op is dead code); cuts of both bundles timed in turns. A negative or near-zero cost is within the noise or "
        "an op LiteRT evaluates once, at prepare (its inputs are all constant).",
        "",
    ]
    for name, b in rec["bundles"].items():
        lines += [
            f"## {name}",
            "",
            f"Whole signature (signature runner, as `edgerec bench` calls it): p50 {b['signature_p50_ms']:.4f} ms; "
            f"the last cut (interpreter invoke): {b['last_prefix_p50_ms']:.4f} ms.",
            "",
            "| # | op | inputs | outputs | ms | share |",
            "|---|---|---|---|---|---|",
        ]
        total = b["last_prefix_p50_ms"]
        for k, r in enumerate(b["ops"]):
            lines.append(
                f"| {k} | {r['op']} | {', '.join(r['inputs'])} | {', '.join(r['outputs'])} | {r['ms']:.4f} | "
                f"{r['ms'] / total:.0%} |"
            )
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
