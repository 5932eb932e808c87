"""The TensorRT export: the TensorRT-ready ONNX (edgerec.exporters.onnx_graph; int8 as explicit Q/DQ), then an engine
built with the TensorRT 10 Python API, one optimization profile per batch bucket.

UNVERIFIED HERE: TensorRT cannot be installed on the machines edgerec is developed on and they have no GPU, so
build_engine has never run. It follows the documented API (Builder, OnnxParser, BuilderConfig flags,
optimization profiles, timing cache). Where TensorRT or a GPU is missing, the export still writes the ONNX (verified
in onnxruntime) and trtexec.sh, the equivalent command to run on the GPU host, and then fails with one line saying
what is missing.
"""

from __future__ import annotations

import hashlib
import shlex
from pathlib import Path

from edgerec.compression.quantize import QuantSpec
from edgerec.errors import EdgerecError
from edgerec.io import cache_root, write_bytes
from edgerec.model.ncf import NCF

ONNX_FILE, TRTEXEC_FILE = "model.onnx", "trtexec.sh"


class EngineUnavailable(EdgerecError):
    """TensorRT or a GPU is missing: the ONNX and trtexec.sh were written, the engine was not."""


def trtexec_command(precision: str, buckets: list[int], engine: str = "model.engine") -> str:
    """trtexec builds one profile per invocation: this one spans 1..largest bucket, optimized for the largest."""
    big = max(buckets)
    shapes = {k: ",".join(f"{n}:{b}" for n in ("users", "items")) for k, b in (("min", 1), ("opt", big), ("max", big))}
    flags = {"fp32": [], "fp16": ["--fp16"], "int8": ["--int8", "--fp16"]}[precision]
    return shlex.join(
        [
            "trtexec",
            f"--onnx={ONNX_FILE}",
            f"--saveEngine={engine}",
            *flags,
            f"--minShapes={shapes['min']}",
            f"--optShapes={shapes['opt']}",
            f"--maxShapes={shapes['max']}",
            "--timingCacheFile=timing.cache",
        ]
    )


def cache_dir() -> Path:
    return cache_root() / "tensorrt"


def gpu_identity() -> tuple[str, str]:
    """(GPU name, compute capability) of device 0, or EngineUnavailable."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        raise EngineUnavailable("no CUDA Python bindings (pip install cuda-python) to find a GPU") from None
    err, count = cudart.cudaGetDeviceCount()
    if int(err) != 0 or count < 1:
        raise EngineUnavailable("no CUDA GPU on this machine")
    err, prop = cudart.cudaGetDeviceProperties(0)
    name = prop.name.decode() if isinstance(prop.name, bytes) else str(prop.name)
    return name.strip("\x00 "), f"{prop.major}.{prop.minor}"


Shapes = dict[str, tuple[tuple[int, ...], ...]]  # input name -> (min, opt, max) shape of one optimization profile


def bucket_profiles(buckets: list[int]) -> list[Shapes]:
    """Profile k serves bucket k exactly (the pair scorer pads requests to a bucket)."""
    return [{name: ((b,), (b,), (b,)) for name in ("users", "items")} for b in sorted(buckets)]


def build_engine(onnx_path: Path, precision: str, profiles: Shapes | list[Shapes]) -> tuple[bytes, dict]:
    """Serialized engine plus its cache record. Engines are cached under a key of the ONNX sha256, GPU name,
    compute capability, TensorRT version, precision and profiles: an engine is not portable across those."""
    profiles = [profiles] if isinstance(profiles, dict) else profiles
    try:
        import tensorrt as trt
    except ImportError:
        raise EngineUnavailable("TensorRT is not installed (pip install 'edgerec[tensorrt]' on the GPU host)") from None
    gpu, cc = gpu_identity()
    onnx_bytes = onnx_path.read_bytes()
    key_src = f"{hashlib.sha256(onnx_bytes).hexdigest()}|{gpu}|{cc}|{trt.__version__}|{precision}|{profiles}"
    key = hashlib.sha256(key_src.encode()).hexdigest()[:32]
    cached = cache_dir() / f"{key}.engine"
    record = {"cache_key": key, "gpu": gpu, "compute_capability": cc, "tensorrt": trt.__version__}
    if cached.is_file():
        return cached.read_bytes(), {**record, "cache": "hit"}

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        raise EdgerecError(f"TensorRT cannot parse {onnx_path}: {parser.get_error(0).desc()}")
    config = builder.create_builder_config()
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)  # explicit quantization: the scales come from the Q/DQ nodes
    for shapes in profiles:
        profile = builder.create_optimization_profile()
        for name, (lo, opt, hi) in shapes.items():
            profile.set_shape(name, lo, opt, hi)
        config.add_optimization_profile(profile)
    timing_path = cache_dir() / f"timing-{gpu.replace(' ', '_')}-{cc}-{trt.__version__}.cache"
    timing = config.create_timing_cache(timing_path.read_bytes() if timing_path.is_file() else b"")
    config.set_timing_cache(timing, ignore_mismatch=False)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise EdgerecError(f"TensorRT failed to build an engine from {onnx_path} (see the log above)")
    cache_dir().mkdir(parents=True, exist_ok=True)
    for path, data in ((timing_path, bytes(config.get_timing_cache().serialize())), (cached, bytes(engine))):
        write_bytes(path, data)
    return bytes(engine), {**record, "cache": "miss"}


def export(model: NCF, precision: str, out: Path, *, buckets: list[int], spec: QuantSpec | None = None) -> dict:
    """Write the TensorRT-ready ONNX and trtexec.sh next to out, then the engine at out (or EngineUnavailable)."""
    from edgerec.exporters import onnx_graph

    folder = out.parent
    onnx_graph.export(model, precision, folder / ONNX_FILE, spec=spec)
    (folder / TRTEXEC_FILE).write_text(
        "#!/bin/sh\n# build the engine on the GPU host\n" + trtexec_command(precision, buckets) + "\n"
    )
    fields = {
        "buckets": buckets,
        "inputs": ["users", "items"],
        "output": "scores",
        "onnx_file": ONNX_FILE,
        "trtexec": trtexec_command(precision, buckets),
    }
    engine, record = build_engine(folder / ONNX_FILE, precision, bucket_profiles(buckets))
    out.write_bytes(engine)
    return {**fields, "engine": record}
