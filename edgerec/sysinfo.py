"""Which machine and which tools produced a number: every benchmark table and every saved file names them."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

# the CPU features an int8 or float kernel's speed turns on (XNNPACK picks its kernels by them): x86 vector widths
# and 8-bit dot products, Arm's dot-product and int8 matrix instructions
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm", "sve")


def machine() -> str:
    """The CPU (model name, cores, which of ISA_FLAGS it has) and torch's version and threads when torch is in use."""
    fields: dict[str, str] = {}  # the first processor's lines of /proc/cpuinfo
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    cpu = fields.get("model name") or platform.processor() or platform.machine()
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    text = f"{cpu}, {os.cpu_count()} cores"
    if flags:
        text += " (" + " ".join(f for f in ISA_FLAGS if f in flags) + ")"
    torch = sys.modules.get("torch")  # reported when in use; never imported here (runtimes run without it)
    if torch is not None:
        n = torch.get_num_threads()
        text += f", torch {torch.__version__}, {n} thread{'s' if n != 1 else ''}"
    return text


TOOLS = ("edgerec", "numpy", "torch", "onnx", "onnxruntime", "litert-torch", "litert-quantizer", "ai-edge-litert")


def versions(tools: tuple[str, ...] = TOOLS) -> dict[str, str]:
    """{package: installed version} of the tools that are installed, plus the Python version."""
    from importlib import metadata

    out = {}
    for tool in tools:
        try:
            out[tool] = metadata.version(tool)
        except metadata.PackageNotFoundError:
            continue
    return {**out, "python": platform.python_version()}


def provenance(argv: list[str] | None = None) -> str:
    """ "`command` at commit <sha>[ with uncommitted changes]" (edgerec's git checkout; an installed edgerec names
    its version instead): what a results file says produced it. argv defaults to this process's command line."""
    import shlex
    import subprocess

    import edgerec

    argv = sys.argv if argv is None else argv
    script = bool(argv) and argv[0].endswith(".py")
    command = ("python " if script else "") + shlex.join(argv)
    here = Path(argv[0]).resolve().parent if script else Path(edgerec.__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=here, capture_output=True, text=True)
        code = ["--", ":/edgerec", ":/benchmarks/*.py", ":/pyproject.toml"]  # not the results being written
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", *code], cwd=here,
                               capture_output=True, text=True)  # fmt: skip
    except OSError:
        sha = dirty = None
    if sha is None or sha.returncode != 0:
        return f"`{command}` with edgerec {edgerec.__version__} (not a git checkout)"
    commit = sha.stdout.strip() + (" with uncommitted changes" if dirty and dirty.stdout.strip() else "")
    return f"`{command}` at commit {commit}"


def free_cores() -> int:
    """The cores other work is not using, by the 1-minute load average (at least 1). PyTorch's threads wait on each
    other when one of them shares a core with another job: on the 2-core VM a training run with 2 threads beside a
    busy process took several times longer than with 1 (benchmarks/results/training_speed.md)."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        busy = os.getloadavg()[0]
    except OSError:
        return cores
    return max(1, min(cores, int(cores - busy + 0.5)))
