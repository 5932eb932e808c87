"""What the commands share: flag parsers, the data flags, the progress bar, the metrics table."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

from edgerec import api
from edgerec.data.config import Columns
from edgerec.errors import EdgerecError

log = logging.getLogger("edgerec")
Progress = Callable[[str, int, int, dict], None]
C = TypeVar("C")


def int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 64,32,16,8; got {text!r}") from None


def float_list(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers like 0,0.25,0.5; got {text!r}") from None


def columns(text: str) -> Columns:
    known = {"user", "item", "timestamp", "rating"}
    values = {}
    for part in filter(None, text.split(",")):
        key, sep, val = part.partition("=")
        if not sep or key not in known:
            raise argparse.ArgumentTypeError(f"expected user=COL,item=COL[,timestamp=COL][,rating=COL]; got {part!r}")
        values[key] = val
    return Columns(**values)


def data_args(p: argparse.ArgumentParser, required: bool = True, default_note: str = "") -> None:
    p.add_argument(
        "--data",
        required=required,
        default=None,
        help="data source: an NCF split folder, ratings.dat, u.data, "
        "ml-1m.zip, ml-100k.zip, a .csv/.parquet file, or synthetic[:users=N,items=N,seed=N,...]" + default_note,
    )
    p.add_argument("--columns", type=columns, default=None, help="CSV/Parquet column names, e.g. user=uid,item=iid")
    p.add_argument("--split-seed", type=int, default=0, help="seed of leave-one-out and test negatives (default 0)")


def from_flags(cls: type[C], args: argparse.Namespace, **values: Any) -> C:
    """cls built from the parsed flags named like its fields (plus `values`); the others keep their defaults."""
    flags = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}  # type: ignore[arg-type]
    return cls(**{**flags, **values})


def load_data(args: argparse.Namespace, stored: Any = None):  # -> edgerec.data.Dataset
    """The --data the flags name; without --data, `stored` (an updated checkpoint's data), else synthetic."""
    if args.data is None and stored is not None:
        log.info("using the data stored with the model")
        return stored
    source = args.data or "synthetic"
    log.info("loading %s", source)
    ds = api.dataset(source, args.split_seed, args.columns)
    s = ds.summary()
    log.info(
        "%s: %d users, %d items, %d train interactions, %d test users",
        s["name"],
        s["users"],
        s["items"],
        s["train_interactions"],
        s["test_users"],
    )
    return ds


def model_and_data(args: argparse.Namespace):  # -> (Checkpoint, Dataset)
    """--model loaded, and the data for it (--data, else what the checkpoint stores, else synthetic)."""
    ck = api.load_checkpoint(args.model)
    return ck, load_data(args, ck.data)


@contextmanager
def progress(stream: Any = None) -> Iterator[Progress | None]:
    """A rich progress bar on a terminal; plain per-epoch log lines elsewhere."""
    stream = stream or sys.stderr
    if not stream.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[info]}"),
        TimeRemainingColumn(),
        transient=True,
        console=Console(file=stream),
    )
    tasks: dict[tuple[str, int], Any] = {}

    def update(stage: str, done: int, total: int, info: dict) -> None:
        key = (stage, int(info.get("epoch", 0)))
        if key not in tasks:
            tasks[key] = bar.add_task(f"{stage} epoch {key[1]}", total=total, info="")
        text = f"loss {info['loss']:.4f}  {info['samples_per_s']:,.0f} samples/s"
        bar.update(tasks[key], completed=done, info=text)

    with bar:
        yield update


def metrics_table(title: str, rows: dict[str, dict]) -> None:
    from rich.table import Table

    from edgerec.cli.output import console

    table = Table(title=title)
    for col in ("model", "HR@10", "NDCG@10", "full HR@10", "full NDCG@10"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for name, m in rows.items():
        table.add_row(name, *(f"{m[k]:.4f}" for k in ("hr@10", "ndcg@10", "full_hr@10", "full_ndcg@10")))
    console().print(table)


def rating_table(title: str, rows: dict[str, dict]) -> None:
    """A rating model's RMSE / MAE beside its baseline's."""
    table(title, ("model", "RMSE", "MAE", "ratings"), [[n, f"{m['rmse']:.4f}", f"{m['mae']:.4f}", str(m["ratings"])]
                                                       for n, m in rows.items()], left=("model",))  # fmt: skip


def table(title: str, columns: tuple[str, ...], rows: list[list[str]], left: tuple[str, ...] = ()) -> None:
    """Print a rich table (columns right-aligned except those in `left`)."""
    from rich.markup import escape
    from rich.table import Table

    from edgerec.cli.output import console

    t = Table(title=escape(title))
    for col in columns:
        t.add_column(col, justify="left" if col in left else "right")
    for r in rows:
        t.add_row(*(escape(cell) for cell in r))  # a cell like "edgerec[tensorrt]" is text, not rich markup
    console().print(t)


def profile_table(title: str, runs: list) -> None:  # runs: [edgerec.profiles.pipeline.ProfileRun]
    table(title, runs[0].COLUMNS, [r.cells() for r in runs], left=("profile", "status"))


def print_profile_run(run: Any, out: str | Path) -> int:  # run: edgerec.profiles.pipeline.ProfileRun
    """The profile run's row (what `export --profile` and `update --profile` print); exit 2 unless it passed."""
    profile_table(f"profile {run.profile} on {run.data}", [run])
    print(f"wrote {out}/ ({', '.join(sorted(p.name for p in Path(out).iterdir()))})")
    if run.passed:
        return 0
    raise EdgerecError(f"profile {run.profile}: {run.status} (the artifact and its record are in {out})")


# output arguments, by what they must be when they already exist (checked before a command does any work)
OUTPUT_FOLDERS = ("out", "results", "cache", "log_dir")
OUTPUT_FILES = ("json", "shadow_log")


def check_outputs(args: argparse.Namespace) -> None:
    """Refuse, before any work, an output path that exists as the wrong kind (a file where a folder goes, or the
    reverse): the command would otherwise fail only at its end, after the work."""
    extra = ("artifact",) if args.command == "update" else ()  # update --artifact is where it writes
    for dest in (*OUTPUT_FOLDERS, *extra):
        value = getattr(args, dest, None)
        if value and Path(value).exists() and not Path(value).is_dir():
            flag = "--" + dest.replace("_", "-")
            raise EdgerecError(f"{flag} {value}: exists and is not a folder; choose another output path")
    for dest in OUTPUT_FILES:
        value = getattr(args, dest, None)
        if value and Path(value).is_dir():
            raise EdgerecError(f"--{dest.replace('_', '-')} {value}: is a folder; expected a file path to write")


# input folders, by command: (dest, flag, what it must be); a missing one is named with its flag before any work
CHECKPOINT = "a checkpoint folder (config.json + model.safetensors)"
ARTIFACT = "an artifact folder (manifest.json)"
TRITON_REPO = "a Triton repository (edgerec export --target triton)"
INPUT_FOLDERS = {
    "train": (("init", "--init", CHECKPOINT),),
    "evaluate": (("model", "--model", CHECKPOINT),),
    "compress": (("model", "--model", CHECKPOINT),),
    "export": (("model", "--model", CHECKPOINT),),
    "bench": (("artifact", "ARTIFACT", ARTIFACT),),
    "compare": (("profiles", "PROFILES", "a folder of profile .yaml files"), ("model", "--model", CHECKPOINT)),
    "bench-server": (("repo", "--repo", TRITON_REPO),),
    "update": (("model", "--model", CHECKPOINT), ("repo", "--repo", TRITON_REPO)),
    "rollout": (("repo", "REPO", TRITON_REPO), ("model", "--model", CHECKPOINT)),
    "rollback": (("repo", "REPO", TRITON_REPO),),
    "recommend": (("model", "--model", CHECKPOINT),),
    "verify": (("artifact", "ARTIFACT", ARTIFACT),),
    "serve": (("repo", "REPO", TRITON_REPO),),
    "delta": (("parent", "--from", "a phone bundle folder"), ("child", "--to", "a phone bundle folder")),
    "apply-delta": (
        ("bundle", "--bundle", "a phone bundle folder"),
        ("delta", "--delta", "a delta folder (delta.json)"),
    ),
    "app": (("bundle", "BUNDLE", "a phone bundle folder"),),
    "add-items": (("model", "--model", CHECKPOINT),),
    "add-users": (("model", "--model", CHECKPOINT),),
}


def check_inputs(args: argparse.Namespace) -> None:
    """Refuse, before any work, an input folder argument that does not exist or is a file, naming the flag."""
    for dest, flag, what in INPUT_FOLDERS.get(args.command, ()):
        value = getattr(args, dest, None)
        if not value:
            continue
        if not Path(value).exists():
            raise EdgerecError(f"{flag} {value}: no such folder; expected {what}")
        if not Path(value).is_dir():
            raise EdgerecError(f"{flag} {value}: is a file; expected {what}")
