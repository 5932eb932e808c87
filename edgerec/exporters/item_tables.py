"""Compressed item tables for the phone bundle (BundleOptions.item_table): the per-item constants of the folded NeuMF
(the GMF rows G [n, g], the item half of the first MLP layer A [n, h0], the item prior [n]) stored in fewer bytes and
decoded in the graph.

At a large catalog these tables are the bundle: ~44 bytes per item in the int8 bundle (40 int8 constants + a float32
prior), against a few kilobytes of layers. Formats:

- `int8` (the default): G one int8 scale (litert-quantizer), A one int8 scale per column
  (edgerec.exporters.small_constants), the prior float32.
- `int4`: G and A as TFLite INT4 tensors (two per byte) with one scale per column, read through DEQUANTIZE; the prior
  as 256 levels (below).
- `pq`: product quantization (faiss.ProductQuantizer): G cut into `pq_gmf` subspaces, A into `pq_mlp`, each subspace
  256 centroids (float32 codebook) and one uint8 code per item; the graph decodes CAST(codes) + offsets -> GATHER
  from the codebooks -> RESHAPE. The prior as 256 levels.
- the prior in 8 bits: one uint8 code per item and 256 float32 levels (1-D k-means, so popular items keep their
  order where the levels are dense), decoded by CAST + GATHER.

Every decode reads only constants, so the float tables it produces are the same in every call; the runtime holds
them as the int8 bundle holds its dequantized constants. The rewrite is done on the fp32 flatbuffer (before the
layers' quantization), matching the tables by content: the converter stores each as one float32 constant.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgerec.errors import EdgerecError

FLOAT32, INT32, UINT8, INT16, INT4 = 0, 2, 3, 7, 17  # TensorType codes
ADD, CAST, DEQUANTIZE, EMBEDDING_LOOKUP, FULLY_CONNECTED, GATHER, MUL, RESHAPE, SUM = (
    0,
    53,
    6,
    7,
    9,
    36,
    18,
    22,
    74,
)  # BuiltinOperator codes
FORMATS = ("int8", "int4", "pq")
LEVELS = 256  # codes per subspace (one byte) and levels of the 8-bit prior


@dataclass(frozen=True)
class Codebook:
    """A table [n, dim] as uint8 codes [n, m] into m codebooks of `dim / m` columns: row i is the concatenation of
    books[j, codes[i, j]] over j."""

    codes: np.ndarray  # [n, m] uint8
    books: np.ndarray  # [m, k, dim / m] float32 (k <= 256)
    # exact head rows: slot [n] int16 (0 = none, s = row s of residual), residual [H + 1, dim] float32 (row 0 zero):
    # the head items' rows are the decoded codes plus their residual, i.e. exact
    slot: np.ndarray | None = None
    residual: np.ndarray | None = None

    def decode(self) -> np.ndarray:
        m = self.books.shape[0]
        out = self.books[np.arange(m)[None, :], self.codes.astype(np.int64)].reshape(self.codes.shape[0], -1)
        return out if self.slot is None else out + self.residual[self.slot.astype(np.int64)]

    @property
    def nbytes(self) -> int:
        head = 0 if self.slot is None else self.slot.nbytes + self.residual.nbytes
        return self.codes.nbytes + self.books.nbytes + head


@dataclass(frozen=True)
class Int4:
    """A table [n, dim] as symmetric int4 values (-7..7), one float32 scale per column."""

    values: np.ndarray  # [n, dim] int8 in -7..7
    scale: np.ndarray  # [dim] float32

    def decode(self) -> np.ndarray:
        return self.values.astype(np.float32) * self.scale

    @property
    def nbytes(self) -> int:
        return (self.values.size + 1) // 2 + 12 * self.scale.size

    def packed(self) -> bytes:
        """TFLite's INT4 layout: two values per byte, the first in the low nibble."""
        flat = self.values.reshape(-1).astype(np.uint8) & 0xF
        if flat.size % 2:
            flat = np.append(flat, np.uint8(0))
        return (flat[0::2] | (flat[1::2] << 4)).astype(np.uint8).tobytes()


def int4(table: np.ndarray) -> Int4:
    peak = np.abs(table).max(axis=0)
    scale = np.where(peak > 0, peak / 7.0, 1.0).astype(np.float32)
    return Int4(np.clip(np.rint(table / scale), -7, 7).astype(np.int8), scale)


def product_quantize(table: np.ndarray, subspaces: int, seed: int = 0, head: np.ndarray | None = None) -> Codebook:
    """faiss's product quantizer trained on the table itself: `subspaces` codebooks of up to 256 centroids; with
    `head` (item indices, at most 32,767) those rows are kept exact (a per-item slot and their residuals)."""
    import faiss

    n, dim = table.shape
    if subspaces < 1 or dim % subspaces:
        raise EdgerecError(f"product quantization: {subspaces} subspaces do not divide the table's {dim} columns")
    x = np.ascontiguousarray(table, dtype=np.float32)
    # one byte per code (8 bits: faiss packs fewer); k-means needs at least 256 rows, so a smaller table is repeated
    train = np.tile(x, (-(-LEVELS // n), 1)) if n < LEVELS else x
    pq = faiss.ProductQuantizer(dim, subspaces, 8)
    pq.cp.seed = seed
    pq.verbose = False
    pq.train(np.ascontiguousarray(train))
    codes = pq.compute_codes(x)  # [n, m] uint8
    books = faiss.vector_to_array(pq.centroids).reshape(subspaces, LEVELS, dim // subspaces)
    book = Codebook(codes.reshape(n, subspaces).astype(np.uint8), books.astype(np.float32))
    if head is None or not len(head):
        return book
    if len(head) > np.iinfo(np.int16).max:
        raise EdgerecError(f"product quantization: at most 32,767 exact head rows; got {len(head):,}")
    slot = np.zeros(n, dtype=np.int16)
    slot[head] = np.arange(1, len(head) + 1, dtype=np.int16)
    residual = np.zeros((len(head) + 1, dim), dtype=np.float32)
    residual[1:] = x[head] - book.decode()[head]
    return Codebook(book.codes, book.books, slot, residual)


def levels(values: np.ndarray, seed: int = 0) -> Codebook:
    """A vector [n] in 8 bits: one code per value into 256 levels found by 1-D k-means (faiss)."""
    return product_quantize(values.reshape(-1, 1), 1, seed)


@dataclass(frozen=True)
class Encoded:
    """The item tables of one format: each an array (kept as it is: `int8` leaves them to the layers' quantization)
    or its encoding."""

    fmt: str
    gmf: Any  # np.ndarray | Int4 | Codebook
    mlp: Any
    prior: Any

    def decoded(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(G, A, prior) as the bundle computes with them (float32), for references and checks."""
        out = [t if isinstance(t, np.ndarray) else t.decode() for t in (self.gmf, self.mlp, self.prior)]
        return out[0].astype(np.float32), out[1].astype(np.float32), out[2].reshape(-1).astype(np.float32)

    def record(self) -> dict[str, Any]:
        def one(t: Any) -> dict[str, Any]:
            if isinstance(t, Codebook):
                return {
                    "encoding": "codes",
                    "subspaces": int(t.books.shape[0]),
                    "centroids": int(t.books.shape[1]),
                    "bytes": t.nbytes,
                }
            if isinstance(t, Int4):
                return {"encoding": "int4", "bytes": t.nbytes}
            return {"encoding": "float32 (quantized with the layers)", "bytes": int(t.nbytes)}

        return {"format": self.fmt, "gmf": one(self.gmf), "mlp": one(self.mlp), "prior": one(self.prior)}


def encode(
    G: np.ndarray,
    A: np.ndarray,
    prior: np.ndarray,
    fmt: str,
    pq_gmf: int = 2,
    pq_mlp: int = 8,
    seed: int = 0,
    head: int = 0,
) -> Encoded:
    """The tables in `fmt`; pq with `head` > 0 keeps the rows of the `head` items of highest prior (the most popular:
    they fill most top-10 lists) exact."""
    if fmt not in FORMATS:
        raise EdgerecError(f"item tables: unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    if fmt == "int8":
        return Encoded(fmt, G, A, prior)
    prior8 = levels(prior.astype(np.float32), seed)
    if fmt == "int4":
        return Encoded(fmt, int4(G), int4(A), prior8)
    top = np.argsort(-prior, kind="stable")[: min(head, len(prior))] if head else None
    return Encoded(fmt, product_quantize(G, pq_gmf, seed, top), product_quantize(A, pq_mlp, seed, top), prior8)


def _op(model: Any, code: int, version: int = 1) -> int:
    from edgerec.exporters.small_constants import _opcode_index

    return _opcode_index(model, code, version)


def rewrite(flat: bytes, tables: dict[str, np.ndarray], encoded: Encoded) -> bytes:
    """The fp32 flatbuffer with each float32 constant equal to one of `tables` ("gmf", "mlp", "prior": the arrays
    the graph was converted with) replaced by its encoding and the decode ops; a table the graph does not hold is
    left out (a bundle without retrieve has no prior)."""
    from ai_edge_litert import schema_py_generated as schema
    from litert_quantizer.utils import tfl_flatbuffer_utils as tfl

    if encoded.fmt == "int8":
        return flat
    model = tfl.read_model(flat)
    by_content = {
        hashlib.sha256(np.ascontiguousarray(v, dtype=np.float32).tobytes()).digest(): name for name, v in tables.items()
    }
    new_buffers: dict[tuple[str, int], int] = {}  # (table, which) -> its constant buffer, shared by every subgraph

    def buffer(data: bytes) -> int:
        b = schema.BufferT()
        b.data = data
        model.buffers.append(b)
        return len(model.buffers) - 1

    count = iter(range(1 << 30))

    def named(sg: Any, t: Any) -> int:  # the quantizer wants every tensor named, each name once in the model
        t.name = f"item_table_{next(count)}".encode()
        sg.tensors.append(t)
        return len(sg.tensors) - 1

    def const(sg: Any, data: bytes, shape: list[int], ttype: int) -> int:
        t = schema.TensorT()
        t.shape, t.type, t.buffer = shape, ttype, buffer(data)
        return named(sg, t)

    def shared_const(sg: Any, name: str, i: int, data: bytes, shape: list[int], ttype: int) -> int:
        """A constant tensor of this subgraph on the buffer (name, i) that every subgraph shares."""
        if (name, i) in new_buffers:
            t = schema.TensorT()
            t.shape, t.type, t.buffer = shape, ttype, new_buffers[name, i]
            return named(sg, t)
        idx = const(sg, data, shape, ttype)
        new_buffers[name, i] = sg.tensors[idx].buffer
        return idx

    def temp(sg: Any, shape: list[int], ttype: int) -> int:
        t = schema.TensorT()
        t.shape, t.type, t.buffer = shape, ttype, 0
        return named(sg, t)

    def operator(code: int, inputs: list[int], outputs: list[int], version: int = 1, options: Any = None) -> Any:
        op = schema.OperatorT()
        op.opcodeIndex = _op(model, code, version)
        op.inputs, op.outputs = inputs, outputs
        if options is not None:
            op.builtinOptionsType, op.builtinOptions = options
        return op

    def decode_ops(sg: Any, name: str, enc: Any, out: int, ids: int | None = None) -> list[Any]:
        """The ops that write the decoded table into tensor `out`; with `ids` (an int32 index tensor) only those
        rows (a lookup: the codes are gathered first, so a candidate list decodes C rows, not the catalog)."""
        shape = list(sg.tensors[out].shape)
        if isinstance(enc, Int4):
            q = shared_const(sg, name, 0, enc.packed(), list(enc.values.shape), INT4)
            qp = schema.QuantizationParametersT()
            qp.scale, qp.zeroPoint, qp.quantizedDimension = enc.scale.tolist(), [0] * enc.scale.size, 1
            sg.tensors[q].quantization = qp
            if ids is None:
                return [operator(DEQUANTIZE, [q], [out], 6)]
            wide = temp(sg, list(enc.values.shape), FLOAT32)
            return [operator(DEQUANTIZE, [q], [wide], 6), gather(wide, ids, out)]
        n, m = enc.codes.shape
        k, sub = enc.books.shape[1:]
        rows_n = n if ids is None else int(np.prod(sg.tensors[ids].shape))
        codes = shared_const(sg, name, 0, enc.codes.tobytes(), [n, m], UINT8)
        offsets = shared_const(
            sg, name, 1, (np.arange(m, dtype=np.int32) * k).tobytes(), [m], INT32
        )  # subspace j's centroids start at row j * k of the stacked codebooks
        # [m * k, 1, sub]: 3-D, so the int8 pass over 2-D lookup tables (small_constants) leaves the codebooks float32,
        # the same values the GMF half's centroid tables (product_ops) read
        books = shared_const(sg, name, 2, enc.books.tobytes(), [m * k, 1, sub], FLOAT32)
        new_shape = const(sg, np.array(shape, dtype=np.int32).tobytes(), [len(shape)], INT32)
        ops = []
        if ids is not None:
            picked_codes = temp(sg, [rows_n, m], UINT8)
            ops.append(gather(codes, ids, picked_codes))
            codes = picked_codes
        wide, rows, picked = (
            temp(sg, [rows_n, m], INT32),
            temp(sg, [rows_n, m], INT32),
            temp(sg, [rows_n, m, 1, sub], FLOAT32),
        )
        cast_opts = schema.CastOptionsT()
        cast_opts.inDataType, cast_opts.outDataType = UINT8, INT32
        add_opts = schema.AddOptionsT()
        base = out if enc.slot is None else temp(sg, shape, FLOAT32)
        ops += [
            operator(CAST, [codes], [wide], 1, (schema.BuiltinOptions.CastOptions, cast_opts)),
            operator(ADD, [wide, offsets], [rows], 1, (schema.BuiltinOptions.AddOptions, add_opts)),
            gather(books, rows, picked),
            operator(RESHAPE, [picked, new_shape], [base], 1),
        ]
        if enc.slot is None:
            return ops
        slots, res = head_slots(sg, name, enc, ids)
        ops += slots
        dim = enc.residual.shape[1]
        residual = shared_const(sg, name, 5, enc.residual.tobytes(), [enc.residual.shape[0], 1, dim], FLOAT32)
        picked_res, flat_res = temp(sg, [rows_n, 1, dim], FLOAT32), temp(sg, shape, FLOAT32)
        return [
            *ops,
            gather(residual, res, picked_res),
            operator(RESHAPE, [picked_res, new_shape], [flat_res], 1),
            operator(ADD, [base, flat_res], [out], 1, (schema.BuiltinOptions.AddOptions, schema.AddOptionsT())),
        ]

    def head_slots(sg: Any, name: str, enc: Codebook, ids: int | None) -> tuple[list[Any], int]:
        """(ops, the int32 tensor of the rows' head slots): the slot map's entries for `ids` (all rows: None)."""
        n = enc.slot.shape[0]
        slot = shared_const(sg, name, 6, enc.slot.tobytes(), [n], INT16)
        ops = []
        rows_n = n
        if ids is not None:
            rows_n = int(np.prod(sg.tensors[ids].shape))
            picked = temp(sg, [rows_n], INT16)
            ops.append(gather(slot, ids, picked))
            slot = picked
        wide = temp(sg, [rows_n], INT32)
        opts = schema.CastOptionsT()
        opts.inDataType, opts.outDataType = INT16, INT32
        ops.append(operator(CAST, [slot], [wide], 1, (schema.BuiltinOptions.CastOptions, opts)))
        return ops, wide

    def product_ops(sg: Any, name: str, enc: Codebook, vector: int, out: int) -> list[Any]:
        """A [1, dim] vector's dot products with every row of a product-quantized table, written into `out` ([1, n])
        without decoding the table (asymmetric distance computation): the vector's dot product with each centroid of
        each subspace (a [m * k] table), then per item the sum of its m entries."""
        n, m = enc.codes.shape
        k, sub = enc.books.shape[1:]
        codes = shared_const(sg, name, 0, enc.codes.tobytes(), [n, m], UINT8)
        offsets = shared_const(sg, name, 1, (np.arange(m, dtype=np.int32) * k).tobytes(), [m], INT32)
        books = shared_const(sg, name, 2, enc.books.tobytes(), [m, k, sub], FLOAT32)  # decode_ops' [m * k, 1, sub]
        split = const(sg, np.array([m, 1, sub], dtype=np.int32).tobytes(), [3], INT32)
        flat_shape = const(sg, np.array([m * k], dtype=np.int32).tobytes(), [1], INT32)
        out_shape = const(sg, np.array(sg.tensors[out].shape, dtype=np.int32).tobytes(), [2], INT32)
        last, second = (const(sg, np.array([a], dtype=np.int32).tobytes(), [1], INT32) for a in (2, 1))
        v3 = temp(sg, [m, 1, sub], FLOAT32)
        prod, dots, table = temp(sg, [m, k, sub], FLOAT32), temp(sg, [m, k], FLOAT32), temp(sg, [m * k], FLOAT32)
        wide, rows = temp(sg, [n, m], INT32), temp(sg, [n, m], INT32)
        parts, total = temp(sg, [n, m], FLOAT32), temp(sg, [n], FLOAT32)
        cast_opts = schema.CastOptionsT()
        cast_opts.inDataType, cast_opts.outDataType = UINT8, INT32
        reducer = schema.ReducerOptionsT()
        reducer.keepDims = False
        return [
            operator(RESHAPE, [vector, split], [v3], 1),
            operator(MUL, [books, v3], [prod], 1, (schema.BuiltinOptions.MulOptions, schema.MulOptionsT())),
            operator(SUM, [prod, last], [dots], 1, (schema.BuiltinOptions.ReducerOptions, reducer)),
            operator(RESHAPE, [dots, flat_shape], [table], 1),
            operator(CAST, [codes], [wide], 1, (schema.BuiltinOptions.CastOptions, cast_opts)),
            operator(ADD, [wide, offsets], [rows], 1, (schema.BuiltinOptions.AddOptions, schema.AddOptionsT())),
            gather(table, rows, parts),
            operator(SUM, [parts, second], [total], 1, (schema.BuiltinOptions.ReducerOptions, reducer)),
            *(head := head_dots(sg, name, enc, vector, total)),
            operator(RESHAPE, [head[-1].outputs[0] if head else total, out_shape], [out], 1),
        ]

    def head_dots(sg: Any, name: str, enc: Codebook, vector: int, total: int) -> list[Any]:
        """The ops adding the head rows' residuals' dot products with the vector to `total` [n] (the last op's
        output is the sum); none without head rows."""
        if enc.slot is None:
            return []
        n = enc.slot.shape[0]
        h, dim = enc.residual.shape
        residual = shared_const(sg, name, 5, enc.residual.tobytes(), [h, 1, dim], FLOAT32)
        two = const(sg, np.array([2], dtype=np.int32).tobytes(), [1], INT32)
        flat = const(sg, np.array([h], dtype=np.int32).tobytes(), [1], INT32)
        prod, dots, table = temp(sg, [h, 1, dim], FLOAT32), temp(sg, [h, 1], FLOAT32), temp(sg, [h], FLOAT32)
        picked, summed = temp(sg, [n], FLOAT32), temp(sg, [n], FLOAT32)
        slots, wide = head_slots(sg, name, enc, None)
        reducer = schema.ReducerOptionsT()
        reducer.keepDims = False
        ops = [
            *slots,
            operator(MUL, [residual, vector], [prod], 1, (schema.BuiltinOptions.MulOptions, schema.MulOptionsT())),
            operator(SUM, [prod, two], [dots], 1, (schema.BuiltinOptions.ReducerOptions, reducer)),
            operator(RESHAPE, [dots, flat], [table], 1),
            gather(table, wide, picked),
            operator(ADD, [total, picked], [summed], 1, (schema.BuiltinOptions.AddOptions, schema.AddOptionsT())),
        ]
        return ops

    def gather(params: int, ids: int, out: int) -> Any:
        opts = schema.GatherOptionsT()
        opts.axis, opts.batchDims = 0, 0
        return operator(GATHER, [params, ids], [out], 1, (schema.BuiltinOptions.GatherOptions, opts))

    def code_of(op: Any) -> int:
        oc = model.operatorCodes[op.opcodeIndex]
        return max(oc.builtinCode, oc.deprecatedBuiltinCode)

    def table_of(t_idx: int, sg: Any) -> str | None:
        t = sg.tensors[t_idx]
        data = model.buffers[t.buffer].data if t.buffer else None
        if t.type != FLOAT32 or data is None or len(data) < 4 * 16:
            return None
        return by_content.get(hashlib.sha256(bytes(data)).digest())

    encodings = {"gmf": encoded.gmf, "mlp": encoded.mlp, "prior": encoded.prior}
    replaced: set[int] = set()
    found: set[str] = set()
    for sg in model.subgraphs:
        swapped: dict[int, int] = {}  # the constant tensor -> the decoded tensor replacing it
        head: list[Any] = []
        body: list[Any] = []
        for op in sg.operators:
            op.inputs = list(op.inputs)
            if (
                code_of(op) == FULLY_CONNECTED
                and len(op.inputs) > 1
                and (name := table_of(op.inputs[1], sg)) is not None
                and isinstance(encodings[name], Codebook)
                and (len(op.inputs) < 3 or op.inputs[2] < 0)
                and list(sg.tensors[op.inputs[0]].shape)
                == [1, encodings[name].books.shape[0] * encodings[name].books.shape[2]]
                and len(sg.tensors[op.outputs[0]].shape) == 2
            ):
                replaced.add(sg.tensors[op.inputs[1]].buffer)
                found.add(name)
                body += product_ops(sg, name, encodings[name], op.inputs[0], op.outputs[0])
                continue
            if code_of(op) == EMBEDDING_LOOKUP and (name := table_of(op.inputs[1], sg)) is not None:
                replaced.add(sg.tensors[op.inputs[1]].buffer)
                found.add(name)
                body += decode_ops(sg, name, encodings[name], op.outputs[0], ids=op.inputs[0])
                continue
            for pos, t_idx in enumerate(op.inputs):
                if t_idx < 0 or (name := table_of(t_idx, sg)) is None:
                    continue
                if t_idx not in swapped:
                    out = temp(sg, list(sg.tensors[t_idx].shape), FLOAT32)
                    head += decode_ops(sg, name, encodings[name], out)
                    swapped[t_idx] = out
                    replaced.add(sg.tensors[t_idx].buffer)
                    found.add(name)
                op.inputs[pos] = swapped[t_idx]
            body.append(op)
        sg.operators = head + body
    if "gmf" not in found or "mlp" not in found:
        raise EdgerecError("item tables: the graph holds no float32 item constants to encode (convert changed?)")
    used = {sg.tensors[i].buffer for sg in model.subgraphs for op in sg.operators for i in op.inputs if i >= 0}
    for old in replaced - used:
        model.buffers[old].data = None
    return bytes(tfl.flatbuffer_utils.convert_object_to_bytearray(model))


@dataclass(frozen=True)
class Choice:
    """One item-table format to try: the format and, for `pq`, the subspaces of G and of A and the exact head rows."""

    fmt: str
    pq_gmf: int = 0
    pq_mlp: int = 0
    pq_head: int = 0

    @property
    def label(self) -> str:
        if self.fmt != "pq":
            return self.fmt
        return f"pq(gmf {self.pq_gmf}, mlp {self.pq_mlp}" + (f", head {self.pq_head})" if self.pq_head else ")")

    def bytes_per_item(self, g: int, h0: int, n: int) -> float:
        """About the tables' bytes per item of an n-item catalog (codebooks and scales left out)."""
        if self.fmt == "pq":
            head = min(self.pq_head, n)
            return self.pq_gmf + self.pq_mlp + 1 + (2 + 4 * (g + h0) * (head + 1) / n if head else 0)
        if self.fmt == "int4":
            return (g + h0) / 2 + 1
        return g + h0 + 4


# what `item_table: auto` tries, smallest first: product quantizers (GMF, MLP subspaces; one whose subspaces do not
# divide its table is left out), each also with the AUTO_HEAD most popular items exact, then int4 and int8
AUTO_PQ = ((2, 4), (2, 8), (4, 8), (4, 16), (8, 32))
AUTO_HEAD = 4096


def choices(opts: Any, g: int, h0: int, n: int) -> list[Choice]:  # opts: BundleOptions
    """The formats to try, smallest first: the one asked for, or every candidate with `auto`."""
    if opts.item_table != "auto":
        if opts.item_table == "pq":
            return [Choice("pq", opts.pq_gmf, opts.pq_mlp, min(opts.pq_head, n))]
        return [Choice(opts.item_table)]
    head = min(AUTO_HEAD, n // 8)
    pqs = [Choice("pq", a, b, h) for a, b in AUTO_PQ for h in (0, head) if g % a == 0 and h0 % b == 0]
    return sorted([*pqs, Choice("int4"), Choice("int8")], key=lambda c: c.bytes_per_item(g, h0, n))


@dataclass
class Reference:
    """The uncompressed model's exhaustive top-K for a seeded sample of its users: what a compressed table is
    measured against (recall@K of the bundle's recommend and two-stage top-K)."""

    user_gmf: np.ndarray  # [u, g]
    user_mlp: np.ndarray  # [u, d]
    top: np.ndarray  # [u, k]

    @classmethod
    def of(cls, folded: Any, user_gmf: np.ndarray, user_mlp: np.ndarray, users: int, k: int, seed: int = 0):
        from edgerec.runtime.retrieval import exhaustive_top_k

        n = len(user_gmf)
        chosen = np.sort(np.random.default_rng(seed).choice(n, min(users, n), replace=False))
        ug, um = user_gmf[chosen].astype(np.float32), user_mlp[chosen].astype(np.float32)
        top = np.stack([exhaustive_top_k(folded, ug[r], um[r], k) for r in range(len(chosen))])
        return cls(ug, um, top)

    def recall(self, flat: bytes, candidates: int) -> dict[str, float]:
        """{"recommend": recall@K of the bundle's recommend top-K, "two_stage": of retrieve + score (with C)}."""
        from edgerec.runtime.tflite import interpreter_class

        interp = interpreter_class("ai-edge-litert")(model_content=flat, num_threads=1)
        rec = interp.get_signature_runner("recommend")
        retrieve = interp.get_signature_runner("retrieve") if candidates else None
        score = interp.get_signature_runner("score") if candidates else None
        k = self.top.shape[1]
        hits: dict[str, list[float]] = {"recommend": [], **({"two_stage": []} if candidates else {})}
        for r in range(len(self.top)):
            ug, um = self.user_gmf[r : r + 1], self.user_mlp[r : r + 1]
            truth = self.top[r]
            hits["recommend"].append(len(np.intersect1d(rec(user_gmf=ug, user_mlp=um)["top_items"], truth)) / k)
            if retrieve is not None and score is not None:
                cand = retrieve(user_gmf=ug)["items"]
                staged = score(user_gmf=ug, user_mlp=um, items=cand)["top_items"]
                hits["two_stage"].append(len(np.intersect1d(staged, truth)) / k)
        return {name: float(np.mean(v)) for name, v in hits.items()}
