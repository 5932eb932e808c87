"""Safe file output: every artifact is written to a temporary sibling and renamed into place when complete."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgerec.errors import EdgerecError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]


@contextlib.contextmanager
def atomic_dir(dest: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder next to dest; on success it replaces dest, on any failure it is removed.

    An existing dest is moved aside first and deleted only after the new folder is in place, so an interruption
    leaves either the old folder or the new one (or, between two renames, the old one under a `.old-*` name).
    The whole write holds `write_lock(dest)`: a second writer into the same dest fails at once and touches nothing.
    A killed writer's leftovers are dealt with by the next one, under the lock (see `_recover`).
    """
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise EdgerecError(f"{dest}: exists and is not a folder; choose another output path")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise EdgerecError(f"{dest}: cannot create the output folder ({e.strerror})") from None
    with write_lock(dest):
        _recover(dest)
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
        except OSError as e:
            raise EdgerecError(f"{dest}: cannot create the output folder ({e.strerror})") from None
        try:
            yield tmp
            old = None
            if dest.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
                os.rmdir(old)
                os.rename(dest, old)
            try:
                os.rename(tmp, dest)
            except BaseException:
                if old is not None:  # put the previous version back before reporting the failure
                    os.rename(old, dest)
                raise
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def _recover(dest: Path) -> None:
    """What a writer killed with SIGKILL (no cleanup runs) left beside dest; called holding dest's write lock, so no
    live writer owns these. Killed between its two renames, it left no dest and the previous version as `.old-*`:
    that is put back. Every other `.tmp-*` (an unfinished write) and `.old-*` (an already replaced version) goes."""
    name = glob.escape(dest.name)
    olds = sorted(dest.parent.glob(f".{name}.old-*"), key=lambda p: p.stat().st_mtime)
    if olds and not dest.exists():
        os.rename(olds.pop(), dest)
    for leftover in [*dest.parent.glob(f".{name}.tmp-*"), *olds]:
        shutil.rmtree(leftover, ignore_errors=True)


@contextlib.contextmanager
def build_lock(dest: str | Path) -> Iterator[None]:
    """Wait for, then hold, an exclusive flock on `.<name>.build` beside dest: processes that would build the same
    cached step take turns instead of failing on each other's write lock (the file stays; it is empty)."""
    dest = Path(dest)
    if fcntl is None:
        yield
        return
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(dest.parent / f".{dest.name}.build", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise EdgerecError(f"{dest}: cannot create its build lock ({e.strerror})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def write_lock(dest: str | Path) -> Iterator[None]:
    """Hold an exclusive, non-blocking flock on `.<name>.lock` beside dest; a second holder gets an EdgerecError.

    The lock file holds the writer's pid (for the error message). The kernel releases the lock when the process
    dies, so a killed writer never blocks the next one. The holder removes the file as its last step, while still
    holding the lock; a writer that opened the file before that finds it no longer linked and starts again with a
    new file, so two writers never both hold a lock on the file that the path names.
    """
    dest = Path(dest)
    if fcntl is None:  # no flock (Windows): writes stay atomic, just not exclusive
        yield
        return
    path = dest.parent / f".{dest.name}.lock"
    for _ in range(100):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise EdgerecError(f"{dest}: cannot create the lock file {path.name} ({e.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise EdgerecError(
                f"{dest} is being written by another edgerec process (pid {pid}); wait for it or choose another --out"
            ) from None
        try:
            linked = os.stat(path)
        except FileNotFoundError:
            linked = None
        held = os.fstat(fd)
        if linked is not None and (linked.st_dev, linked.st_ino) == (held.st_dev, held.st_ino):
            break
        os.close(fd)  # the previous holder removed this file after we opened it: take the lock on a fresh one
    else:
        raise EdgerecError(f"{dest}: could not take the write lock {path.name}; try again")
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # while still holding the lock (see above)
        os.close(fd)


def write_json(path: str | Path, obj: Any) -> None:
    """Write JSON atomically: a temporary sibling, flushed to disk, renamed over `path` (a reader or a crash sees
    the old file or the new one, never half of one)."""
    write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write a file atomically (see write_json)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def cache_root() -> Path:
    """Where edgerec keeps what it can rebuild (pipeline steps, TensorRT engines, test environments):
    $EDGEREC_CACHE, default ~/.cache/edgerec."""
    return Path(os.environ.get("EDGEREC_CACHE", Path.home() / ".cache" / "edgerec"))


def read_bytes(path: Path, what: str = "a file", size: int = -1, missing: str = "no such file") -> bytes:
    """The file's bytes (its first `size` with size >= 0); every OS failure a one-line EdgerecError."""
    try:
        with open(path, "rb") as fh:
            return fh.read(size)
    except FileNotFoundError:
        raise EdgerecError(f"{path}: {missing}") from None
    except IsADirectoryError:
        raise EdgerecError(f"{path}: is a folder, expected {what}") from None
    except NotADirectoryError:
        raise EdgerecError(f"{path}: {missing} ({Path(path).parent} is a file, not a folder)") from None
    except OSError as e:
        raise EdgerecError(f"{path}: cannot read ({e.strerror})") from None


def read_json(path: Path) -> Any:
    return parse_json(read_bytes(path, "a JSON file", missing="missing"), path)


def parse_json(data: bytes, where: str | Path) -> Any:
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise EdgerecError(f"{where}: not valid JSON ({e})") from None


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except FileNotFoundError:
        raise EdgerecError(f"{path}: missing") from None
    except OSError as e:
        raise EdgerecError(f"{path}: cannot read ({e.strerror})") from None
    return h.hexdigest()


def file_hashes(folder: Path) -> dict[str, str]:
    """{name: sha256} of every file directly in folder."""
    return {p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.is_file()}


def read_versioned_json(path: Path, fmt: str, version: int, what: str) -> dict:
    """A JSON file that declares {"format": fmt, "format_version": <int>} and that this edgerec can read."""
    return check_versioned(read_json(path), path, fmt, version, what)


def check_versioned(doc: Any, where: str | Path, fmt: str, version: int, what: str) -> dict:
    """doc, once it is known to be an edgerec `what` of a format version this edgerec reads."""
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise EdgerecError(f"{where}: not an edgerec {what} (format is not {fmt!r})")
    found = doc.get("format_version")
    if not isinstance(found, int) or isinstance(found, bool) or found < 1:
        raise EdgerecError(f"{where}: malformed (format_version must be a positive integer)")
    if found > version:
        raise EdgerecError(f"{where}: {what} format {found} is newer than this edgerec reads ({version})")
    return doc


class SavesJson:
    """A typed report's file form: `to_json()` (defined by the report) written atomically by `save(path)`."""

    def to_json(self) -> Any:
        raise NotImplementedError

    def save(self, path: str | Path) -> Path:
        write_json(path, self.to_json())
        return Path(path)
