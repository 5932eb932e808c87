"""The Triton model repository (`--target triton`): the server models of server_graph as Triton models.

    REPO/manifest.json, id_maps.json, README.md          (Triton ignores the files at the top)
    REPO/recommend/config.pbtxt                           users -> top_items, top_scores
    REPO/recommend/<version>/model.onnx [+ model.py | model.plan]
    REPO/score/config.pbtxt                               users, items [N] -> scores [N]
    REPO/score/<version>/model.onnx [+ model.py | model.plan]

<version> is the checkpoint's version (1, +1 per `edgerec update`). config.pbtxt is written through Triton's own
protobuf and parsed back against the ONNX file (edgerec.serving.triton_config.check). Backends: python (model.py
runs the ONNX through onnxruntime: the Triton that `pip install nvidia-pytriton` brings has only this backend),
onnxruntime (Triton's native backend, a full Triton), tensorrt_plan (model.plan built from the ONNX on the GPU
host; without TensorRT and a GPU the repository is export-only and build_engines.sh holds the trtexec commands).
"""

from __future__ import annotations

import shlex
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import onnx

from edgerec.exporters import server_graph
from edgerec.exporters.tensorrt_engine import EngineUnavailable, build_engine
from edgerec.io import write_json
from edgerec.model.ncf import NCF
from edgerec.serving import triton_config
from edgerec.serving.config import TritonConfig

ENGINE_SCRIPT = "build_engines.sh"


def shapes(model: str, cfg: TritonConfig) -> dict[str, tuple[tuple[int, ...], ...]]:
    """TensorRT's optimization profile (min, opt, max) per input: 1..max_batch_size users, 1..max_candidates."""
    b, opt = cfg.max_batch_size, max(cfg.preferred_batch_sizes, default=cfg.max_batch_size)
    users = ((1,), (opt,), (b,))
    if model == "recommend":
        return {"users": users}
    n = cfg.max_candidates
    return {"users": users, "items": ((1, 1), (opt, min(n, 100)), (b, n))}


def trtexec_command(model: str, version: int, precision: str, cfg: TritonConfig) -> str:
    prof = shapes(model, cfg)
    arg = {
        key: ",".join(f"{name}:{'x'.join(map(str, s[i]))}" for name, s in prof.items())
        for i, key in enumerate(("min", "opt", "max"))
    }
    flags = {"fp32": [], "fp16": ["--fp16"]}[precision]
    return shlex.join(
        ["trtexec", f"--onnx={model}/{version}/model.onnx", f"--saveEngine={model}/{version}/model.plan", *flags]
        + [f"--{k}Shapes={v}" for k, v in arg.items()]
    )


def feedback_params(cfg: TritonConfig) -> dict[str, Any]:
    return {
        "event_types": ",".join(cfg.event_types),
        "segment_bytes": cfg.segment_mb << 20,
        "segment_seconds": cfg.segment_minutes * 60,
        "max_lag_seconds": cfg.max_lag_s,
    }


def write_feedback(repo: Path, cfg: TritonConfig) -> None:
    """REPO/feedback: config.pbtxt, 1/model.py and 1/edgerec_events.py (the log writer it imports)."""
    here = Path(triton_config.__file__).parent
    folder = repo / triton_config.FEEDBACK / "1"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(here / "feedback_model.py", folder / "model.py")
    shutil.copyfile(here / "events.py", folder / "edgerec_events.py")
    triton_config.no_bytecode(folder)
    triton_config.write(triton_config.FEEDBACK, cfg, feedback_params(cfg), repo / triton_config.FEEDBACK)
    triton_config.check_feedback(repo / triton_config.FEEDBACK / triton_config.CONFIG)


def export(
    model: NCF,
    precision: str,
    out: Path,
    triton: TritonConfig,
    version: int,
    id_maps: dict[str, list] | None = None,
) -> dict[str, Any]:
    """out is REPO/recommend/<version>/model.onnx; writes the whole repository under REPO. Each version folder
    holds its ONNX, model.json (its sizes: the tables grow with updates) and id_maps.json; the configs hold only
    what every version shares, so a new version is a new folder and nothing else changes."""
    repo = out.parents[2]
    graphs = {
        "recommend": server_graph.build(model, precision, triton.k, catalog_scores=False),
        "score": server_graph.build_score(model, precision),
    }
    arch = model.arch
    sizes = {"n_users": arch.n_users, "n_items": arch.n_items, "version": version, "precision": precision,
             "max_candidates": min(triton.max_candidates, arch.n_items)}  # fmt: skip
    params = {"k": triton.k, "max_candidates": triton.max_candidates, "onnx_file": "model.onnx"}
    missing = None
    for name, graph in graphs.items():
        folder = repo / name / str(version)
        folder.mkdir(parents=True, exist_ok=True)
        onnx.save_model(graph, str(folder / "model.onnx"))
        write_json(folder / "model.json", sizes)
        if id_maps is not None:
            write_json(folder / "id_maps.json", id_maps)
        if triton.backend == "python":
            shutil.copyfile(Path(triton_config.__file__).with_name("triton_model.py"), folder / "model.py")
            triton_config.no_bytecode(folder)
        triton_config.write(name, triton, params, repo / name)
        triton_config.check(repo / name / triton_config.CONFIG, folder / "model.onnx")
    write_feedback(repo, triton)
    if triton.backend == "tensorrt_plan":
        commands = [trtexec_command(name, version, precision, triton) for name in graphs]
        (repo / ENGINE_SCRIPT).write_text(
            "#!/bin/sh\n# build the TensorRT engines on the GPU host, in the repository folder\nset -e\n"
            + "\n".join(commands)
            + "\n"
        )
        try:
            for name in graphs:
                folder = repo / name / str(version)
                engine, _ = build_engine(folder / "model.onnx", precision, shapes(name, triton))
                (folder / "model.plan").write_bytes(engine)
        except EngineUnavailable as e:
            missing = f"{e}; run {ENGINE_SCRIPT} on the GPU host"
    return {
        **server_graph.fields(model, triton.k),
        "model_file": f"recommend/{version}/model.onnx",
        "score_file": f"score/{version}/model.onnx",
        "onnx_file": f"recommend/{version}/model.onnx",
        "models": {name: _io(g) for name, g in graphs.items()},
        "triton": {**asdict(triton), "version": version},
        **({"engine_missing": missing} if missing else {}),
    }


def _io(graph: onnx.ModelProto) -> dict[str, list[str]]:
    return {"inputs": [x.name for x in graph.graph.input], "outputs": [x.name for x in graph.graph.output]}


def readme(manifest: dict[str, Any]) -> str:
    t = manifest["triton"]
    native = t["backend"] != "python"
    return f"""# edgerec Triton model repository

NeuMF server models, version {t["version"]}, {manifest["precision"]}, backend `{t["backend"]}` ({t["kind"]}).

- `recommend`: `users` INT64 [1] per request (dense user index, see id_maps.json) -> `top_items` INT64 [{t["k"]}],
  `top_scores` FP32 [{t["k"]}] (logits, best first) over the {manifest["n_items"]}-item catalog.
- `score`: `users` INT64 [1], `items` INT64 [N] (N <= {t["max_candidates"]}) -> `scores` FP32 [N].

Dynamic batching: up to {t["max_batch_size"]} requests per call, preferred {t["preferred_batch_sizes"]}, queue
delay {t["max_queue_delay_us"]} us; {t["instances"]} instance(s) of {t["threads"]} thread(s).

Serve it: `edgerec serve {{this folder}}` (edgerec checks every file against manifest.json first, then starts
Triton on 127.0.0.1, HTTP 8000, gRPC 8001; Ctrl-C stops it).{
        " This repository uses a native backend: serve it with a full Triton (NVIDIA's container or package), "
        "`tritonserver --model-repository=$PWD`"
        if native
        else ""
    }{" after building the engines with build_engines.sh." if t["backend"] == "tensorrt_plan" else ""}
"""
