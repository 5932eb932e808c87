#!/usr/bin/env python
"""Describe the two files RecBole 1.2.1 wrote (checkpoint .pth and dataset pickle).

    /root/.cache/edgerec/recbole-venv/bin/python benchmarks/recbole/inspect_artifacts.py \
        [--metrics benchmarks/runs/recbole/recbole_metrics.json]

Writes benchmarks/runs/recbole/artifact_structure.json with, for each file:
  * the pickle globals it references (every GLOBAL / STACK_GLOBAL / INST opcode,
    collected with pickletools.genops; a torch zip checkpoint is opened and its
    data.pkl scanned), plus torch persistent-id storage types;
  * the top-level structure (checkpoint keys and value types; Dataset attributes,
    field2id_token / field2token_id shapes and heads).
Static part needs no RecBole; the loaded part uses the RecBole venv.
"""

from __future__ import annotations

import argparse
import io
import json
import pickletools
import sys
import zipfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RUNS = REPO / "benchmarks" / "runs" / "recbole"


STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING", "STRING"}


def pickle_globals(data: bytes) -> dict:
    """All module.name globals referenced by a pickle stream (protocol 0-5).

    GLOBAL/INST carry 'module name' as argument.  STACK_GLOBAL (protocol 4+) pops two
    strings, which are either pushed literally or fetched from the memo (BINGET), so we
    track a shadow of 'the last pushed values' and the memo (MEMOIZE / BINPUT).
    """
    found: Counter = Counter()
    last: list = []  # shadow of recent stack pushes (strings, or None for anything else)
    memo: dict = {}
    opcodes: Counter = Counter()
    for op, arg, _pos in pickletools.genops(io.BytesIO(data)):
        name = op.name
        opcodes[name] += 1
        if name in ("GLOBAL", "INST"):
            mod, nm = arg.split(" ", 1)
            found[f"{mod}.{nm}"] += 1
            last.append(None)
        elif name in STRING_OPS:
            last.append(arg if isinstance(arg, str) else arg.decode("latin-1"))
        elif name == "MEMOIZE":
            memo[len(memo)] = last[-1] if last else None
        elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
            memo[int(arg)] = last[-1] if last else None
        elif name in ("BINGET", "LONG_BINGET", "GET"):
            last.append(memo.get(int(arg)))
        elif name == "STACK_GLOBAL":
            mod, nm = last[-2], last[-1]
            found[f"{mod}.{nm}"] += 1
            last.append(None)
        else:
            last.append(None)
        if len(last) > 64:
            del last[:-8]
    return {
        "globals": dict(sorted(found.items())),
        "opcode_counts": {
            k: opcodes[k]
            for k in ("PROTO", "FRAME", "BINPERSID", "PERSID", "STACK_GLOBAL", "GLOBAL", "INST", "REDUCE", "BUILD")
            if k in opcodes
        },
    }


def recorded_globals_by_unpickling(path: Path) -> dict:
    """Ground truth for a plain pickle: every find_class call made while loading it."""
    import pickle

    seen: Counter = Counter()

    class Rec(pickle.Unpickler):
        def find_class(self, module, name):
            seen[f"{module}.{name}"] += 1
            return super().find_class(module, name)

    with open(path, "rb") as f:
        Rec(f).load()
    return dict(sorted(seen.items()))


def scan_file(path: Path) -> dict:
    raw = path.read_bytes()
    out = {"path": str(path), "bytes": len(raw)}
    if zipfile.is_zipfile(io.BytesIO(raw)):
        zf = zipfile.ZipFile(io.BytesIO(raw))
        names = zf.namelist()
        pkl = [n for n in names if n.endswith("data.pkl")]
        out["format"] = "torch zip (torch.save new format)"
        out["zip_members_head"] = names[:10]
        out["zip_member_count"] = len(names)
        out["data_pkl"] = pkl
        out.update(pickle_globals(zf.read(pkl[0])))
        out["pickle_protocol_first_byte"] = zf.read(pkl[0])[:2].hex()
    else:
        out["format"] = "plain pickle"
        out["pickle_protocol_first_byte"] = raw[:2].hex()
        out.update(pickle_globals(raw))
        try:
            out["globals_recorded_by_find_class"] = recorded_globals_by_unpickling(path)
        except Exception as e:  # needs recbole/pandas/numpy importable
            out["globals_recorded_by_find_class_error"] = repr(e)
    return out


def tname(x) -> str:
    t = type(x)
    return f"{t.__module__}.{t.__qualname__}"


def describe_loaded(ckpt_path: Path, ds_path: Path) -> dict:
    import pickle

    import torch

    info: dict = {}
    ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    c = {"top_level_type": tname(ck), "keys": {k: tname(v) for k, v in ck.items()}}
    c["epoch"] = ck.get("epoch")
    c["cur_step"] = ck.get("cur_step")
    c["best_valid_score"] = float(ck["best_valid_score"])
    c["state_dict"] = {k: [tname(v), list(v.shape), str(v.dtype)] for k, v in ck["state_dict"].items()}
    c["state_dict_type"] = tname(ck["state_dict"])
    op = ck.get("other_parameter")
    c["other_parameter"] = {"type": tname(op), "repr": repr(op)[:200]}
    cfg = ck["config"]
    c["config"] = {
        "type": tname(cfg),
        "attributes": sorted(vars(cfg).keys()),
        "final_config_dict_type": tname(getattr(cfg, "final_config_dict", None)),
        "n_final_config_keys": len(getattr(cfg, "final_config_dict", {}) or {}),
        "sample_values": {
            k: repr(cfg[k])
            for k in (
                "model",
                "dataset",
                "device",
                "MODEL_TYPE",
                "mf_embedding_size",
                "mlp_embedding_size",
                "mlp_hidden_size",
                "dropout_prob",
                "mf_train",
                "mlp_train",
                "USER_ID_FIELD",
                "ITEM_ID_FIELD",
            )
        },
    }
    c["optimizer"] = {"type": tname(ck["optimizer"]), "keys": list(ck["optimizer"].keys())}
    info["checkpoint"] = c

    with open(ds_path, "rb") as f:
        ds = pickle.load(f)
    d = {"type": tname(ds), "mro": [f"{k.__module__}.{k.__qualname__}" for k in type(ds).__mro__]}
    d["attributes"] = {k: tname(v) for k, v in sorted(vars(ds).items())}
    f2i = ds.field2id_token
    d["field2id_token"] = {
        "lives_at": "dataset.field2id_token (instance attribute of the pickled Dataset)",
        "type": tname(f2i),
        "fields": {
            k: {
                "type": tname(v),
                "dtype": str(getattr(v, "dtype", None)),
                "len": len(v),
                "head": [str(x) for x in v[:6]],
                "tail": [str(x) for x in v[-3:]],
                "index0": str(v[0]),
            }
            for k, v in f2i.items()
        },
    }
    f2t = ds.field2token_id
    d["field2token_id"] = {
        k: {"type": tname(v), "len": len(v), "head": dict(list(v.items())[:4])} for k, v in f2t.items()
    }
    d["uid_field"], d["iid_field"] = ds.uid_field, ds.iid_field
    d["user_num"], d["item_num"] = int(ds.user_num), int(ds.item_num)
    d["inter_feat_type"] = tname(ds.inter_feat)
    d["benchmark_filename_list"] = ds.benchmark_filename_list
    d["file_size_list"] = [int(x) for x in getattr(ds, "file_size_list", [])]
    d["config_type"] = tname(ds.config)
    d["logger"] = tname(getattr(ds, "logger", None))
    # NCF id == token; internal id differs (first-appearance order, 0 = '[PAD]').
    u_tok = f2i[ds.uid_field]
    i_tok = f2i[ds.iid_field]
    d["token_eq_internal_minus_1"] = {
        "user": bool(all(str(t) == str(k - 1) for k, t in enumerate(u_tok) if k > 0)),
        "item": bool(all(str(t) == str(k - 1) for k, t in enumerate(i_tok) if k > 0)),
    }
    info["dataset_pickle"] = d
    return info


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--metrics", type=Path, default=RUNS / "recbole_metrics.json")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    m = json.loads(args.metrics.read_text())
    ckpt, ds = Path(m["checkpoint_file"]), Path(m["dataset_pickle"])
    res = {"checkpoint_scan": scan_file(ckpt), "dataset_pickle_scan": scan_file(ds)}
    try:
        res.update(describe_loaded(ckpt, ds))
    except Exception as e:  # static scan still useful without RecBole
        res["load_error"] = repr(e)
    out = args.out or args.metrics.parent / "artifact_structure.json"
    out.write_text(json.dumps(res, indent=2, default=str))
    print(json.dumps(res, indent=2, default=str))
    print(f"[edgerec] wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
