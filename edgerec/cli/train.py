"""`edgerec train` and `edgerec evaluate`."""

from __future__ import annotations

import argparse
import json

from edgerec.cli.common import (
    data_args,
    from_flags,
    int_list,
    load_data,
    metrics_table,
    model_and_data,
    progress,
    rating_table,
)
from edgerec.model.config import (
    COLD_ITEM_EPOCHS,
    COLD_USER_EPOCHS,
    FEATURE_LOSS,
    ID_DROPOUT,
    FeaturesConfig,
    TrainConfig,
)


def add(sub: argparse._SubParsersAction) -> None:
    d = TrainConfig()
    t = sub.add_parser("train", help="train GMF / MLP / NeuMF and evaluate it on the held-out test items")
    data_args(t)
    t.add_argument("--model", default=d.model, choices=["gmf", "mlp", "neumf"], help="model type (default neumf)")
    t.add_argument("--factors", type=int, default=d.factors, help=f"predictive factors (default {d.factors})")
    t.add_argument("--layers", type=int_list, default=(), help="MLP input size then hidden sizes (default 8f,4f,2f,f)")
    t.add_argument("--pretrain", action="store_true", help="initialise NeuMF from separately trained GMF and MLP")
    t.add_argument(
        "--init",
        default=None,
        metavar="DIR",
        help="continue from this checkpoint's weights and id maps (e.g. one `edgerec import` wrote; the architecture "
        "flags are then not used)",
    )
    t.add_argument(
        "--optimizer",
        default=d.optimizer,
        choices=["adam", "sgd", "lazy-adam", "adagrad"],
        help=f"default {d.optimizer}; lazy-adam: only the rows a batch touches move (measured slower); adagrad: "
        "torch's Adagrad",
    )
    t.add_argument(
        "--objective",
        default=d.objective,
        choices=["implicit", "rating"],
        help="implicit (default): every interaction a positive, ranked; rating: regress the rating column (squared "
        "error) on a seeded 90/10 split of the rated rows, reported as RMSE / MAE",
    )
    t.add_argument(
        "--dropout",
        type=float,
        default=d.dropout,
        help=f"dropout after every hidden layer of the MLP tower while training, in [0, 1) (default {d.dropout})",
    )
    t.add_argument("--epochs", type=int, default=d.epochs, help=f"maximum epochs (default {d.epochs})")
    t.add_argument("--batch-size", type=int, default=None, help="default: automatic (~300 steps per epoch, 256..16384)")
    t.add_argument(
        "--lr", type=float, default=None, help="Adam learning rate (default: automatic, 2e-3 x sqrt(batch / 256))"
    )
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
    t.add_argument(
        "--user-features",
        default=None,
        metavar="FILE",
        help="user feature table (CSV, TSV, Parquet or MovieLens users.dat) keyed by original user id: each user "
        "is its id embedding plus an embedding bag over its features",
    )
    t.add_argument(
        "--item-features",
        default=None,
        metavar="FILE",
        help="item feature table (CSV, TSV, Parquet or MovieLens movies.dat) keyed by original item id",
    )
    t.add_argument(
        "--id-dropout",
        type=float,
        default=ID_DROPOUT,
        help=f"with features: the share of samples trained without their id embeddings (default {ID_DROPOUT})",
    )
    t.add_argument(
        "--item-id-dropout",
        type=float,
        default=None,
        help="with item features: the items' own id dropout (default: --id-dropout for both sides)",
    )
    t.add_argument(
        "--feature-loss",
        type=float,
        default=FEATURE_LOSS,
        metavar="WEIGHT",
        help="with features: every batch also scored by each side's features alone (its id embeddings left out), "
        f"that loss added times WEIGHT; 0: off (default {FEATURE_LOSS})",
    )
    t.add_argument(
        "--cold-item-epochs",
        type=int,
        default=COLD_ITEM_EPOCHS,
        metavar="N",
        help="with item features: after training, fit the item features alone for new items for at most N epochs, "
        f"every known item's scores unchanged; 0: off (default {COLD_ITEM_EPOCHS})",
    )
    t.add_argument(
        "--cold-user-epochs",
        type=int,
        default=COLD_USER_EPOCHS,
        metavar="N",
        help="with user features: after training, fit the user features alone for new users for at most N epochs, "
        f"every known user's scores unchanged; 0: off (default {COLD_USER_EPOCHS})",
    )
    t.add_argument(
        "--threads",
        type=int,
        default=0,
        help="CPU threads for PyTorch (default: the cores the 1-minute load average leaves free, at least 1)",
    )
    t.add_argument(
        "--nproc",
        type=int,
        default=d.nproc,
        help="training processes on torch.distributed (gloo on CPUs), each a shard of the data (default 1); "
        "on several machines launch with torchrun instead (see edgerec/model/distributed.py)",
    )
    t.add_argument("--out", required=True, help="checkpoint folder to write (replaced atomically)")
    t.set_defaults(run=run_train)

    e = sub.add_parser("evaluate", help="evaluate a checkpoint (sampled protocol and full ranking)")
    e.add_argument("--model", required=True, help="checkpoint folder written by `edgerec train` or `compress`")
    data_args(e, required=False, default_note=" (default: the data an updated --model stores)")
    e.add_argument("--json", help="also write the metrics to this JSON file")
    e.set_defaults(run=run_evaluate)


def run_train(args: argparse.Namespace) -> int:
    from edgerec import api

    features = None
    if args.user_features or args.item_features:
        features = FeaturesConfig(
            user=args.user_features,
            item=args.item_features,
            id_dropout=args.id_dropout,
            feature_loss=args.feature_loss,
            item_id_dropout=args.item_id_dropout,
            cold_item_epochs=args.cold_item_epochs,
            cold_user_epochs=args.cold_user_epochs,
        )
    cfg = from_flags(TrainConfig, args, features=features)
    ds = load_data(args)
    command = {"data": args.data, "split_seed": args.split_seed, "init": args.init}
    with progress(args.terminal) as update:
        ck = api.train_and_save(ds, args.out, cfg, update, args.init, args.threads, command)
    if ck is None:  # torchrun started every rank: rank 0 saves
        print(f"this rank is done; rank 0 writes {args.out}")
        return 0
    r = ck.report
    kind = ck.model.arch.kind
    title = f"{kind} on {ds.name} (test, {r['train_seconds']:.0f}s training)"
    if ck.objective == "rating":
        rating_table(f"{kind} on {ds.name} (held-out ratings, {r['train_seconds']:.0f}s training)",
                     {kind: r["metrics"], "global mean": r["global_mean"]})  # fmt: skip
    else:
        metrics_table(title, {kind: r["metrics"], "ItemPop": r["itempop"]})
    for side, fr in r.get("features", {}).items():
        columns = ", ".join(f"{c['name']} ({c['kind']})" for c in fr["columns"])
        print(f"{side} features: {fr['matched']} of {fr['ids']} {side}s matched; {columns}")
    for side in ("item", "user"):
        if (fit := r.get("stages", {}).get(f"cold_{side}s")) is not None:
            print(cold_fit_line(side, fit))
    print(f"wrote {args.out}/ (model.safetensors, config.json, id_maps.json, metrics.json)")
    return 0


def cold_fit_line(side: str, fit: dict) -> str:
    """One line on a cold fit (edgerec.model.cold_fit): the epoch kept, and for items how new ones are placed."""
    if not fit["kept_epoch"]:
        return f"cold-{side} fit: too few {side}s to hold some out; new {side}s placed by their feature bags"
    held = max(h["recall@10"] for h in fit["history"])
    line = f"cold-{side} fit: epoch {fit['kept_epoch']} of {len(fit['history'])} kept (held-out Recall@10 {held:.3f})"
    if k := fit.get("kept_neighbours"):
        placed = fit["neighbours"][str(k)]
        return f"{line}; new {side}s placed by their {k} nearest known {side}s (held-out {placed:.3f})"
    return f"{line}; new {side}s placed by their feature bags"


def run_evaluate(args: argparse.Namespace) -> int:
    from edgerec import api

    ck, ds = model_and_data(args)
    ev = api.evaluate(ck, ds)
    if ev.baseline == "ItemPop":
        metrics_table(f"{args.model} on {ds.name} (test)", {ev.model: ev.metrics, "ItemPop": ev.itempop})
    else:
        rating_table(f"{args.model} on {ds.name} (held-out ratings)", {ev.model: ev.metrics, ev.baseline: ev.itempop})
    if args.json:
        ev.save(args.json)
    else:
        print(json.dumps(ev.metrics))
    return 0
