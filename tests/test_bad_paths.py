"""Every path argument of every command, given a path of the wrong kind: exit 2, one line naming the path, nothing
written (issue 25). The arguments are enumerated from the parser itself: a new command or path argument without a
row in PATH_ARGS fails `test_every_path_argument_has_cases`."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from edgerec.cli.main import build_parser, main
from edgerec.profiles.schema import shipped_dir

from .conftest import SMALL

# (command, dest) -> the kind of path it takes; the cases below are generated per kind
PATH_ARGS = {
    ("train", "data"): "data",
    ("train", "init"): "checkpoint",
    ("train", "out"): "out",
    ("evaluate", "model"): "checkpoint",
    ("evaluate", "data"): "data",
    ("evaluate", "json"): "out-file",
    ("import", "sources"): "model-file",
    ("import", "id_maps"): "json-file",
    ("import", "map"): "yaml-file",
    ("import", "data"): "data",
    ("import", "out"): "out",
    ("compress", "model"): "checkpoint",
    ("compress", "data"): "data",
    ("compress", "out"): "out",
    ("export", "data"): "data",
    ("export", "profile"): "profile",
    ("export", "model"): "checkpoint",
    ("export", "cache"): "cache",
    ("export", "out"): "out",
    ("bench", "artifact"): "artifact",
    ("bench", "data"): "data",
    ("bench", "json"): "out-file",
    ("compare", "profiles"): "profile-folder",
    ("compare", "data"): "data",
    ("compare", "model"): "checkpoint",
    ("compare", "out"): "out",
    ("compare", "results"): "out",
    ("compare", "cache"): "cache",
    ("bench-server", "json"): "out-file",
    ("recommend", "model"): "checkpoint",
    ("recommend", "data"): "data",
    ("recommend", "json"): "out-file",
    ("recommend", "user_attributes"): "json-file",
    ("verify", "artifact"): "artifact",
    ("verify", "data"): "data",
    ("verify", "json"): "out-file",
    ("verify", "wheel"): "wheel-file",
    ("update", "model"): "checkpoint",
    ("update", "new"): "interactions",
    ("update", "out"): "out",
    ("update", "data"): "data",
    ("update", "profile"): "profile",
    ("update", "artifact"): "out",
    ("update", "cache"): "cache",
    ("delta", "parent"): "artifact",
    ("delta", "child"): "artifact",
    ("delta", "out"): "out",
    ("apply-delta", "bundle"): "artifact",
    ("apply-delta", "delta"): "artifact",
    ("apply-delta", "out"): "out",
    ("serve", "repo"): "artifact",
    ("bench-server", "repo"): "artifact",
    ("update", "repo"): "artifact",
    ("rollout", "repo"): "artifact",
    ("rollout", "model"): "checkpoint",
    ("rollout", "data"): "data",
    ("rollback", "repo"): "artifact",
    ("serve", "log_dir"): "out",
    ("serve", "env"): "serve-env",
    ("serve", "shadow_log"): "out-file",
    ("add-items", "model"): "checkpoint",
    ("add-items", "out"): "out",
    ("add-users", "model"): "checkpoint",
    ("add-users", "out"): "out",
}
# dests that name a path wherever they appear (and anything whose help says file / folder / path)
PATHISH = {"data", "model", "init", "out", "json", "sources", "id_maps", "map", "profile", "cache", "artifact"}
PATHISH |= {"profiles", "results", "new", "parent", "child", "bundle", "delta", "wheel", "repo", "env"}


def _path_arguments() -> set[tuple[str, str]]:
    ap = build_parser()
    sub = next(a for a in ap._actions if isinstance(a, argparse._SubParsersAction))
    found = set()
    for name, p in sub.choices.items():
        for a in p._actions:
            words = (a.help or "").lower()
            pathish = a.dest in PATHISH or any(w in words for w in (" file", "folder", " path"))
            if pathish and not a.choices and a.dest not in ("help", "columns"):  # a choice is a name, not a path
                found.add((name, a.dest))
    return found


def test_every_path_argument_has_cases() -> None:
    found = _path_arguments()
    assert found - set(PATH_ARGS) == set(), "path arguments without bad-path cases: add them to PATH_ARGS"
    assert set(PATH_ARGS) - found == set(), "PATH_ARGS names arguments the parser no longer has"


# -- the cases ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory, ckpt) -> dict[str, Path]:
    """Real inputs of every kind, and wrong ones."""
    import shutil

    import edgerec

    root = tmp_path_factory.mktemp("paths")
    art = edgerec.export(edgerec.load(ckpt), edgerec.ExportConfig(target="onnx"), data=SMALL, out=root / "artifact")
    (root / "empty").mkdir()
    (root / "config-only").mkdir()
    shutil.copy(ckpt / "config.json", root / "config-only" / "config.json")
    (root / "weights-only").mkdir()
    shutil.copy(ckpt / "model.safetensors", root / "weights-only" / "model.safetensors")
    (root / "a file.txt").write_text("not what was asked for\n")
    (root / "broken.json").write_text("{not json")
    rows = [f"{10_000 + u},{(u * 13 + k * 7) % 180}" for u in range(40) for k in range(12)]  # 40 new users
    (root / "new.csv").write_text("user,item\n" + "\n".join(rows) + "\n")
    (root / "profiles").mkdir()
    (root / "profiles" / "onnx-cpu-int8.yaml").write_text((shipped_dir() / "onnx-cpu-int8.yaml").read_text())
    bundle = edgerec.export(edgerec.load(ckpt), edgerec.ExportConfig(target="tflite-bundle"), data=SMALL)
    bundle.save(root / "bundle")
    assert (
        main(
            ["-q", "delta", "--from", str(root / "bundle"), "--to", str(root / "bundle"), "--out", str(root / "delta")]
        )
        == 0
    )
    repo = edgerec.export(edgerec.load(ckpt), edgerec.ExportConfig(target="triton"), data=SMALL, out=root / "repo")
    paths = {"ck": ckpt, "artifact": art.folder, "root": root, "bundle": root / "bundle", "delta": root / "delta"}
    return {**paths, "repo": repo.folder}


def cases(kind: str, w: dict[str, Path]) -> list[tuple[str, Path]]:
    root = w["root"]
    missing = [("missing", root / "no such [dir] *"), ("missing", root / "nowhere")]
    wrong_dirs = [("empty folder", root / "empty"), ("a file", root / "a file.txt")]
    checkpoint_like = [
        ("config.json without weights", root / "config-only"),
        ("weights without config", root / "weights-only"),
    ]
    return {
        "checkpoint": missing + wrong_dirs + checkpoint_like + [("an artifact", w["artifact"])],
        "artifact": missing + wrong_dirs + [("a checkpoint", w["ck"])],
        "data": missing
        + wrong_dirs[:1]
        + [("a checkpoint", w["ck"]), ("a file of no known format", root / "a file.txt")],
        "model-file": [*missing, ("a folder", root / "empty"), ("a text file", root / "a file.txt")],
        "json-file": [*missing, ("a folder", root / "empty"), ("broken JSON", root / "broken.json")],
        "yaml-file": [("missing", root / "nowhere.yaml"), ("a folder", root / "empty")],
        "profile": [("missing", root / "nowhere.yaml"), ("a folder", root / "empty"), ("a checkpoint", w["ck"])],
        "profile-folder": [*missing, ("a file", root / "a file.txt")],
        "interactions": [*missing, ("a folder", root / "empty")],
        "wheel-file": [*missing, ("a folder", root / "empty"), ("not a wheel", root / "a file.txt")],
        "out": [("an existing file", root / "a file.txt")],
        "out-file": [("an existing folder", root / "empty")],
        "cache": [("an existing file", root / "a file.txt")],
        "serve-env": [*missing, *wrong_dirs],
    }[kind]


def invocation(command: str, dest: str, bad: Path, w: dict[str, Path], out: Path) -> list[str]:
    """A valid command line for `command` with `dest` replaced by `bad`."""
    ck, art = str(w["ck"]), str(w["artifact"])
    h5 = w["root"] / "w.h5"
    if not h5.exists():
        from .foreign_files import keras_h5

        keras_h5(h5, __import__("edgerec").load(ck).model)
    base = {
        "train": {"data": "synthetic:users=150,items=140,seed=4", "out": str(out), "epochs": "1", "factors": "4"},
        "evaluate": {"model": ck, "data": SMALL},
        "import": {"format": "keras-h5", "sources": str(h5), "out": str(out)},
        "compress": {"model": ck, "data": SMALL, "out": str(out), "quantize": None},
        "export": {"model": ck, "data": SMALL, "target": "onnx", "out": str(out)},
        "bench": {"artifact": art},
        "compare": {"profiles": str(w["root"] / "profiles"), "model": ck, "data": SMALL, "out": str(out)},
        "bench-server": {"server": "127.0.0.1:9", "users": "3"},
        "recommend": {"model": ck, "user": "3", "data": SMALL},
        "verify": {"artifact": str(w["bundle"]), "arch": "arm64", "data": SMALL},
        "update": {"model": ck, "data": SMALL, "new": str(w["root"] / "new.csv"), "out": str(out), "epochs": "1"},
        "delta": {"parent": str(w["bundle"]), "child": str(w["bundle"]), "out": str(out)},
        "apply-delta": {"bundle": str(w["bundle"]), "delta": str(w["delta"]), "out": str(out)},
        "serve": {"repo": str(w["repo"])},
        "rollout": {"repo": str(w["repo"]), "model": ck, "data": SMALL},
        "rollback": {"repo": str(w["repo"]), "to": "1"},
        "add-items": {"model": ck, "items": str(w["root"] / "features.csv"), "out": str(out)},
        "add-users": {"model": ck, "users": str(w["root"] / "features.csv"), "out": str(out)},
    }[command]
    if command in ("add-items", "add-users"):
        (w["root"] / "features.csv").write_text("id,kind\n90001,a\n")
    if command == "export" and dest == "profile":
        base = {"profile": "", "model": ck, "data": SMALL, "out": str(out)}
    if command == "bench-server" and dest == "repo":  # a load test; the bad repository is refused before any request
        base = {"server": "127.0.0.1:9", "repo": ""}
    if command == "update" and dest in ("profile", "artifact", "cache"):
        base["profile"] = "onnx-cpu-int8"
    if command == "import" and dest == "map":
        base["format"] = "state-dict"
    if command == "recommend" and dest == "user_attributes":  # a new user: attributes instead of a known id
        del base["user"]
    if command == "train" and dest == "init":
        base["init"] = ""
    flags = {
        "parent": "--from",
        "child": "--to",
        "sources": None,
        "server": None,
        "profiles": None if command == "compare" else "--profiles",
        "repo": None if command in ("serve", "rollout", "rollback") else "--repo",
        "artifact": None if command in ("bench", "verify") else "--artifact",
    }
    base[dest] = str(bad)
    args = [command]
    for key, value in base.items():
        flag = flags.get(key, "--" + key.replace("_", "-"))
        if flag is None:
            args.append(str(value))
        elif value is None:
            args.append(flag)
        else:
            args += [flag, str(value)]
    return args


ALL = [(c, d, k) for (c, d), k in sorted(PATH_ARGS.items())]


@pytest.mark.parametrize(("command", "dest", "kind"), ALL, ids=[f"{c}-{d}" for c, d, _ in ALL])
def test_a_bad_path_is_one_line_and_writes_nothing(command, dest, kind, world, tmp_path, capsys) -> None:
    failures = []
    for what, bad in cases(kind, world):
        out = tmp_path / f"out-{len(failures)}-{what.replace(' ', '_')}"
        args = invocation(command, dest, bad, world, out)
        if dest == "out" or kind in ("out", "cache"):
            out = None  # the bad path is the output itself
        rc = main(["-q", *args])
        err = capsys.readouterr().err.strip()
        ok = rc == 2 and len(err.splitlines()) == 1 and err.startswith("edgerec: error: ")
        named = str(bad) in err or bad.name in err
        if kind in ("checkpoint", "artifact") and what in ("missing", "a file"):  # the flag is named too
            flag = {"parent": "--from", "child": "--to"}
            flag["repo"] = "REPO" if command in ("serve", "rollout", "rollback") else "--repo"
            flag["artifact"] = "ARTIFACT" if command in ("bench", "verify") else "--artifact"
            named = named and flag.get(dest, "--" + dest) in err
        written = out is not None and out.exists()
        if not (ok and named) or written:
            failures.append(f"{what} ({bad}): rc {rc}, written {written}: {err[-300:]!r}")
    assert failures == [], "\n".join(failures)


# -- sizes, memory and the disk -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["train", "--data", SMALL, "--batch-size", "100000000000", "--out", "x"], "batch_size"),
        (["export", "--target", "onnx", "--buckets", "1,99999999999", "--out", "x"], "buckets"),
        (["train", "--data", "synthetic:users=300000000,items=3000000", "--out", "x"], "needs about 546.9 GiB"),
    ],
)
def test_sizes_are_refused_before_allocating(args, match, tmp_path, ckpt, capsys) -> None:
    args = [str(tmp_path / a) if a == "x" else a for a in args]
    if args[0] == "export":
        args += ["--model", str(ckpt), "--data", SMALL]
    assert main(["-q", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err, err
    assert not (tmp_path / "x").exists()


def test_memory_and_os_errors_are_one_line(monkeypatch, capsys, ckpt) -> None:
    """An allocation or a system call that fails where no check foresaw it: one line naming the command."""
    import errno

    import edgerec.cli.main as cli_main

    real = cli_main.build_parser

    def failing(exc: BaseException):
        def parser() -> argparse.ArgumentParser:
            ap = real()
            sub = next(a for a in ap._actions if isinstance(a, argparse._SubParsersAction))
            sub.choices["evaluate"].set_defaults(run=lambda args: (_ for _ in ()).throw(exc))
            return ap

        return parser

    args = ["evaluate", "--model", str(ckpt), "--data", SMALL]
    monkeypatch.setattr(cli_main, "build_parser", failing(MemoryError()))
    assert main(args) == 2
    assert (
        capsys.readouterr().err.strip() == "edgerec: error: edgerec evaluate: out of memory; use smaller data or sizes"
    )
    monkeypatch.setattr(cli_main, "build_parser", failing(OSError(errno.ENOSPC, "No space left on device", "/d/x")))
    assert main(args) == 2
    assert capsys.readouterr().err.strip() == "edgerec: error: edgerec evaluate: /d/x: No space left on device"


@pytest.mark.parametrize("where", ["while writing", "at the final rename"])
def test_disk_full_keeps_the_previous_output(where, tmp_path, ckpt, capsys, monkeypatch) -> None:
    import errno
    import os

    import edgerec.io as eio

    out = tmp_path / "art"
    args = ["-q", "export", "--model", str(ckpt), "--data", SMALL, "--target", "onnx", "--precision", "fp32"]
    assert main([*args, "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    full = OSError(errno.ENOSPC, "No space left on device")
    if where == "while writing":
        real_write = eio.write_json

        def write_json(path, value):
            if ".tmp-" in str(path):
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
            return real_write(path, value)

        monkeypatch.setattr(eio, "write_json", write_json)
        import edgerec.manifest as manifest

        monkeypatch.setattr(manifest, "write_json", write_json, raising=False)
    else:
        real_rename = os.rename

        def rename(src, dst):
            if ".tmp-" in str(src):
                raise full
            return real_rename(src, dst)

        monkeypatch.setattr(eio.os, "rename", rename)
    capsys.readouterr()
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "No space left on device" in err, err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the previous artifact, byte for byte
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name or ".old-" in p.name] == []
