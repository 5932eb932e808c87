"""Compressed item tables in the phone bundle: each format exports, runs in LiteRT (recommend and the two-stage path),
equals the numpy decode of its tables; the chooser keeps the smallest format that passes the gate; a failing gate,
an unmet budget and a format the runtime cannot run are one-line errors that write nothing."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from safetensors.numpy import load_file

import edgerec
from edgerec.errors import ConfigError, EdgerecError
from edgerec.exporters import item_tables
from edgerec.exporters.config import ExportConfig
from edgerec.gates import ParityBound
from edgerec.runtime import load_bundle
from edgerec.runtime.fold import fold
from edgerec.runtime.retrieval import item_prior

DATA = "synthetic:users=300,items=1500,seed=5"  # enough items that 8-bit tables lose something


@pytest.fixture(scope="module")
def data():
    from edgerec.data import load_dataset

    return load_dataset(DATA)


@pytest.fixture(scope="module")
def model(tmp_path_factory, data):
    return edgerec.train(data, edgerec.TrainConfig(epochs=3, seed=0)).save(tmp_path_factory.mktemp("ck") / "m")


def export(model, data, out, precision="fp32", **options):
    cfg = ExportConfig(
        target="tflite-bundle",
        precision=precision,
        tolerance=ParityBound(hr=1.0, agreement=None),
        options={"candidates": 100, **options},
    )
    return edgerec.export(model, cfg, data, out=out)


def reference(model, enc: item_tables.Encoded):
    """The folded NeuMF in numpy with the tables as the bundle decodes them."""
    weights = {k: v.astype(np.float32) for k, v in load_file(str(model / "model.safetensors")).items()}
    G, A, prior = enc.decoded()
    return dataclasses.replace(fold(weights), G=G, A=A), prior, weights


def assert_decoded_once(flat: bytes) -> None:
    """The decodes are ops whose inputs are all constants (or such ops' outputs), of the kinds LiteRT evaluates once
    when it prepares a signature: no CAST of constants (evaluated in every call), and each decode's RESHAPE reads a
    computed shape (the XNNPACK delegate would copy a constant-shaped one in every call); G and A end in one each."""
    from litert_quantizer.utils import tfl_flatbuffer_utils as tfl

    model = tfl.read_model(flat)
    folds = {item_tables.GATHER, item_tables.CONCATENATION, item_tables.RESHAPE, item_tables.DEQUANTIZE}
    decodes = 0
    for sg in model.subgraphs:
        static = {i for i, t in enumerate(sg.tensors) if t.buffer and model.buffers[t.buffer].data is not None}
        for op in sg.operators:
            oc = model.operatorCodes[op.opcodeIndex]
            code = max(oc.builtinCode, oc.deprecatedBuiltinCode)
            inputs_static = all(i in static for i in op.inputs if i >= 0)
            assert not (code == 53 and inputs_static), "a CAST of constants: LiteRT evaluates it in every call"
            if code in folds and inputs_static:
                static.update(op.outputs)
                if code == item_tables.RESHAPE:
                    shape = sg.tensors[op.inputs[1]]
                    assert not (shape.buffer and model.buffers[shape.buffer].data), "a constant RESHAPE shape"
                    decodes += 1
    assert decodes >= 2  # G and A, in every signature that reads them


@pytest.mark.parametrize(("fmt", "head"), [("int4", 0), ("pq", 0), ("pq", 64)])
def test_each_format_runs_in_litert_and_equals_the_numpy_decode(tmp_path, model, data, fmt, head) -> None:
    art = export(model, data, tmp_path / fmt, item_table=fmt, pq_head=head, table_recall=0.0)
    rec = art.manifest["quantization"]["item_table"]
    assert rec["format"] == fmt and rec["bytes"] == (art.folder / "model.tflite").stat().st_size
    if fmt == "pq":
        assert_decoded_once((art.folder / "model.tflite").read_bytes())
    weights = {k: v.astype(np.float32) for k, v in load_file(str(model / "model.safetensors")).items()}
    f = fold(weights)
    enc = item_tables.encode(f.G, f.A, item_prior(f, weights["mlp_user.weight"].mean(0)), fmt, head=head)
    if head:  # the head rows are exact
        top = np.argsort(-item_prior(f, weights["mlp_user.weight"].mean(0)), kind="stable")[:head]
        assert np.abs(enc.decoded()[1][top] - f.A[top]).max() < 1e-5 < np.abs(enc.decoded()[1] - f.A).max()
    folded, prior, _ = reference(model, enc)
    scorer = load_bundle(art.folder)
    for u in (0, 17, 123):
        ug, um = scorer.user(u)
        _, _, scores = scorer.recommend(ug, um)
        want = folded.logits(ug, um, np.arange(folded.n_items))[0]
        assert np.abs(scores - want).max() < 1e-4
        items, first = scorer.retrieve(ug)
        assert np.allclose(first, (folded.G @ ug + prior)[items], atol=1e-4)
        assert len(np.unique(items)) == 100 and first[0] >= first[-1]
        # the two-stage path: score decodes only the candidates' rows, equal to the catalog scores
        staged, staged_scores = scorer.two_stage(ug, um)
        assert np.allclose(staged_scores, scores[staged], atol=1e-5)
        assert np.allclose(scorer.score_items(ug, um, items[:37]), scores[items[:37]], atol=1e-5)


@pytest.mark.parametrize(("n", "head"), [(100, 0), (255, 0), (300, 0), (300, 40)])
def test_product_quantization_packs_two_codes_to_an_int16_word(n, head) -> None:
    table = np.random.default_rng(n).normal(size=(n, 8)).astype(np.float32)
    top = np.arange(head) * (n // head) if head else None
    book = item_tables.product_quantize(table, 4, head=top)
    k = item_tables.centroids(head)
    assert book.words.shape == (n, 2) and book.words.dtype == np.int16 and book.books.shape == (2, 2 * k + 2 * head, 2)
    # the split map lists each pair of centroids the table uses once, then the head rows'
    assert len(book.split) <= min(k * k, 2 * n) + head and book.words.min() >= 0 and book.words.max() < len(book.split)
    if head:
        assert np.abs(book.decode()[top] - table[top]).max() == 0
    # with fewer rows than centroids most rows get their own centroid
    assert np.abs(book.decode() - table).mean() < (0.05 if n < k else 0.5)


def test_compressed_tables_are_smaller_and_int8_precision_keeps_them(tmp_path, model, data) -> None:
    sizes = {}
    for fmt in ("int8", "int4", "pq"):
        art = export(model, data, tmp_path / fmt, precision="int8", item_table=fmt, table_recall=0.0)
        sizes[fmt] = (art.folder / "model.tflite").stat().st_size
        scorer = load_bundle(art.folder)
        ug, um = scorer.user(5)
        _, _, scores = scorer.recommend(ug, um)
        items = scorer.retrieve(ug)[0]
        # score decodes the candidates' rows with the same values recommend reads for the whole catalog
        assert np.abs(scorer.score_items(ug, um, items) - scores[items]).max() < 1e-5
    n = data.n_items
    # per item: int8 8 + 32 + a float32 prior; int4 20 + a one-byte prior; pq 2 + 8 codes + a one-byte prior, and
    # its codebooks and maps
    assert sizes["int8"] - sizes["int4"] > 0.8 * n * (44 - 21)
    weights = {k: v.astype(np.float32) for k, v in load_file(str(model / "model.safetensors")).items()}
    f = fold(weights)
    enc = item_tables.encode(f.G, f.A, item_prior(f, weights["mlp_user.weight"].mean(0)), "pq")
    fixed = enc.gmf.nbytes + enc.mlp.nbytes - n * (2 + 8)
    assert sizes["int4"] - sizes["pq"] > 0.8 * n * (21 - 11) - fixed


def test_auto_keeps_the_smallest_format_that_passes_the_gate(tmp_path, model, data) -> None:
    art = export(model, data, tmp_path / "auto", item_table="auto", table_recall=0.9)
    rec = art.manifest["quantization"]["item_table"]
    assert min(rec["gate"]["recall_at_k"].values()) >= 0.9
    n = art.manifest["n_items"]
    tries = item_tables.choices(type("O", (), {"item_table": "auto"})(), 8, 32, n)
    labels = [t.split(" bytes")[0].rsplit(" ", 1)[0] for t in rec["tried"]]
    assert rec["label"] not in labels and len(set(labels)) == len(labels) <= len(tries) - 1
    assert set(labels) <= {c.label for c in tries}
    for t in rec["tried"]:  # every one tried failed the gate or passed larger than the one kept
        built = int(t.split(" bytes")[0].rsplit(" ", 1)[1].replace(",", ""))
        assert "short of 0.9" in t or ("(passes; larger than" in t and built >= rec["bytes"])
    for c in tries:  # one not built is estimated at least as large as the one kept (estimates leave books out)
        if c.label != rec["label"] and c.label not in labels:
            assert c.bytes_per_item(8, 32, n) * n >= rec["bytes"]


def test_a_table_that_fails_the_gate_writes_nothing_and_says_by_how_much(tmp_path, model, data) -> None:
    out = tmp_path / "fail"
    with pytest.raises(EdgerecError) as e:
        export(model, data, out, item_table="pq", pq_gmf=2, pq_mlp=2, table_recall=1.0)
    msg = str(e.value)
    assert "\n" not in msg and "pq(gmf 2, mlp 2)" in msg and "short of 1.0 by" in msg and "nothing written" in msg
    assert not out.exists()


def test_a_budget_no_format_meets_lists_the_candidates(tmp_path, model, data) -> None:
    out = tmp_path / "budget"
    with pytest.raises(EdgerecError) as e:
        export(model, data, out, item_table="auto", max_bytes=20_000, table_recall=0.0)
    msg = str(e.value)
    assert "\n" not in msg and "within 20,000 bytes" in msg and "over the budget by" in msg
    assert all(label in msg for label in ("pq(gmf 2, mlp 4)", "int4", "int8"))
    assert not out.exists()


def test_the_cli_exits_2_on_a_failing_table(tmp_path, model) -> None:
    import subprocess
    import sys

    out = tmp_path / "cli"
    argv = [sys.executable, "-m", "edgerec.entry", "export", "--model", str(model), "--data", DATA]
    argv += ["--target", "tflite-bundle", "--item-table", "pq", "--pq-subspaces", "2,2", "--table-recall", "1.0"]
    proc = subprocess.run([*argv, "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "short of 1.0 by" in proc.stderr + proc.stdout
    assert not out.exists()


def test_bad_table_options_are_one_line_errors(tmp_path, model, data) -> None:
    with pytest.raises(ConfigError, match="compute int8 reads the int8 item table"):
        export(model, data, tmp_path / "x", precision="int8", item_table="pq", compute="int8")
    for pq_mlp in (5, 6):
        with pytest.raises(EdgerecError, match=f"pq_mlp {pq_mlp} must be an even number .* that divides the MLP"):
            export(model, data, tmp_path / "y", item_table="pq", pq_mlp=pq_mlp)
    with pytest.raises(EdgerecError, match="pq_gmf 1 must be an even number"):
        export(model, data, tmp_path / "y", item_table="pq", pq_gmf=1)
    assert not (tmp_path / "y").exists()


def test_a_format_the_runtime_cannot_run_is_refused(tmp_path, monkeypatch) -> None:
    """Both bundle runtimes run every format (tests/test_web_app.py for LiteRT.js); a runtime listed with fewer (as
    an older one would be) refuses the others in a profile, naming the runtime and what it runs."""
    from edgerec.profiles.schema import load_profile
    from edgerec.runtime import config as runtime_config

    text = (
        "name: {client}-{fmt}\ndescription: d\ndevice: d\nexport:\n  target: tflite-bundle\n  precision: int8\n"
        "  options:\n    item_table: {fmt}\nruntime:\n  delegate: xnnpack\nbench:\n  client: {client}\n"
    )

    def load(client: str, fmt: str):
        path = tmp_path / f"{client}-{fmt}.yaml"
        path.write_text(text.format(fmt=fmt, client=client))
        return load_profile(path)

    for client in ("web", "python"):
        for fmt in (*item_tables.FORMATS, "auto"):
            assert load(client, fmt).export.options.item_table == fmt
    monkeypatch.setitem(runtime_config.TABLE_FORMATS, "LiteRT.js", ("int8",))
    for fmt in ("int4", "pq", "auto"):
        with pytest.raises(ConfigError) as e:
            load("web", fmt)
        msg = str(e.value)
        assert "\n" not in msg and "the LiteRT.js runtime runs the item-table formats int8;" in msg
    assert load("python", "pq").export.options.item_table == "pq"


def test_the_manifest_records_the_gate(tmp_path, model, data) -> None:
    art = export(model, data, tmp_path / "m", item_table="pq", table_recall=0.0)
    manifest = json.loads((art.folder / "manifest.json").read_text())
    gate = manifest["quantization"]["item_table"]["gate"]
    assert set(gate["recall_at_k"]) == {"recommend", "two_stage"} and gate["users"] == 200
