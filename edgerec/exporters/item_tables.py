"""Compressed item tables for the phone bundle (BundleOptions.item_table): the per-item constants of the folded NeuMF
(the GMF rows G [n, g], the item half of the first MLP layer A [n, h0], the item prior [n]) stored in fewer bytes and
decoded in the graph.

At a large catalog these tables are the bundle: ~44 bytes per item in the int8 bundle (40 int8 constants + a float32
prior), against a few kilobytes of layers. Formats:

- `int8` (the default): G one int8 scale (litert-quantizer), A one int8 scale per column
  (edgerec.exporters.small_constants), the prior float32.
- `int4`: G and A as TFLite INT4 tensors (two per byte) with one scale per column, read through DEQUANTIZE; the prior
  in 8 bits (below).
- `pq`: product quantization: G cut into `pq_gmf` subspaces, A into `pq_mlp` (an even number each), each subspace
  k-means centroids (float32) and one code per item, two codes to an int16 word (Codebook); the prior in 8 bits.
- the prior in 8 bits: int8 values with one scale and zero point (Affine8), read through DEQUANTIZE.

Every decode reads only constants through ops LiteRT evaluates once, when a signature is first prepared (GATHER,
CONCATENATION and RESHAPE of constant inputs, DEQUANTIZE of a constant): the decoded float tables are then held as the
int8 bundle holds its dequantized constants, and every call runs the uncompressed graph's ops on them. That is why
a code word is int16 (GATHER's positions; a CAST from uint8 is evaluated on every call, and so is everything after
it) and why RESHAPE reads a shape the graph computes (a constant shape lets the XNNPACK delegate take the RESHAPE,
which it runs on every call). The rewrite is done on the fp32 flatbuffer (before the layers' quantization), matching
the tables by content: the converter stores each as one float32 constant.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from math import isqrt
from typing import Any

import numpy as np

from edgerec.errors import EdgerecError

FLOAT32, INT32, INT8, INT16, INT4 = 0, 2, 9, 7, 17  # TensorType codes
ADD, CONCATENATION, DEQUANTIZE, GATHER, RESHAPE = 0, 2, 6, 36, 22  # BuiltinOperator codes
FORMATS = ("int8", "int4", "pq")
WORD = 1 << 15  # values of an int16 code word (GATHER reads int16 positions; negative ones are refused)
MIN_CENTROIDS = 16
MAX_CENTROIDS = 256


@dataclass(frozen=True)
class Codebook:
    """A table [n, dim] product-quantized into 2P subspaces of `k` centroids, its codes two to an int16 word: word p
    of row i is an entry of `split`, the pair of rows of books[p] that row i's part p is made of: (c, k + c') for the
    centroids c of subspace 2p and c' of 2p + 1 (the pairs the table uses, each once), or (2k + 2h, 2k + 2h + 1) for
    the h-th of the `head` rows kept exact. books[p] holds rows 0..k-1: subspace 2p's centroids, k..2k-1: subspace
    2p + 1's, then head row h's two halves at 2k + 2h and 2k + 2h + 1."""

    words: np.ndarray  # [n, P] int16
    split: np.ndarray  # [V, 2] int16, V <= 32768
    books: np.ndarray  # [P, 2k + 2 head, dim / 2P] float32
    k: int
    head: int = 0

    def decode(self) -> np.ndarray:
        rows = self.split[self.words.astype(np.int64)].astype(np.int64)  # [n, P, 2]
        n, p = self.words.shape
        return self.books[np.arange(p)[None, :, None], rows].reshape(n, -1)

    @property
    def nbytes(self) -> int:
        rows = self.books.shape[1]  # the graph's int32 map from a word's rows to the stacked books'
        return self.words.nbytes + self.books.nbytes + self.split.nbytes + 4 * rows * self.words.shape[1]


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


@dataclass(frozen=True)
class Affine8:
    """A vector [n] in 8 bits: int8 values q, value = scale (q - zero_point) (TFLite's DEQUANTIZE of an int8 tensor),
    256 evenly spaced levels from the smallest value to the largest."""

    values: np.ndarray  # [n] int8
    scale: float
    zero_point: int

    def decode(self) -> np.ndarray:
        return (np.float32(self.scale) * (self.values.astype(np.int32) - self.zero_point)).astype(np.float32)

    @property
    def nbytes(self) -> int:
        return int(self.values.nbytes)


def affine8(values: np.ndarray) -> Affine8:
    lo, hi = float(values.min()), float(values.max())
    scale = float(np.float32((hi - lo) / 255.0)) if hi > lo else 1.0
    zero_point = round(-128 - lo / scale)
    q = np.clip(np.rint(values / scale) + zero_point, -128, 127).astype(np.int8)
    return Affine8(q.reshape(-1), scale, zero_point)


def centroids(head: int) -> int:
    """Centroids per subspace with `head` exact rows: k * k + head word values fit an int16 word, at most 256."""
    if not 0 <= head <= WORD - MIN_CENTROIDS**2:
        raise EdgerecError(
            f"product quantization: at most {WORD - MIN_CENTROIDS**2:,} exact head rows (each takes a value of the "
            f"int16 code words); got {head:,}"
        )
    return min(MAX_CENTROIDS, isqrt(WORD - head))


def product_quantize(table: np.ndarray, subspaces: int, seed: int = 0, head: np.ndarray | None = None) -> Codebook:
    """k-means (faiss) per subspace on the table itself, `subspaces` (even) of centroids(len(head)) centroids; with
    `head` (item indices) those rows are kept exact."""
    import faiss

    n, dim = table.shape
    if subspaces < 2 or subspaces % 2 or dim % subspaces:
        raise EdgerecError(
            f"product quantization: {subspaces} subspaces must be an even number that divides the table's {dim} columns"
        )
    top = np.asarray(head if head is not None else [], dtype=np.int64)
    k = centroids(len(top))
    x = np.ascontiguousarray(table, dtype=np.float32)
    sub = dim // subspaces
    # k-means needs at least k rows, so a smaller table is repeated
    train = np.tile(x, (-(-k // n), 1)) if n < k else x
    codes = np.empty((n, subspaces), dtype=np.int64)
    books = np.empty((subspaces, k, sub), dtype=np.float32)
    for j in range(subspaces):
        cols = slice(j * sub, (j + 1) * sub)
        km = faiss.Kmeans(sub, k, niter=25, seed=seed + j, verbose=False)
        km.train(np.ascontiguousarray(train[:, cols]))
        books[j] = km.centroids
        codes[:, j] = km.index.search(np.ascontiguousarray(x[:, cols]), 1)[1][:, 0]
    pair = codes[:, 0::2] + k * codes[:, 1::2]  # [n, P]: the centroids of subspaces 2p and 2p + 1
    rest = np.ones(n, dtype=bool)
    rest[top] = False
    used, inverse = np.unique(pair[rest], return_inverse=True)
    words = np.empty_like(pair)
    words[rest] = inverse.reshape(-1, subspaces // 2)
    words[top] = len(used) + np.arange(len(top))[:, None]
    h = 2 * k + 2 * np.arange(len(top))
    split = np.concatenate([np.stack([used % k, k + used // k], 1), np.stack([h, h + 1], 1)]).astype(np.int16)
    exact = x[top].reshape(len(top), subspaces // 2, 2, sub).transpose(1, 0, 2, 3).reshape(subspaces // 2, -1, sub)
    stacked = np.concatenate([books.reshape(subspaces // 2, 2 * k, sub), exact], axis=1)
    return Codebook(words.astype(np.int16), split, np.ascontiguousarray(stacked, dtype=np.float32), k, len(top))


@dataclass(frozen=True)
class Encoded:
    """The item tables of one format: each an array (kept as it is: `int8` leaves them to the layers' quantization)
    or its encoding."""

    fmt: str
    gmf: Any  # np.ndarray | Int4 | Codebook
    mlp: Any
    prior: Any  # np.ndarray | Affine8

    def decoded(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(G, A, prior) as the bundle computes with them (float32), for references and checks."""
        out = [t if isinstance(t, np.ndarray) else t.decode() for t in (self.gmf, self.mlp, self.prior)]
        return out[0].astype(np.float32), out[1].astype(np.float32), out[2].reshape(-1).astype(np.float32)

    def record(self) -> dict[str, Any]:
        def one(t: Any) -> dict[str, Any]:
            if isinstance(t, Codebook):
                return {
                    "encoding": "codes (two to an int16 word)",
                    "subspaces": 2 * int(t.words.shape[1]),
                    "centroids": t.k,
                    "head_rows": t.head,
                    "bytes": t.nbytes,
                }
            if isinstance(t, Int4):
                return {"encoding": "int4", "bytes": t.nbytes}
            if isinstance(t, Affine8):
                return {"encoding": "int8 (scale, zero point)", "bytes": t.nbytes}
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
    prior8 = affine8(prior.astype(np.float32))
    if fmt == "int4":
        return Encoded(fmt, int4(G), int4(A), prior8)
    top = np.argsort(-prior, kind="stable")[: min(head, len(prior))] if head else None
    return Encoded(fmt, product_quantize(G, pq_gmf, seed, top), product_quantize(A, pq_mlp, seed, top), prior8)


def _op(model: Any, code: int, version: int = 1) -> int:
    from edgerec.exporters.small_constants import _opcode_index

    return _opcode_index(model, code, version)


def rewrite(flat: bytes, tables: dict[str, np.ndarray], encoded: Encoded) -> bytes:
    """The fp32 flatbuffer with each float32 constant equal to one of `tables` ("gmf", "mlp", "prior": the arrays
    the graph was converted with) replaced by its encoding and the decode ops (once per subgraph, before its first
    op); a table the graph does not hold is left out (a bundle without retrieve has no prior)."""
    from ai_edge_litert import schema_py_generated as schema
    from litert_quantizer.utils import tfl_flatbuffer_utils as tfl

    if encoded.fmt == "int8":
        return flat
    model = tfl.read_model(flat)
    by_content = {
        hashlib.sha256(np.ascontiguousarray(v, dtype=np.float32).tobytes()).digest(): name for name, v in tables.items()
    }
    new_buffers: dict[tuple, int] = {}  # (what, which) -> its constant buffer, shared by every subgraph

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

    def const(sg: Any, key: tuple, data: bytes, shape: list[int], ttype: int) -> int:
        """A constant tensor of this subgraph on the buffer `key`, which every subgraph shares."""
        t = schema.TensorT()
        t.shape, t.type = shape, ttype
        if key not in new_buffers:
            new_buffers[key] = buffer(data)
        t.buffer = new_buffers[key]
        return named(sg, t)

    def computed(sg: Any, values: np.ndarray) -> tuple[Any, int]:
        """(op, tensor): an int32 vector the graph computes from constants (a GATHER of all its entries): LiteRT
        evaluates it once, and XNNPACK does not see it as a constant (so it leaves the op reading it to LiteRT)."""
        v = np.asarray(values, dtype=np.int32)
        src = const(sg, ("computed", v.tobytes()), v.tobytes(), [len(v)], INT32)
        every = const(sg, ("arange", len(v)), np.arange(len(v), dtype=np.int32).tobytes(), [len(v)], INT32)
        out = temp(sg, [len(v)], INT32)
        return gather(src, every, out), out

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

    def gather(params: int, ids: int, out: int) -> Any:
        opts = schema.GatherOptionsT()
        opts.axis, opts.batchDims = 0, 0
        return operator(GATHER, [params, ids], [out], 1, (schema.BuiltinOptions.GatherOptions, opts))

    def quantized(sg: Any, t: int, scale: list[float], zero_point: list[int], axis: int = 0) -> None:
        qp = schema.QuantizationParametersT()
        qp.scale, qp.zeroPoint, qp.quantizedDimension = scale, zero_point, axis
        sg.tensors[t].quantization = qp

    def decode_ops(sg: Any, name: str, enc: Any, out: int) -> list[Any]:
        """The ops that write the decoded table into tensor `out` (its shape is the table's in the graph)."""
        shape = list(sg.tensors[out].shape)
        if isinstance(enc, Int4):
            q = const(sg, (name, 0), enc.packed(), list(enc.values.shape), INT4)
            quantized(sg, q, enc.scale.tolist(), [0] * enc.scale.size, 1)
            return [operator(DEQUANTIZE, [q], [out], 6)]
        if isinstance(enc, Affine8):
            q = const(sg, (name, 0), enc.values.tobytes(), shape, INT8)
            quantized(sg, q, [enc.scale], [enc.zero_point])
            return [operator(DEQUANTIZE, [q], [out], 2)]
        n, words = enc.words.shape
        rows_per_word, sub = enc.books.shape[1:]
        split_t = const(sg, ("split", enc.split.tobytes()), enc.split.tobytes(), list(enc.split.shape), INT16)
        ops, picked_rows = [], []
        for p in range(words):
            word = const(sg, (name, 10 + p), np.ascontiguousarray(enc.words[:, p]).tobytes(), [n], INT16)
            local, rows = temp(sg, [n, 2], INT16), temp(sg, [n, 2], INT32)
            # word p's rows in the stacked books: its own rows offset by p * rows_per_word
            offset = (np.arange(rows_per_word) + p * rows_per_word).astype(np.int32)
            to_books = const(sg, ("rows", p, rows_per_word), offset.tobytes(), [rows_per_word], INT32)
            ops += [gather(split_t, word, local), gather(to_books, local, rows)]
            picked_rows.append(rows)
        rows = picked_rows[0]
        if words > 1:
            rows = temp(sg, [n, 2 * words], INT32)
            opts = schema.ConcatenationOptionsT()
            opts.axis = 1
            ops.append(
                operator(CONCATENATION, picked_rows, [rows], 1, (schema.BuiltinOptions.ConcatenationOptions, opts))
            )
        # [P * rows_per_word, 1, sub]: 3-D, so the int8 pass over 2-D lookup tables (small_constants) leaves the
        # codebooks float32
        books = const(sg, (name, 2), enc.books.tobytes(), [words * rows_per_word, 1, sub], FLOAT32)
        picked = temp(sg, [n, 2 * words, 1, sub], FLOAT32)
        shape_op, new_shape = computed(sg, np.array(shape))
        return [*ops, gather(books, rows, picked), shape_op, operator(RESHAPE, [picked, new_shape], [out], 1)]

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
        for op in sg.operators:
            op.inputs = list(op.inputs)
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
        sg.operators = head + list(sg.operators)
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
        """About the tables' bytes per item of an n-item catalog (codebooks, maps and scales left out)."""
        if self.fmt == "pq":
            return self.pq_gmf + self.pq_mlp + 1 + 4 * (g + h0) * min(self.pq_head, n) / n
        if self.fmt == "int4":
            return (g + h0) / 2 + 1
        return g + h0 + 4

    def check(self, g: int, h0: int) -> None:
        """A one-line error when a product quantizer's subspaces are not an even number dividing its table."""
        if self.fmt != "pq":
            return
        for what, parts, width in (("pq_gmf", self.pq_gmf, g), ("pq_mlp", self.pq_mlp, h0)):
            if parts < 2 or parts % 2 or width % parts:
                table = "the GMF rows'" if what == "pq_gmf" else "the MLP item half's"
                raise EdgerecError(
                    f"item table pq: {what} {parts} must be an even number (two codes to an int16 word) that "
                    f"divides {table} {width} columns"
                )
        centroids(self.pq_head)


# what `item_table: auto` tries, smallest first: product quantizers (GMF, MLP subspaces; one whose subspaces do not
# divide its table is left out), each also with the AUTO_HEAD most popular items exact, then int4 and int8
AUTO_PQ = ((2, 4), (2, 8), (4, 8), (4, 16), (8, 32))
AUTO_HEAD = 4096


def choices(opts: Any, g: int, h0: int, n: int) -> list[Choice]:  # opts: BundleOptions
    """The formats to try, smallest first: the one asked for (checked: a one-line error when it cannot be built), or
    every candidate with `auto`."""
    if opts.item_table != "auto":
        one = Choice("pq", opts.pq_gmf, opts.pq_mlp, min(opts.pq_head, n)) if opts.item_table == "pq" else None
        one = one or Choice(opts.item_table)
        one.check(g, h0)
        return [one]
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
