"""The `edgerec` command: parses arguments and calls the Python API. Expected failures print one line, exit 2."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from edgerec.entry import INTERRUPTED
from edgerec.errors import EdgerecError

log = logging.getLogger("edgerec")


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 64,32,16,8; got {text!r}") from None


def _float_list(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers like 0,0.25,0.5; got {text!r}") from None


def _columns(text: str):
    from edgerec.data import Columns

    known = {"user", "item", "timestamp", "rating"}
    values = {}
    for part in filter(None, text.split(",")):
        key, sep, val = part.partition("=")
        if not sep or key not in known:
            raise argparse.ArgumentTypeError(f"expected user=COL,item=COL[,timestamp=COL][,rating=COL]; got {part!r}")
        values[key] = val
    return Columns(**values)


def _data_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument(
        "--data",
        required=required,
        default=None,
        help="data source: an NCF split folder, ratings.dat, u.data, "
        "ml-1m.zip, ml-100k.zip, a .csv/.parquet file, or synthetic[:users=N,items=N,seed=N,...]"
        + (
            "" if required else " (default: the data an updated --model stores, else synthetic: the embedded generator)"
        ),
    )
    p.add_argument("--columns", type=_columns, default=None, help="CSV/Parquet column names, e.g. user=uid,item=iid")
    p.add_argument("--split-seed", type=int, default=0, help="seed of leave-one-out and test negatives (default 0)")


def build_parser() -> argparse.ArgumentParser:
    from edgerec.model.config import TrainConfig

    d = TrainConfig()
    ap = argparse.ArgumentParser(prog="edgerec", description="Train, compress, export and benchmark NCF recommenders.")
    ap.add_argument("-q", "--quiet", action="store_true", help="only print results and errors")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train GMF / MLP / NeuMF and evaluate it on the held-out test items")
    _data_args(t)
    t.add_argument("--model", default="neumf", choices=["gmf", "mlp", "neumf"], help="model type (default neumf)")
    t.add_argument("--factors", type=int, default=8, help="predictive factors (default 8)")
    t.add_argument("--layers", type=_int_list, default=(), help="MLP input size then hidden sizes (default 8f,4f,2f,f)")
    t.add_argument("--pretrain", action="store_true", help="initialise NeuMF from separately trained GMF and MLP")
    t.add_argument("--epochs", type=int, default=d.epochs, help=f"maximum epochs (default {d.epochs})")
    t.add_argument("--batch-size", type=int, default=d.batch_size, help=f"default {d.batch_size}")
    t.add_argument("--lr", type=float, default=d.lr, help=f"Adam learning rate (default {d.lr})")
    t.add_argument("--negatives", type=int, default=d.negatives, help=f"negatives per positive (default {d.negatives})")
    t.add_argument("--l2", type=float, default=d.l2, help=f"L2 on the batch's embeddings (default {d.l2})")
    t.add_argument("--patience", type=int, default=d.patience, help=f"early-stopping patience (default {d.patience})")
    t.add_argument(
        "--average-from",
        type=int,
        default=d.average_from,
        metavar="EPOCH",
        help=f"keep the mean of the epoch-end weights from this epoch on; 0: off (default {d.average_from})",
    )
    t.add_argument("--seed", type=int, default=d.seed, help="training seed (default 0)")
    t.add_argument("--threads", type=int, default=0, help="CPU threads for PyTorch (default: all cores)")
    t.add_argument("--out", required=True, help="checkpoint folder to write (replaced atomically)")
    t.set_defaults(func=cmd_train)

    c = sub.add_parser("compress", help="prune, distill and quantize a checkpoint, gated by ranking quality")
    c.add_argument("--model", required=True, help="teacher checkpoint folder")
    _data_args(c)
    c.add_argument("--out", required=True, help="folder for the compressed checkpoint (replaced atomically)")
    g = c.add_argument_group("pruning")
    g.add_argument("--prune", type=float, default=None, metavar="R", help="prune every component by ratio R")
    g.add_argument("--prune-mlp", type=float, default=None, metavar="R", help="MLP hidden channels")
    g.add_argument("--prune-gmf", type=float, default=None, metavar="R", help="GMF embedding dimensions")
    g.add_argument("--prune-embedding", type=float, default=None, metavar="R", help="MLP embedding dimensions")
    g.add_argument("--importance", default="l2", help="l1 | l2 | taylor | random (default l2)")
    g.add_argument(
        "--prune-steps",
        type=int,
        default=1,
        metavar="N",
        help="reach the ratios in N equal steps, with --distill recovery after each (default 1)",
    )
    g = c.add_argument_group("distillation")
    g.add_argument("--distill", action="store_true", help="distil from the teacher (after pruning: recovery)")
    g.add_argument(
        "--student",
        type=_int_list,
        default=None,
        metavar="F,L1,L2,..",
        help="a fresh student: predictive factors then MLP layers, e.g. 4,32,16,8",
    )
    g.add_argument("--distill-weight", type=float, default=1.0)
    g.add_argument("--temperature", type=float, default=1.0)
    g.add_argument("--rank-k", type=int, default=0, help="ranking distillation over the teacher's top-K (0 = off)")
    g.add_argument("--epochs", type=int, default=10, help="distillation epochs (default 10, early stopping)")
    g = c.add_argument_group("quantization")
    g.add_argument("--quantize", action="store_true", help="post-training quantization with calibration")
    g.add_argument("--embeddings", default="int8", help="fp32 | fp16 | int8 | int4 (row-wise; default int8)")
    g.add_argument("--mlp", default="int8", help="fp32 | fp16 | int8 (default int8)")
    g.add_argument("--observer", default="minmax", help="minmax | percentile | entropy (default minmax)")
    g.add_argument("--calibration-size", type=int, default=20_000)
    g = c.add_argument_group("gates and search")
    g.add_argument("--tolerance-hr", type=float, default=None, help="fail if HR@10 drops by more than this")
    g.add_argument("--tolerance-ndcg", type=float, default=None, help="fail if NDCG@10 drops by more than this")
    g.add_argument("--min-agreement", type=float, default=None, help="fail if top-10 agreement is below this")
    g.add_argument(
        "--search",
        action="store_true",
        help="search pruning ratio x precision; keep the smallest candidate within --tolerance-hr (default 0.01)",
    )
    g.add_argument("--objective", default="bytes", help="bytes | macs (search objective)")
    g.add_argument("--ratios", type=_float_list, default=(0.0, 0.25, 0.5, 0.75), help="search ratios")
    c.set_defaults(func=cmd_compress)

    x = sub.add_parser("export", help="export a checkpoint to ONNX / TensorRT / TFLite, verified in its runtime")
    _data_args(x, required=False)
    from edgerec.export.cli import add_arguments

    add_arguments(x)
    x.set_defaults(func=cmd_export)

    b = sub.add_parser("bench", help="latency, throughput, memory and accuracy of an artifact in its runtime")
    b.add_argument("artifact", nargs="?", help="artifact folder (from `edgerec export`)")
    b.add_argument("--profiles", default=None, help="instead: export and bench every profile in this folder")
    b.add_argument("--data", default=None, help="also measure HR@10 / NDCG@10 through the runtime on this data")
    b.add_argument("--columns", type=_columns, default=None, help=argparse.SUPPRESS)
    b.add_argument("--split-seed", type=int, default=0, help=argparse.SUPPRESS)
    b.add_argument("--json", default=None, help="write the bench record to this JSON file")
    b.add_argument("--threads", type=int, default=None, help="runtime threads (default 1; profiles: their own)")
    b.add_argument("--min-time", type=float, default=1.0, help="seconds measured per case (default 1.0)")
    b.add_argument("--model", default=None, help="--profiles: the source checkpoint (default: train on --data)")
    b.add_argument("--out", default="runs/profiles", help="--profiles: artifact folders (default runs/profiles)")
    b.add_argument("--results", default=None, help="--profiles: folder for profiles.{json,md,png} (default --out)")
    b.add_argument("--cache", default=None, help="--profiles: step cache (default ~/.cache/edgerec/steps)")
    b.set_defaults(func=cmd_bench)

    u = sub.add_parser("update", help="fine-tune a checkpoint on new interactions (new users / items), gated")
    from edgerec.update_cli import add_arguments as update_arguments

    update_arguments(u)
    u.add_argument("--columns", type=_columns, default=None, help="CSV/Parquet column names, e.g. user=uid,item=iid")
    u.set_defaults(func=cmd_update)

    dm = sub.add_parser("delta", help="the small update from one phone bundle to the next (same layout)")
    dm.add_argument("--from", dest="parent", required=True, help="the bundle the phones have")
    dm.add_argument("--to", dest="child", required=True, help="the new bundle (exported from the updated model)")
    dm.add_argument("--out", required=True, help="delta folder to write")
    dm.set_defaults(func=cmd_delta)
    da = sub.add_parser(
        "apply-delta", help="apply a delta to a phone bundle, checking the hash chain (as the app does)"
    )
    da.add_argument("--bundle", required=True, help="the bundle folder to update")
    da.add_argument("--delta", required=True, help="the delta folder (from `edgerec delta`)")
    da.add_argument("--out", required=True, help="where the updated bundle goes (may be --bundle: replaced atomically)")
    da.set_defaults(func=cmd_apply_delta)

    e = sub.add_parser("evaluate", help="evaluate a checkpoint (sampled protocol and full ranking)")
    e.add_argument("--model", required=True, help="checkpoint folder written by `edgerec train`")
    _data_args(e)
    e.add_argument("--json", help="also write the metrics to this JSON file")
    e.set_defaults(func=cmd_evaluate)
    return ap


def _progress() -> tuple[Callable[[str, int, int, dict], None] | None, Callable[[], None]]:
    """A rich progress bar on a terminal; plain per-epoch log lines elsewhere."""
    if not sys.stderr.isatty():
        return None, lambda: None
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[info]}"),
        TimeRemainingColumn(),
        transient=True,
    )
    bar.start()
    tasks: dict[tuple[str, int], int] = {}

    def update(stage: str, done: int, total: int, info: dict) -> None:
        key = (stage, int(info.get("epoch", 0)))
        if key not in tasks:
            tasks[key] = bar.add_task(f"{stage} epoch {key[1]}", total=total, info="")
        text = f"loss {info['loss']:.4f}  {info['samples_per_s']:,.0f} samples/s"
        bar.update(tasks[key], completed=done, info=text)

    return update, bar.stop


def _load_data(args: argparse.Namespace):
    from edgerec.data import Columns, load_dataset

    if args.data is None:  # an updated checkpoint carries its data (grown id maps: no file on disk matches them)
        model = getattr(args, "model", None)
        if model and (Path(model) / "data.safetensors").is_file():
            from edgerec.model import checkpoint

            log.info("using the data stored in %s", model)
            stored = checkpoint.stored_data(checkpoint.load(model), model)
            assert stored is not None
            return stored
        args.data = "synthetic"
    log.info("loading %s", args.data)
    ds = load_dataset(args.data, seed=args.split_seed, columns=args.columns or Columns())
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


def _metrics_table(title: str, rows: dict[str, dict]) -> None:
    from rich.table import Table

    from edgerec.io import console

    table = Table(title=title)
    for col in ("model", "HR@10", "NDCG@10", "full HR@10", "full NDCG@10"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for name, m in rows.items():
        table.add_row(name, *(f"{m[k]:.4f}" for k in ("hr@10", "ndcg@10", "full_hr@10", "full_ndcg@10")))
    console().print(table)


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from edgerec.metrics import evaluate, item_pop_scorer
    from edgerec.model import checkpoint
    from edgerec.model.config import TrainConfig, from_flags
    from edgerec.model.training import train

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = from_flags(TrainConfig, args)
    cfg.check()
    ds = _load_data(args)
    update, stop = _progress()
    try:
        model, report = train(ds, args.model, args.factors, args.layers, args.pretrain, cfg, update)
    finally:
        stop()
    report["itempop"] = evaluate(item_pop_scorer(ds), ds)
    report["command"] = {
        "model": args.model,
        "factors": args.factors,
        "layers": list(args.layers),
        "pretrain": args.pretrain,
        "data": args.data,
        "split_seed": args.split_seed,
    }
    out = checkpoint.save(args.out, model, ds, report=report)
    _metrics_table(
        f"{args.model} on {ds.name} (test, {report['train_seconds']:.0f}s training)",
        {args.model: report["metrics"], "ItemPop": report["itempop"]},
    )
    print(f"wrote {out}/ (model.safetensors, config.json, id_maps.json, metrics.json)")
    return 0


def cmd_compress(args: argparse.Namespace) -> int:
    from edgerec.compress import cli as compress_cli

    ds = _load_data(args)
    update, stop = _progress()
    try:
        return compress_cli.run(args, ds, update)
    finally:
        stop()


def cmd_export(args: argparse.Namespace) -> int:
    from edgerec.export.cli import run

    return run(args, _load_data(args))


def cmd_bench(args: argparse.Namespace) -> int:
    from edgerec.bench.cli import run

    return run(args)


def cmd_update(args: argparse.Namespace) -> int:
    from edgerec.update_cli import run

    update, stop = _progress()
    try:
        return run(args, update)
    finally:
        stop()


def cmd_delta(args: argparse.Namespace) -> int:
    from edgerec.runtime.delta import make_delta

    d = make_delta(args.parent, args.child, args.out)
    share = d["patch_bytes"] / d["model_bytes"]
    sizes = f"{d['patch_bytes']:,} of {d['model_bytes']:,} model bytes ({share:.1%})"
    print(f"wrote {args.out}/: {len(d['ranges'])} byte ranges, {sizes}; version {d['parent']['version']} -> "
          f"{d['child']['version']}")  # fmt: skip
    return 0


def cmd_apply_delta(args: argparse.Namespace) -> int:
    from edgerec.runtime.delta import apply_delta

    m = apply_delta(args.bundle, args.delta, args.out)
    print(f"wrote {args.out}/: bundle version {m.get('version')} (model sha256 checked against the delta)")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from edgerec.compress.quantize import QuantizedNCF, load_spec
    from edgerec.io import write_json
    from edgerec.metrics import evaluate, item_pop_scorer
    from edgerec.model import checkpoint
    from edgerec.model.training import torch_scorer

    ckpt = checkpoint.load(args.model)
    ds = _load_data(args)
    ckpt.check_data(ds)
    model, name = ckpt.model, ckpt.model.arch.kind
    spec = load_spec(Path(args.model))
    if spec is not None:  # a quantized checkpoint is measured as it will run, not as its fp32 weights
        model, name = QuantizedNCF(ckpt.model, spec), f"{name} ({spec.config.embeddings} emb, {spec.config.mlp} MLP)"
    metrics = evaluate(torch_scorer(model), ds)
    _metrics_table(f"{args.model} on {ds.name} (test)", {name: metrics, "ItemPop": evaluate(item_pop_scorer(ds), ds)})
    if args.json:
        write_json(Path(args.json), metrics)
    else:
        print(json.dumps(metrics))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:  # Ctrl-C while the parser is built (it imports the subcommands' modules) is an interruption too
        args = build_parser().parse_args(argv)
        level = logging.WARNING if args.quiet else logging.INFO
        logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
        return int(args.func(args))
    except EdgerecError as e:
        print(f"edgerec: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
