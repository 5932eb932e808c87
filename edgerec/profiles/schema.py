"""Target profiles: the step configs themselves (ExportConfig, CompressConfig, TrainConfig, BenchConfig), plus what is
only the profile's: its name, the device, the runtime's version range and delegate, budgets and output names.

A YAML profile is validated section by section with the same configs and the same one-line ConfigError as flags:
`export: {precision: int4}` in a profile and `--precision int4` on the command line say the same thing.

The shipped profiles travel inside the package (edgerec/profiles/shipped/, which the checkout's top-level
export_profiles/ links to) and are read with importlib.resources, so an installed wheel finds them.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from edgerec.benchmarking.config import BenchConfig
from edgerec.compression.config import CompressConfig
from edgerec.config import config
from edgerec.errors import ConfigError, EdgerecError, shown
from edgerec.exporters.config import ExportConfig
from edgerec.model.config import TrainConfig
from edgerec.runtime.config import check_table_format
from edgerec.targets import target


def shipped_dir() -> Path:
    """The folder of the profiles installed with edgerec."""
    return Path(str(resources.files("edgerec.profiles").joinpath("shipped")))


def shipped_names() -> list[str]:
    return sorted(p.stem for p in shipped_dir().glob("*.yaml"))


@config
class DeviceRuntime:
    """The device's runtime: the package is `export.runtime`; this says which versions and which delegate."""

    version: str = Field(">=0", description="PEP 440 version range of the runtime package the device has, e.g. '>=2.1'")
    delegate: str = Field("cpu", description="the target's delegates: tflite xnnpack | none; onnx cpu; tensorrt gpu")


@config
class Budget:
    bytes: Annotated[int, Field(ge=1)] | None = Field(
        None, description="largest model file in bytes; with bench.client web, what the page downloads (null = none)"
    )
    p50_ms: Annotated[float, Field(gt=0)] | None = Field(None, description="largest median latency at `batch`, ms")
    p99_ms: Annotated[float, Field(gt=0)] | None = Field(None, description="largest 99th-percentile latency, ms")
    batch: Annotated[int, Field(ge=0)] = Field(
        0, description="batch the latency budget is for; 0 = one user vs the catalog"
    )

    @property
    def latency_key(self) -> str:
        """The key of the bench record's "latency_ms" that this budget is checked against."""
        return "catalog_top10" if self.batch == 0 else str(self.batch)

    def failures(self, record: dict[str, Any]) -> list[str]:
        """One line per budget the bench record exceeds."""
        lat = record["latency_ms"].get(self.latency_key)
        out = []
        if self.bytes is not None and record["bytes"] > self.bytes:
            out.append(f"bytes {record['bytes']:,} > budget {self.bytes:,}")
        for name, limit in (("p50", self.p50_ms), ("p99", self.p99_ms)):
            if limit is not None and lat is not None and lat[name] > limit:
                out.append(f"{name} {lat[name]:.3f} ms > budget {limit} ms at batch {self.latency_key}")
        return out


@config
class Output:
    folder: str = Field("{name}", description="artifact folder name under `compare --out`; {name} = the profile's")
    bench_file: str = Field("bench.json", description="the run's record, written next to the artifact")


@config
class Profile:
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")] = Field(description="the file name without .yaml")
    description: str = Field(description="what the target device is")
    device: str = Field(description="the device class, e.g. 'Android phone, ARM64 big core'")
    export: ExportConfig = Field(description="the export: target, precision, runtime package, options, tolerance")
    runtime: DeviceRuntime = Field(DeviceRuntime(), description="the device runtime's version range and delegate")
    train: TrainConfig = Field(TrainConfig(), description="training, when no model is given")
    compress: CompressConfig | None = Field(None, description="compression before the export (null = none)")
    bench: BenchConfig = Field(BenchConfig(), description="latency measurement in the target runtime")
    budget: Budget = Budget()
    output: Output = Output()

    def __post_init__(self) -> None:
        t = target(self.export.target)
        if self.runtime.delegate not in t.delegates:
            raise ConfigError(
                f"Profile: field `runtime.delegate` must be one of {', '.join(t.delegates)} for {t.name}; "
                f"got {shown(self.runtime.delegate)}"
            )
        if self.train.objective != "implicit":
            raise ConfigError(
                "Profile: field `train.objective` must be implicit: a profile exports, and a rating model is not "
                "exported (its output is a predicted rating, not an implicit-feedback score)"
            )
        table = getattr(self.export.options, "item_table", None)
        if table is not None:
            runtime = "LiteRT.js" if self.bench.client == "web" else self.export.resolved_runtime
            try:
                check_table_format(table, runtime)
            except ConfigError as e:
                raise ConfigError(f"Profile: {e}") from None
        kind = getattr(self.export.options, "kind", None)
        if t.name == "triton" and self.runtime.delegate != kind:
            raise ConfigError(
                f"Profile: field `runtime.delegate` ({self.runtime.delegate}) must equal the triton kind ({kind})"
            )

    @property
    def target(self) -> str:
        return self.export.target

    def to_json(self) -> dict[str, Any]:
        """The profile as plain JSON / YAML values (profile_from reads it back)."""
        import json
        from dataclasses import asdict

        return json.loads(json.dumps(asdict(self)))

    @property
    def precision(self) -> str:
        return self.export.precision

    @property
    def package(self) -> str:
        """The runtime package the profile's device runs."""
        return self.export.resolved_runtime


SECTIONS: dict[str, type] = {
    "export": ExportConfig,
    "runtime": DeviceRuntime,
    "train": TrainConfig,
    "compress": CompressConfig,
    "bench": BenchConfig,
    "budget": Budget,
    "output": Output,
}


def profile_from(data: dict[str, Any], where: str) -> Profile:
    """A Profile from a YAML mapping, each section built by its own config (the errors flags give too)."""
    values = dict(data)
    try:
        for key, cls in SECTIONS.items():
            section = values.get(key)
            if isinstance(section, dict):
                names = [k for k in section if not isinstance(k, str)]
                if names:
                    raise EdgerecError(f"{where}: field `{key}`: field names must be text; got {shown(names[0])}")
                values[key] = cls(**section)
        return Profile(**values)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


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
    profile = profile_from(data, str(path))
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
        installed = metadata.version(profile.package)
    except metadata.PackageNotFoundError:
        return False, "not installed"
    return spec.contains(installed, prereleases=True), installed
