"""An emulated ARM64 Debian root (qemu-user + binfmt_misc + debootstrap) in which edgerec's own wheel runs artifacts.

The root is built once and cached (`cache_root()/arm64-root`): debootstrap's two stages (the second in a chroot
through qemu-aarch64-static), python3 + venv, numpy and ai-edge-litert from their aarch64 wheels. It is built in a
temporary sibling folder and renamed into place only when complete (a marker file records what it holds), so a
killed build leaves nothing that looks usable; a cached root without its marker or its Python is rebuilt.
Traps handled (DESIGN.md): the host's extra CA certificates are installed in the root for pip; pip runs without
PIP_FIND_LINKS; the host's /sys is not mounted (LiteRT's CPU detection reads it and crashes under qemu) but plain files
`sys/devices/system/cpu/{possible,present}` exist (without them XNNPACK is silently off). Emulation is 50-300x
slower than the host: correctness only, never latency.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from edgerec.errors import EdgerecError
from edgerec.io import cache_root

SUITE = "bookworm"  # Python 3.11, as the host
MIRROR = "http://deb.debian.org/debian"
VENV = "/opt/edgerec"
MARKER = ".edgerec-arm64-root.json"
GUEST_PACKAGES = ("numpy", "ai-edge-litert")
Say = Callable[[str], None]


def root_dir() -> Path:
    return cache_root() / "arm64-root"


def _run(cmd: list[str], what: str, env: dict | None = None, timeout: int = 1800) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except FileNotFoundError:
        raise EdgerecError(f"{what}: {cmd[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise EdgerecError(f"{what}: timed out after {timeout} s") from None
    if proc.returncode:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise EdgerecError(f"{what} failed (exit {proc.returncode}): {tail[0][:300]}")
    return proc.stdout


def check_host() -> None:
    """Root, the tools and binfmt_misc with qemu-aarch64 registered (registered here if it can be)."""
    missing = [t for t in ("debootstrap", "qemu-aarch64-static", "update-binfmts") if shutil.which(t) is None]
    hint = "; the x86 verification in the manifest still stands"
    if missing:
        raise EdgerecError(
            f"ARM64 emulation needs {', '.join(missing)}: apt-get install qemu-user-static binfmt-support "
            f"debootstrap{hint}"
        )
    if os.geteuid() != 0:
        raise EdgerecError(f"ARM64 emulation needs root (debootstrap and chroot){hint}")
    binfmt = Path("/proc/sys/fs/binfmt_misc")
    if not (binfmt / "status").exists():
        with contextlib.suppress(EdgerecError):
            _run(["mount", "binfmt_misc", "-t", "binfmt_misc", str(binfmt)], "mounting binfmt_misc")
    if not (binfmt / "qemu-aarch64").exists():
        with contextlib.suppress(EdgerecError):
            _run(["update-binfmts", "--enable", "qemu-aarch64"], "registering qemu-aarch64")
    if not (binfmt / "qemu-aarch64").exists():
        raise EdgerecError(f"binfmt_misc has no qemu-aarch64 entry (update-binfmts --enable qemu-aarch64){hint}")


@contextlib.contextmanager
def mounted_proc(root: Path) -> Iterator[None]:
    target = root / "proc"
    target.mkdir(exist_ok=True)
    _run(["mount", "-t", "proc", "proc", str(target)], "mounting /proc in the ARM64 root")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


def guest_env() -> dict[str, str]:
    """The environment for commands in the root: no host pip settings, the root's own certificates."""
    return {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "DEBIAN_FRONTEND": "noninteractive",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_CERT": "/etc/ssl/certs/ca-certificates.crt",
    }


def chroot(root: Path, args: list[str], what: str, extra_env: dict | None = None, timeout: int = 1800) -> str:
    return _run(["chroot", str(root), *args], what, env={**guest_env(), **(extra_env or {})}, timeout=timeout)


def is_usable(root: Path) -> bool:
    return (root / MARKER).is_file() and (root / VENV.lstrip("/") / "bin" / "python").exists()


def ensure_root(say: Say = print) -> Path:
    """The cached ARM64 root, built first if it is missing or incomplete."""
    check_host()
    root = root_dir()
    if is_usable(root):
        return root
    if root.exists():
        say(f"{root}: incomplete or corrupt ARM64 root; rebuilding it")
        shutil.rmtree(root, ignore_errors=True)
    root.parent.mkdir(parents=True, exist_ok=True)
    for stale in glob.glob(str(root.parent / ".arm64-root.tmp-*")):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=".arm64-root.tmp-", dir=root.parent))
    start = time.perf_counter()
    try:
        build(tmp, say)
        (tmp / MARKER).write_text(json.dumps({"suite": SUITE, "packages": list(GUEST_PACKAGES),
                                               "built_s": round(time.perf_counter() - start, 1)}))  # fmt: skip
        os.rename(tmp, root)
    except BaseException:
        subprocess.run(["umount", "-l", str(tmp / "proc")], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    say(f"built the ARM64 root in {time.perf_counter() - start:.0f} s: {root}")
    return root


def build(root: Path, say: Say) -> None:
    say(f"ARM64 root: debootstrap {SUITE} (first stage, on the host)")
    _run(["debootstrap", "--arch=arm64", "--variant=minbase", "--foreign", SUITE, str(root), MIRROR],
         "debootstrap (first stage)")  # fmt: skip
    shutil.copy2(shutil.which("qemu-aarch64-static") or "", root / "usr" / "bin" / "qemu-aarch64-static")
    say("ARM64 root: debootstrap second stage (emulated)")
    chroot(root, ["/debootstrap/debootstrap", "--second-stage"], "debootstrap (second stage)")
    shutil.copy2("/etc/resolv.conf", root / "etc" / "resolv.conf")
    certs = root / "usr" / "local" / "share" / "ca-certificates"
    certs.mkdir(parents=True, exist_ok=True)
    for crt in glob.glob("/usr/local/share/ca-certificates/*.crt"):
        shutil.copy2(crt, certs)
    cpu = root / "sys" / "devices" / "system" / "cpu"
    cpu.mkdir(parents=True, exist_ok=True)
    for name in ("possible", "present"):
        (cpu / name).write_text("0-1\n")
    with mounted_proc(root):
        say("ARM64 root: python3, venv, certificates (apt, emulated)")
        chroot(root, ["apt-get", "update", "-q"], "apt-get update in the ARM64 root")
        chroot(root, ["apt-get", "install", "-y", "-q", "--no-install-recommends", "python3", "python3-venv",
                      "ca-certificates"], "apt-get install in the ARM64 root")  # fmt: skip
        chroot(root, ["update-ca-certificates"], "update-ca-certificates in the ARM64 root")
        chroot(root, ["python3", "-m", "venv", VENV], "creating the ARM64 venv")
        say(f"ARM64 root: pip install {' '.join(GUEST_PACKAGES)} (aarch64 wheels, emulated)")
        chroot(root, [f"{VENV}/bin/pip", "install", "-q", *GUEST_PACKAGES], "pip install in the ARM64 root")
    subprocess.run(["apt-get", "clean"], capture_output=True)


def install_wheel(root: Path, wheel: Path, say: Say = print) -> None:
    """edgerec from this wheel (with its dependencies) into the root's venv, unless that exact wheel is there."""
    from edgerec.io import sha256_file

    stamp = root / "opt" / "edgerec" / ".edgerec-wheel"
    digest = sha256_file(wheel)
    if stamp.is_file() and stamp.read_text() == digest:
        return
    say(f"ARM64 root: installing {wheel.name}")
    inside = root / "tmp" / wheel.name
    shutil.copy2(wheel, inside)
    try:
        with mounted_proc(root):
            chroot(root, [f"{VENV}/bin/pip", "install", "-q", "--force-reinstall", "--no-deps", f"/tmp/{wheel.name}"],
                   "installing edgerec in the ARM64 root")  # fmt: skip
            deps = wheel_requirements(wheel)
            chroot(root, [f"{VENV}/bin/pip", "install", "-q", *deps], "installing edgerec's dependencies")
    finally:
        inside.unlink(missing_ok=True)
    stamp.write_text(digest)


def wheel_requirements(wheel: Path) -> list[str]:
    """The wheel's core dependencies (its METADATA's Requires-Dist lines outside every extra)."""
    import zipfile
    from email.parser import Parser

    from packaging.requirements import Requirement

    with zipfile.ZipFile(wheel) as z:
        meta = next((n for n in z.namelist() if n.endswith(".dist-info/METADATA")), None)
        if meta is None:
            raise EdgerecError(f"{wheel}: not a wheel (no .dist-info/METADATA inside)")
        lines = Parser().parsestr(z.read(meta).decode()).get_all("Requires-Dist") or []
    reqs = [Requirement(line) for line in lines]
    return [str(r) for r in reqs if r.marker is None or r.marker.evaluate({"extra": ""})]


def build_wheel(say: Say = print) -> Path:
    """The wheel of the installed edgerec: built from the checkout it runs from (cached per source hash)."""
    import hashlib

    import edgerec

    pkg = Path(edgerec.__file__).resolve().parent
    src = pkg.parent
    if not (src / "pyproject.toml").is_file():
        raise EdgerecError(
            f"{pkg}: edgerec is installed from a wheel, not a checkout: give the wheel with --wheel to install it in "
            "the ARM64 root"
        )
    h = hashlib.sha256()
    for f in sorted([src / "pyproject.toml", *pkg.rglob("*.py"), *pkg.rglob("*.yaml")]):
        h.update(str(f.relative_to(src)).encode())
        h.update(f.read_bytes())
    out = cache_root() / "wheels" / h.hexdigest()[:16]
    found = sorted(out.glob("edgerec-*.whl"))
    if found:
        return found[0]
    say("building the edgerec wheel for the ARM64 root")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "src"
        junk = (".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "runs", "artifacts")
        shutil.copytree(src, copy, symlinks=True, ignore=shutil.ignore_patterns(*junk))
        _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(copy), "-w", str(Path(tmp) / "w")],
             "building the edgerec wheel")  # fmt: skip
        built = next((Path(tmp) / "w").glob("edgerec-*.whl"))
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy2(built, out / built.name)
    return out / built.name
