"""Integer compute for the phone bundle (BundleOptions.compute = "int8"): the catalog-wide MLP of `recommend`, and of
`score` when the bundle has it, with static int8 activations and weights, so that XNNPACK runs its integer (QS8)
kernels. The user projection, the item-constant ADD and the hidden FULLY_CONNECTED layers are int8; the GMF dot
products, the head's projection (it reads the last int8 activations dequantized), the logit sum and top-K stay
float32, so a score is not one of 256 levels.

Calibration needs no data set: `recommend` is calibrated on a seeded sample of the model's own user vectors (its
inputs), and `score` takes `recommend`'s statistics tensor by tensor (its layers carry the same names under the
CandidateScorer module), so both signatures quantize every activation alike. `share_item_constant` then makes
`score` look its rows up in `recommend`'s int8 item constant with the same scale: a candidate's score equals its
score in `recommend` exactly.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from edgerec.errors import EdgerecError
from edgerec.exporters.folded import FoldedNCF, user_vectors
from edgerec.exporters.small_constants import DEQUANTIZE, EMBEDDING_LOOKUP, FLOAT32, INT8, _opcode_index
from edgerec.model.ncf import NCF

CALIBRATION_USERS = 1024  # user vectors (a seeded sample of the model's users) that calibrate int8 compute
RECOMMEND, SCORE = "edgerec.exporters.folded.FoldedNCF", "edgerec.exporters.folded.CandidateScorer"
# the catalog-wide ops of both signatures (litert-torch names an op's output after the module path); the head's
# projection is excluded by the caller, and the logit sum is named after the signature's output, so it stays float
SCOPE = r"^edgerec\.exporters\.folded\.(FoldedNCF|CandidateScorer)/"
ADD, QUANTIZE = 0, 114  # BuiltinOperator codes


def calibration_vectors(model: NCF, users: int = CALIBRATION_USERS, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """`recommend`'s inputs for a seeded sample of the model's users (all of them when there are fewer)."""
    ug, um = user_vectors(model)
    n = ug.shape[0]
    chosen = np.sort(np.random.default_rng(seed).choice(n, min(users, n), replace=False))
    return [{"user_gmf": ug[u : u + 1].numpy(), "user_mlp": um[u : u + 1].numpy()} for u in chosen]


def calibrate(qt: Any, model: NCF, candidates: int, shortlist: int = 0) -> dict:  # qt: litert_quantizer Quantizer
    """The tensor statistics: `recommend`'s over the calibration users, copied onto the same tensors of `score`.
    With a shortlist, `score` is calibrated on each user's shortlist (repeated to C items): recommend's own rows,
    so that both signatures quantize the looked-up rows alike."""
    data = calibration_vectors(model)
    signatures = {"recommend": data}
    if candidates:
        rng = np.random.default_rng(1)
        n = model.arch.n_items
        lists = [rng.permutation(n)[:candidates] for _ in data]
        if shortlist:
            folded = FoldedNCF(model, k=1, shortlist=shortlist).eval()
            with torch.no_grad():
                lists = [np.resize(folded(**{k: torch.from_numpy(v) for k, v in d.items()})["shortlist"].numpy(),
                                   candidates) for d in data]  # fmt: skip
        signatures["score"] = [{**d, "items": items.astype(np.int32)} for d, items in zip(data, lists, strict=True)]
    qsvs = dict(qt.calibrate(signatures, num_threads=1))
    for name in [k for k in qsvs if k.startswith(RECOMMEND + "/")]:
        twin = name.replace(RECOMMEND, SCORE)
        if twin in qsvs:
            qsvs[twin] = qsvs[name]
    return qsvs


def share_item_constant(flat: bytes) -> bytes:
    """`score` looks its candidates' item constants up in a float table and quantizes them before the int8 ADD:
    point that lookup at `recommend`'s int8 item constant (dequantized once at load, the same buffer) and give the
    QUANTIZE after it that constant's scale and zero point, so each row reaches the ADD as the same int8 values as in
    `recommend`. The float table it read is dropped when nothing else reads it."""
    from ai_edge_litert import schema_py_generated as schema
    from litert_quantizer.utils import tfl_flatbuffer_utils as tfl

    model = tfl.read_model(flat)
    index = {
        (s.signatureKey.decode() if isinstance(s.signatureKey, bytes) else s.signatureKey): s.subgraphIndex
        for s in model.signatureDefs
    }
    if "score" not in index:
        return flat

    def code(op: Any) -> int:
        oc = model.operatorCodes[op.opcodeIndex]
        return max(oc.builtinCode, oc.deprecatedBuiltinCode)

    rec = model.subgraphs[index["recommend"]]
    consts = [
        rec.tensors[i]
        for op in rec.operators
        if code(op) == ADD
        for i in op.inputs
        if rec.tensors[i].type == INT8 and model.buffers[rec.tensors[i].buffer].data is not None
    ]
    if len(consts) != 1:
        raise EdgerecError(f"int8 compute: expected one int8 item constant in recommend, found {len(consts)}")
    (src,) = consts
    sg = model.subgraphs[index["score"]]
    producer = {out: op for op in sg.operators for out in op.outputs}
    ops, old_tables = [], set()
    for op in sg.operators:
        lookup = producer.get(op.inputs[0]) if code(op) == QUANTIZE else None
        if lookup is not None and code(lookup) == EMBEDDING_LOOKUP:
            table = sg.tensors[lookup.inputs[1]]
            if list(table.shape) != list(src.shape) or table.type != FLOAT32:
                raise EdgerecError("int8 compute: score's item-constant lookup does not match recommend's constant")
            old_tables.add(table.buffer)
            narrow, wide = schema.TensorT(), schema.TensorT()
            narrow.shape, narrow.type, narrow.buffer = list(src.shape), INT8, src.buffer
            narrow.quantization, narrow.name = copy.deepcopy(src.quantization), b"item_mlp_int8"
            wide.shape, wide.type, wide.buffer, wide.name = list(src.shape), FLOAT32, 0, b"item_mlp_dq"
            sg.tensors += [narrow, wide]
            deq = schema.OperatorT()
            deq.opcodeIndex = _opcode_index(model, DEQUANTIZE, 2)
            deq.inputs, deq.outputs = [len(sg.tensors) - 2], [len(sg.tensors) - 1]
            ops.insert(0, deq)
            lookup.inputs = list(lookup.inputs)
            lookup.inputs[1] = len(sg.tensors) - 1
            sg.tensors[op.outputs[0]].quantization = copy.deepcopy(src.quantization)
        ops.append(op)
    if not old_tables:
        raise EdgerecError("int8 compute: no quantized item-constant lookup in the score signature")
    sg.operators = ops
    read = {g.tensors[i].buffer for g in model.subgraphs for op in g.operators for i in op.inputs if i >= 0}
    for b in old_tables - read:
        model.buffers[b].data = None
    return bytes(tfl.flatbuffer_utils.convert_object_to_bytearray(model))
