"""Target profiles: YAML files validated against this schema (unknown keys rejected, every field described).

The shipped profiles travel inside the package (edgerec/profiles/shipped/, which the checkout's top-level
export_profiles/ links to) and are read with importlib.resources, so an installed wheel finds them.

A profile says what device an artifact is for and what it must achieve there: target, runtime and its version
range, precision, batch buckets, threads and delegate, compression, tolerances against the fp32 source, and
budgets (bytes, latency). `edgerec export --profile NAME` runs it; `edgerec bench --profiles DIR` compares them.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edgerec.compression.config import DEFAULT_OBSERVER
from edgerec.config import validation_message
from edgerec.errors import EdgerecError, shown
from edgerec.gates import ParityBound
from edgerec.serving.config import TritonConfig
from edgerec.targets import TARGETS


def shipped_dir() -> Path:
    """The folder of the profiles installed with edgerec."""
    return Path(str(resources.files("edgerec.profiles").joinpath("shipped")))


def shipped_names() -> list[str]:
    return sorted(p.stem for p in shipped_dir().glob("*.yaml"))


DELEGATES = {
    "tflite": ("xnnpack", "none"),
    "tflite-bundle": ("xnnpack",),
    "onnx": ("cpu",),
    "tensorrt": ("gpu",),
    "triton": ("cpu", "gpu"),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Runtime(_Strict):
    package: str = Field(description="runtime package that runs the artifact on the device, e.g. ai-edge-litert")
    version: str = Field(">=0", description="PEP 440 version range of that package the device has, e.g. '>=2.1'")
    threads: int = Field(1, ge=1, le=256, description="runtime threads (latency is measured with this many)")
    delegate: str = Field(description="tflite: xnnpack | none; onnx: cpu; tensorrt: gpu")


class Compression(_Strict):
    prune: float = Field(0.0, ge=0.0, lt=1.0, description="structured pruning ratio of every component (0 = off)")
    distill: bool = Field(False, description="distil from the source model after pruning (recovery fine-tuning)")
    prune_steps: int = Field(
        1, ge=1, le=10, description="reach the pruning ratio in this many steps, distilling after each"
    )
    distill_epochs: int = Field(8, ge=1, le=200, description="distillation epochs (early stopping)")
    rank_k: int = Field(0, ge=0, le=1000, description="ranking distillation over the teacher's top-K (0 = off)")
    observer: Literal["minmax", "percentile", "entropy"] = Field(
        DEFAULT_OBSERVER, description="int8 calibration observer (ONNX / TensorRT; TFLite uses ai-edge-quantizer's)"
    )
    calibration_size: int = Field(20_000, ge=100, le=10_000_000, description="calibration (user, item) pairs")


class Budget(_Strict):
    bytes: int | None = Field(None, ge=1, description="largest model file in bytes (null = no budget)")
    p50_ms: float | None = Field(None, gt=0, description="largest median latency at `batch`, milliseconds")
    p99_ms: float | None = Field(None, gt=0, description="largest 99th-percentile latency at `batch`, milliseconds")
    batch: int = Field(
        0, ge=0, description="batch the latency budget applies to; 0 = one user vs the whole catalog, top-10"
    )

    @property
    def latency_key(self) -> str:
        """The key of the bench record's "latency_ms" that this budget is checked against."""
        return "catalog_top10" if self.batch == 0 else str(self.batch)


class Output(_Strict):
    folder: str = Field("{name}", description="artifact folder name under `bench --profiles --out`; {name} = profile")
    bench_file: str = Field("bench.json", description="bench record written next to the artifact")


class Profile(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", description="profile name (file name without .yaml)")
    description: str = Field(description="what the target device is")
    device: str = Field(description="the device class, e.g. 'Android phone, ARM64 big core'")
    target: Literal["onnx", "tensorrt", "tflite", "tflite-bundle", "triton"] = Field(description="export target")
    precision: str = Field(description="one of the target's precisions")
    runtime: Runtime
    buckets: list[int] = Field([1, 1000, 0], min_length=1, description="batch sizes; 0 = catalog size")
    candidates: int = Field(
        0,
        ge=0,
        le=1_000_000,
        description="tflite-bundle: length of the `score` signature's candidate list (0 = recommend only)",
    )
    explain: bool = Field(
        False, description="tflite-bundle: ship the folded item side (fp16) for explanations and on-device fold-in"
    )
    triton: TritonConfig = Field(
        TritonConfig(),
        description="triton: backend (python | onnxruntime | tensorrt_plan), kind (cpu | gpu), instances, threads, "
        "max_batch_size, preferred_batch_sizes, max_queue_delay_us, k, max_candidates, served_versions",
    )
    compression: Compression = Compression()
    tolerance: ParityBound = Field(ParityBound(), description="the artifact's parity bound against the fp32 source")
    budget: Budget = Budget()
    output: Output = Output()


def load_profile(ref: str | Path) -> Profile:
    """A profile by path or by the name of a shipped one (see shipped_names())."""
    import yaml

    path = Path(ref)
    if not path.suffix and not path.exists():
        path = shipped_dir() / f"{ref}.yaml"
    if not path.is_file():
        raise EdgerecError(f"{ref}: no such profile file or name (shipped profiles: {', '.join(shipped_names())})")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise EdgerecError(f"{path}:{where} malformed YAML ({getattr(e, 'problem', None) or e})") from None
    if not isinstance(data, dict):
        raise EdgerecError(f"{path}: a profile is a YAML mapping of fields; got {type(data).__name__}")
    keys = [k for k in data if not isinstance(k, str)]
    if keys:  # `? x`, `1: 2`: YAML keys of other types would reach Profile(**data) as keyword names
        raise EdgerecError(f"{path}: field names must be text; got {shown(keys[0])}")
    try:
        profile = Profile(**data)
    except ValidationError as e:
        raise EdgerecError(f"{path}: {validation_message(e)}") from None
    t = TARGETS[profile.target]
    for field, check in (
        ("precision", lambda: t.check_precision(profile.precision)),
        ("runtime.package", lambda: t.check_runtime(profile.runtime.package)),
    ):
        try:
            check()
        except EdgerecError as e:
            raise EdgerecError(f"{path}: field `{field}`: {e}") from None
    if profile.runtime.delegate not in DELEGATES[profile.target]:
        allowed = ", ".join(DELEGATES[profile.target])
        raise EdgerecError(
            f"{path}: field `runtime.delegate` must be one of {allowed} for {profile.target}; "
            f"got {profile.runtime.delegate!r}"
        )
    if profile.triton != TritonConfig() and profile.target != "triton":
        raise EdgerecError(f"{path}: field `triton` applies to target triton only")
    if profile.target == "triton" and profile.runtime.delegate != profile.triton.kind:
        raise EdgerecError(
            f"{path}: field `runtime.delegate` ({profile.runtime.delegate}) must equal `triton.kind` "
            f"({profile.triton.kind})"
        )
    if any(b < 0 for b in profile.buckets):
        raise EdgerecError(
            f"{path}: field `buckets` must be batch sizes >= 0 (0 = catalog size); got {profile.buckets}"
        )
    if profile.name != path.stem:
        raise EdgerecError(f"{path}: field `name` must match the file name ({path.stem!r}); got {profile.name!r}")
    return profile


def load_profiles(folder: str | Path) -> list[Profile]:
    paths = sorted(Path(folder).glob("*.yaml"))
    if not paths:
        raise EdgerecError(f"{folder}: no *.yaml profiles")
    return [load_profile(p) for p in paths]


def runtime_version_ok(profile: Profile) -> tuple[bool, str]:
    """(whether the installed runtime package satisfies the profile's version range, what is installed)."""
    from importlib import metadata

    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        spec = SpecifierSet(profile.runtime.version)
    except InvalidSpecifier:
        raise EdgerecError(
            f"profile {profile.name}: runtime.version {profile.runtime.version!r} is not a version range"
        ) from None
    try:
        installed = metadata.version(profile.runtime.package)
    except metadata.PackageNotFoundError:
        return False, "not installed"
    return spec.contains(installed, prereleases=True), installed
