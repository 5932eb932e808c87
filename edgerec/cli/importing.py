"""`edgerec import`: a model trained elsewhere -> an edgerec checkpoint folder (checked, optionally evaluated)."""

from __future__ import annotations

import argparse

from edgerec.cli.common import data_args, load_data, metrics_table, table

FORMATS_HELP = (
    "keras-h5: the NCF authors' Keras weights (GMF, MLP or NeuMF .h5; or a GMF file and an MLP file, joined as the "
    "paper's pre-training does); recbole: RecBole's NeuMF checkpoint .pth [and its saved Dataset file for the ids]; "
    "dle: NVIDIA DeepLearningExamples' NCF model.pth; state-dict: any PyTorch NeuMF state_dict or safetensors file "
    "with --map"
)


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import",
        help="import an NCF trained elsewhere (Keras h5, RecBole, NVIDIA DLE, any state_dict) as a checkpoint",
        description="Read a foreign NCF without running code from its files, map it onto edgerec's NeuMF, check that "
        "its logits equal the source's (1e-5) and write a checkpoint every other command takes. " + FORMATS_HELP,
    )
    p.add_argument("--format", required=True, choices=["keras-h5", "recbole", "dle", "state-dict"], help=FORMATS_HELP)
    p.add_argument("sources", nargs="+", metavar="SRC", help="the model file(s)")
    p.add_argument("--id-maps", default=None, help='JSON {"users": [...], "items": [...]}: original ids by table row')
    p.add_argument(
        "--map",
        default=None,
        help="state-dict: role=KEY,... for gmf_user, gmf_item, mlp_user, mlp_item (tables), mlp (the Linear layers' "
        "module prefix, or prefixes joined by +) and predict (the output layer's prefix); or a YAML file of them",
    )
    p.add_argument(
        "--concat",
        default=None,
        choices=["gmf-first", "mlp-first"],
        help="state-dict: the order the output layer reads the two towers (default gmf-first)",
    )
    data_args(p, required=False, default_note=" (optional: evaluate the imported model on it)")
    p.add_argument("--out", required=True, help="checkpoint folder to write (replaced atomically)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from edgerec import api
    from edgerec.importers.config import ImportConfig, parse_map

    roles = parse_map(args.map) if args.map else None
    concat = args.concat or ((roles or {}).pop("concat", None)) or "gmf-first"
    cfg = ImportConfig(format=args.format, map=roles, concat=concat, id_maps=args.id_maps)
    ds = load_data(args) if args.data else None
    ck = api.import_model(args.sources, cfg, ds)
    out = ck.save(args.out)
    info = ck.config["imported"]
    arch, check = ck.model.arch, info["fidelity"]
    layers = ",".join(str(n) for n in arch.mlp_layers) or "-"
    rows = [
        ["format", info["format"]],
        ["model", f"{arch.kind}: {arch.n_users} users, {arch.n_items} items, GMF {arch.gmf_dim}, MLP {layers}"],
        ["fidelity", f"max |logit error| {check['max_abs_logit_error']:.2e} on {check['pairs']} pairs"],
        ["ids", info["id_maps"]],
    ]
    table(f"imported {', '.join(args.sources)}", ("", "value"), rows, left=("", "value"))
    if ds is not None:
        metrics_table(f"imported model on {ds.name} (test)", {arch.kind: ck.metrics})
    print(f"wrote {out}/ (model.safetensors, config.json, id_maps.json, metrics.json)")
    return 0
