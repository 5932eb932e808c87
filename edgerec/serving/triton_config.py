"""config.pbtxt of the repository's models, written through Triton's own protobuf (tritonclient's
model_config_pb2 + google.protobuf.text_format) and validated by parsing it back against the model file.

Each model takes one user per request (`users` dims [1], reshaped to the model's [B] batch of users): Triton's
dynamic batcher stacks up to max_batch_size requests into one call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgerec.errors import EdgerecError
from edgerec.serving.config import TritonConfig

MODELS = ("recommend", "score")  # the server models: an ONNX file per version
FEEDBACK = "feedback"  # the python-backend event logger (one version, 1, whatever the model's version)
ROUTER = "experiment"  # the python-backend experiment router, present while an experiment runs (version 1)
CONFIG = "config.pbtxt"
MODEL_FILE = {"python": "model.py", "onnxruntime": "model.onnx", "tensorrt_plan": "model.plan"}
ONNX_TYPES = {"tensor(int64)": "TYPE_INT64", "tensor(float)": "TYPE_FP32"}


def no_bytecode(folder: Path) -> None:
    """An empty file named __pycache__ in a python-backend model's folder: Python cannot write its bytecode cache
    there (the backend's stub runs isolated, so PYTHONDONTWRITEBYTECODE does not reach it). A cache written on the
    first load changes the folder, and a polling Triton reloads the model: the feedback model's reload then fails
    on its own event log's lock, at every poll."""
    (folder / "__pycache__").write_bytes(b"")


def pb() -> Any:
    """Triton's model_config_pb2 (from tritonclient), or a one-line error saying what to install."""
    try:
        from tritonclient.grpc import model_config_pb2
    except (ImportError, RuntimeError):
        raise EdgerecError(
            "writing a Triton repository needs tritonclient's protobuf: pip install 'tritonclient[grpc]'"
        ) from None
    return model_config_pb2


def io_spec(model: str, cfg: TritonConfig) -> tuple[list[tuple[str, str, list[int]]], list[tuple[str, str, list[int]]]]:
    """(inputs, outputs) of a model as (name, Triton dtype, per-request dims)."""
    if model == FEEDBACK:  # no batching: dims are the request's own; item, shown and version are optional
        text = [("user", "TYPE_STRING", [1]), ("event", "TYPE_STRING", [1]), ("timestamp", "TYPE_INT64", [1])]
        optional = [("item", "TYPE_STRING", [1]), ("shown", "TYPE_STRING", [-1]), ("version", "TYPE_STRING", [1])]
        return [*text, *optional], [("seq", "TYPE_INT64", [1])]
    if model == ROUTER:  # recommend's answer, the version that produced it and the items' original ids
        top = [("top_items", "TYPE_INT64", [cfg.k]), ("top_scores", "TYPE_FP32", [cfg.k])]
        answer = [*top, ("version", "TYPE_INT64", [1]), ("item_ids", "TYPE_STRING", [cfg.k])]
        return [("users", "TYPE_INT64", [1])], answer
    if model == "recommend":
        top = [("top_items", "TYPE_INT64", [cfg.k]), ("top_scores", "TYPE_FP32", [cfg.k])]
        return [("users", "TYPE_INT64", [1])], top
    return [("users", "TYPE_INT64", [1]), ("items", "TYPE_INT64", [-1])], [("scores", "TYPE_FP32", [-1])]


FEEDBACK_OPTIONAL = ("item", "shown", "version")


def build_router(cfg: TritonConfig, params: dict[str, Any]) -> Any:
    """The experiment router: python backend, batched like recommend (one BLS call per arm and batch), one version;
    `params` are the experiment's (control and candidate versions, salt, traffic, mode)."""
    mc = pb()
    c = mc.ModelConfig(name=ROUTER, backend="python", max_batch_size=cfg.max_batch_size)
    c.default_model_filename = "model.py"
    inputs, outputs = io_spec(ROUTER, cfg)
    for name, dtype, dims in inputs:
        c.input.add(name=name, data_type=mc.DataType.Value(dtype), dims=dims)
    for name, dtype, dims in outputs:
        c.output.add(name=name, data_type=mc.DataType.Value(dtype), dims=dims)
    c.dynamic_batching.preferred_batch_size.extend(cfg.preferred_batch_sizes)
    c.dynamic_batching.max_queue_delay_microseconds = cfg.max_queue_delay_us
    c.instance_group.add(kind=mc.ModelInstanceGroup.Kind.Value("KIND_CPU"), count=1)
    c.version_policy.specific.versions.append(1)
    for key, value in {**params, "k": cfg.k}.items():
        c.parameters[key].string_value = str(value)
    return c


def check_router(path: Path) -> Any:
    """The router's config parsed back: its name, inputs and outputs as experiment_model.py reads them."""
    c = parse(path)
    k = int(c.parameters["k"].string_value) if "k" in c.parameters else 0
    inputs, outputs = io_spec(ROUTER, TritonConfig(k=max(k, 1)))
    declared = [(x.name, pb().DataType.Name(x.data_type), list(x.dims)) for x in (*c.input, *c.output)]
    needed = ("control", "candidate", "salt", "traffic", "mode")
    if c.name != ROUTER or c.backend != "python" or declared != [*inputs, *outputs] or k < 1:
        names = [o[0] for o in outputs]
        raise EdgerecError(f"{path}: not the experiment router's config (python backend, outputs {names})")
    missing = [p for p in needed if p not in c.parameters]
    if missing:
        raise EdgerecError(f"{path}: the experiment router's config has no {missing[0]} parameter")
    return c


def build_feedback(params: dict[str, Any]) -> Any:
    """The feedback model: python backend, one instance (the log's single writer), no batching."""
    mc = pb()
    c = mc.ModelConfig(name=FEEDBACK, backend="python", max_batch_size=0, default_model_filename="model.py")
    inputs, outputs = io_spec(FEEDBACK, TritonConfig())
    for name, dtype, dims in inputs:
        optional = name in FEEDBACK_OPTIONAL
        c.input.add(name=name, data_type=mc.DataType.Value(dtype), dims=dims, optional=optional)
    for name, dtype, dims in outputs:
        c.output.add(name=name, data_type=mc.DataType.Value(dtype), dims=dims)
    c.instance_group.add(kind=mc.ModelInstanceGroup.Kind.Value("KIND_CPU"), count=1)
    c.version_policy.specific.versions.append(1)
    for key, value in params.items():
        c.parameters[key].string_value = str(value)
    return c


def build(model: str, cfg: TritonConfig, params: dict[str, Any]) -> Any:
    """The ModelConfig message of `model` ("recommend", "score", "feedback" or "experiment"); params go to
    `parameters`."""
    if model == FEEDBACK:
        return build_feedback(params)
    if model == ROUTER:
        return build_router(cfg, params)
    mc = pb()
    c = mc.ModelConfig(name=model, max_batch_size=cfg.max_batch_size)
    if cfg.backend == "tensorrt_plan":
        c.platform = "tensorrt_plan"
    else:
        c.backend = cfg.backend
    c.default_model_filename = MODEL_FILE[cfg.backend]
    inputs, outputs = io_spec(model, cfg)
    for name, dtype, dims in inputs:
        x = c.input.add(name=name, data_type=mc.DataType.Value(dtype), dims=dims)
        if name == "users":
            x.reshape.SetInParent()  # [1] per request -> the model's [B] (reshape to a scalar per request)
    for name, dtype, dims in outputs:
        c.output.add(name=name, data_type=mc.DataType.Value(dtype), dims=dims)
    c.dynamic_batching.preferred_batch_size.extend(cfg.preferred_batch_sizes)
    c.dynamic_batching.max_queue_delay_microseconds = cfg.max_queue_delay_us
    kind = mc.ModelInstanceGroup.Kind.Value("KIND_GPU" if cfg.kind == "gpu" else "KIND_CPU")
    c.instance_group.add(kind=kind, count=cfg.instances)
    c.version_policy.latest.num_versions = cfg.served_versions
    if cfg.backend == "onnxruntime":
        params = {**params, "intra_op_thread_count": cfg.threads, "inter_op_thread_count": 1}
    for key, value in {**params, "threads": cfg.threads}.items():
        c.parameters[key].string_value = str(value)
    return c


def write(model: str, cfg: TritonConfig, params: dict[str, Any], folder: Path) -> Path:
    from google.protobuf import text_format

    path = folder / CONFIG
    path.write_text(text_format.MessageToString(build(model, cfg, params)))
    return path


def parse(path: Path) -> Any:
    """The ModelConfig in config.pbtxt (text_format refuses unknown fields and enum values)."""
    from google.protobuf import text_format

    try:
        return text_format.Parse(path.read_text(), pb().ModelConfig())
    except text_format.ParseError as e:
        raise EdgerecError(f"{path}: not a Triton model config ({e})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise EdgerecError(f"{path}: unreadable ({e})") from None


def onnx_io(path: Path) -> tuple[dict[str, tuple[str, list]], dict[str, tuple[str, list]]]:
    """{name: (Triton dtype, shape)} of an ONNX file's inputs and outputs, read by onnxruntime."""
    import onnxruntime as ort

    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types for unreadable or invalid models
        raise EdgerecError(f"{path}: onnxruntime cannot load it ({str(e).splitlines()[0]})") from None

    def table(args: list) -> dict[str, tuple[str, list]]:
        return {a.name: (ONNX_TYPES.get(a.type, a.type), list(a.shape)) for a in args}

    return table(sess.get_inputs()), table(sess.get_outputs())


def check_feedback(path: Path) -> Any:
    """The feedback model's config parsed back: its inputs and outputs as the feedback model.py reads them (a
    repository written before events carried a version has no `version` input)."""
    c = parse(path)
    inputs, outputs = io_spec(FEEDBACK, TritonConfig())
    declared = [(x.name, pb().DataType.Name(x.data_type), list(x.dims)) for x in (*c.input, *c.output)]
    known = ([*inputs, *outputs], [*inputs[:-1], *outputs])
    if c.name != FEEDBACK or c.backend != "python" or declared not in known or c.max_batch_size != 0:
        raise EdgerecError(f"{path}: not the feedback model's config (python backend, inputs {[i[0] for i in inputs]})")
    if not c.instance_group or c.instance_group[0].count != 1:
        raise EdgerecError(f"{path}: the feedback model must have exactly one instance (the event log's one writer)")
    return c


def check(path: Path, onnx_path: Path) -> Any:
    """Parse config.pbtxt back and check it against the model file: the name, batching, instances, a version
    policy, and every input / output's name, dtype and dims (the batch dimension + dims, or its reshape) equal to
    the ONNX graph's. Returns the parsed ModelConfig."""
    c = parse(path)
    where = f"{path}:"
    problems = []
    if c.name != path.parent.name:
        problems.append(f"name {c.name!r} is not the model folder's {path.parent.name!r}")
    if c.max_batch_size < 1:
        problems.append("max_batch_size must be >= 1 (the models batch users)")
    if not c.HasField("dynamic_batching"):
        problems.append("no dynamic_batching")
    elif any(b > c.max_batch_size for b in c.dynamic_batching.preferred_batch_size):
        problems.append(f"a preferred_batch_size exceeds max_batch_size {c.max_batch_size}")
    if not c.instance_group or any(g.count < 1 for g in c.instance_group):
        problems.append("no instance_group with a count >= 1")
    if not c.HasField("version_policy"):
        problems.append("no version_policy")
    if not (c.backend or c.platform):
        problems.append("no backend or platform")
    inputs, outputs = onnx_io(onnx_path)
    for kind, declared, actual in (("input", c.input, inputs), ("output", c.output, outputs)):
        names = [x.name for x in declared]
        if sorted(names) != sorted(actual) and not (kind == "output" and set(names) <= set(actual)):
            problems.append(f"{kind}s {names} are not the model's {sorted(actual)}")
            continue
        for x in declared:
            dtype, shape = actual[x.name]
            if pb().DataType.Name(x.data_type) != dtype:
                problems.append(f"{kind} {x.name}: {pb().DataType.Name(x.data_type)} but the model has {dtype}")
            dims = list(x.reshape.shape) if x.HasField("reshape") else list(x.dims)
            if len(shape) != 1 + len(dims) or any(
                d != -1 and isinstance(s, int) and s != d for d, s in zip(dims, shape[1:], strict=False)
            ):
                problems.append(f"{kind} {x.name}: dims [batch, {dims}] do not match the model's {shape}")
    if problems:
        raise EdgerecError(f"{where} {problems[0]}")
    return c
