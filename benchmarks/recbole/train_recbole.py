#!/usr/bin/env python
"""Train a real RecBole 1.2.1 NeuMF on MovieLens-1M (NCF paper split) with RecBole itself.

Run with the RecBole venv's python (see setup_venv.sh), NOT with the repo's .venv:

    /root/.cache/edgerec/recbole-venv/bin/python benchmarks/recbole/train_recbole.py

Everything derived from the data (atomic files, RecBole's dataset pickle, the checkpoint,
logs, metrics and reference predictions) is written under benchmarks/runs/recbole/
(gitignored): the MovieLens licence forbids redistributing the ratings.

Outputs (under benchmarks/runs/recbole/):
    dataset/ml1m/ml1m.{train,valid,test}.inter   RecBole atomic files (benchmark_filename)
    saved/NeuMF-<timestamp>.pth                    RecBole checkpoint (best valid NDCG@10)
    saved/ml1m-Dataset.pth                         RecBole's pickled Dataset (save_dataset)
    recbole_metrics.json                           metrics, epochs, timings, versions, config
    reference_pairs.json                           1,000 (user, item) pairs with predictions
    log/, log_tensorboard/                         RecBole's own logs (it writes them to cwd)
"""

# ruff: noqa: E402  (thread and weights_only settings must be in place before torch and RecBole are imported)
from __future__ import annotations

import os

# One thread: another engineer runs tests on this 2-core machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
# Trusted, self-produced checkpoint only: lets RecBole's internal torch.load work under
# torch>=2.6 (weights_only default).  We also load the checkpoint ourselves explicitly
# with weights_only=False and evaluate with load_best_model=False, so this is only a
# belt-and-braces setting confined to this process.
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

import argparse
import contextlib
import glob
import gzip
import json
import platform
import shutil
import sys
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)
with contextlib.suppress(RuntimeError):
    torch.set_num_interop_threads(1)

import recbole
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.data.interaction import Interaction
from recbole.model.general_recommender import NeuMF
from recbole.trainer import Trainer
from recbole.utils import init_logger, init_seed

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA = Path("/work/shared/data/ml-1m-ncf")
DEFAULT_RUNS = REPO / "benchmarks" / "runs" / "recbole"
DATASET_NAME = "ml1m"
HEADER = "user_id:token\titem_id:token\n"
N_REF_PAIRS = 1000
REF_SEED = 20240601


def write_atomic_files(data_dir: Path, out_dir: Path) -> dict:
    """NCF split -> RecBole benchmark atomic files (ml1m.train/valid/test.inter).

    valid = the LAST line of each user in ml-1m.train.rating (seed-free, deterministic);
    train = the remaining train lines; test = the ml-1m.test.rating pairs.
    Tokens are the NCF ids as strings.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    per_user: OrderedDict[str, list[str]] = OrderedDict()
    with gzip.open(data_dir / "ml-1m.train.rating.gz", "rt") as f:
        for line in f:
            parts = line.split("\t")
            if len(parts) < 2:
                continue
            u, i = parts[0].strip(), parts[1].strip()
            per_user.setdefault(u, []).append(i)
    n_train = n_valid = 0
    with (
        open(out_dir / f"{DATASET_NAME}.train.inter", "w") as ft,
        open(out_dir / f"{DATASET_NAME}.valid.inter", "w") as fv,
    ):
        ft.write(HEADER)
        fv.write(HEADER)
        for u, items in per_user.items():
            if len(items) < 2:  # keep lone interactions in train
                ft.write(f"{u}\t{items[0]}\n")
                n_train += 1
                continue
            for i in items[:-1]:
                ft.write(f"{u}\t{i}\n")
            n_train += len(items) - 1
            fv.write(f"{u}\t{items[-1]}\n")
            n_valid += 1
    n_test = 0
    test_users: list[str] = []
    test_items: list[str] = []
    with open(data_dir / "ml-1m.test.rating") as fin, open(out_dir / f"{DATASET_NAME}.test.inter", "w") as fo:
        fo.write(HEADER)
        for line in fin:
            parts = line.split("\t")
            if len(parts) < 2:
                continue
            u, i = parts[0].strip(), parts[1].strip()
            fo.write(f"{u}\t{i}\n")
            test_users.append(u)
            test_items.append(i)
            n_test += 1
    return {
        "n_train": n_train,
        "n_valid": n_valid,
        "n_test": n_test,
        "n_users_train_file": len(per_user),
        "test_users": test_users,
        "test_items": test_items,
    }


def read_test_negatives(data_dir: Path) -> dict[str, tuple[str, list[str]]]:
    """ml-1m.test.negative: '(u,i)\\tneg1\\t...neg99' -> {u: (i, [negs])}."""
    out = {}
    with open(data_dir / "ml-1m.test.negative") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if not parts or not parts[0].startswith("("):
                continue
            u, i = parts[0].strip("()").split(",")
            out[u.strip()] = (i.strip(), [p.strip() for p in parts[1:] if p.strip()])
    return out


def build_config(args, runs: Path) -> dict:
    return {
        # data
        "data_path": str(runs / "dataset"),
        "benchmark_filename": ["train", "valid", "test"],
        "USER_ID_FIELD": "user_id",
        "ITEM_ID_FIELD": "item_id",
        "load_col": {"inter": ["user_id", "item_id"]},
        # environment
        "checkpoint_dir": str(runs / "saved"),
        "save_dataset": True,
        "save_dataloaders": False,
        "seed": 0,
        "reproducibility": True,
        "use_gpu": False,
        "worker": 0,
        "show_progress": False,
        "log_wandb": False,
        "state": "INFO",
        # model: close to the NCF paper's NeuMF-8 (no pretraining)
        "mf_embedding_size": 8,
        "mlp_embedding_size": 32,
        "mlp_hidden_size": [32, 16, 8],
        "dropout_prob": 0.0,
        "mf_train": True,
        "mlp_train": True,
        "use_pretrain": False,
        # training
        "epochs": args.epochs,
        "train_batch_size": args.train_batch_size,
        "learner": "adam",
        "learning_rate": 1e-3,
        "weight_decay": 0.0,
        "train_neg_sample_args": {
            "distribution": "uniform",
            "sample_num": 4,
            "alpha": 1.0,
            "dynamic": False,
            "candidate_num": 0,
        },
        "eval_step": 1,
        "stopping_step": args.stopping_step,
        # evaluation: full ranking (benchmark files define the split; these keys are
        # still required by RecBole's config checks)
        "eval_args": {
            "split": {"RS": [0.8, 0.1, 0.1]},
            "group_by": "user",
            "order": "RO",
            "mode": "full",
        },
        "repeatable": False,
        "metrics": ["Hit", "NDCG"],
        "topk": [10],
        "valid_metric": "NDCG@10",
        "valid_metric_bigger": True,
        "eval_batch_size": args.eval_batch_size,
    }


def jsonable(x):
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, torch.Tensor):
        return x.tolist()
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    return repr(x)


def manual_logit(model: NeuMF, u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
    """Re-derive NeuMF.forward from its submodules, ending at predict_layer (no sigmoid)."""
    mf = model.user_mf_embedding(u) * model.item_mf_embedding(i)
    mlp = model.mlp_layers(torch.cat((model.user_mlp_embedding(u), model.item_mlp_embedding(i)), -1))
    return model.predict_layer(torch.cat((mf, mlp), -1)).squeeze(-1)


def ncf_protocol(model, dataset, negatives, uid_field, iid_field) -> dict:
    """Extra: the NCF paper's sampled protocol (test item + its 99 negatives), HR/NDCG@10."""
    tok_u = dataset.field2token_id[uid_field]
    tok_i = dataset.field2token_id[iid_field]
    hits, ndcgs, skipped = [], [], 0
    users = list(negatives.keys())
    bs = 256
    with torch.no_grad():
        for s in range(0, len(users), bs):
            uu, ii, rows = [], [], []
            for u in users[s : s + bs]:
                pos, negs = negatives[u]
                cands = [pos, *negs]
                if u not in tok_u or any(c not in tok_i for c in cands):
                    skipped += 1
                    continue
                rows.append(len(cands))
                uu.extend([tok_u[u]] * len(cands))
                ii.extend(tok_i[c] for c in cands)
            if not rows:
                continue
            inter = Interaction(
                {uid_field: torch.tensor(uu, dtype=torch.long), iid_field: torch.tensor(ii, dtype=torch.long)}
            )
            scores = model.predict(inter).double().numpy()
            off = 0
            for n in rows:
                sc = scores[off : off + n]
                off += n
                rank = int((sc[1:] > sc[0]).sum())  # 0-based rank of the positive
                hits.append(1.0 if rank < 10 else 0.0)
                ndcgs.append(1.0 / np.log2(rank + 2) if rank < 10 else 0.0)
    return {
        "hit@10": float(np.mean(hits)),
        "ndcg@10": float(np.mean(ndcgs)),
        "n_users": len(hits),
        "n_skipped": skipped,
        "note": "NCF paper protocol: rank of the test item among itself + 99 "
        "sampled negatives (ml-1m.test.negative); strict '>' ties favour the positive.",
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--runs-dir", type=Path, default=DEFAULT_RUNS)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--train-batch-size", type=int, default=256)
    ap.add_argument("--eval-batch-size", type=int, default=3706 * 64)
    ap.add_argument("--stopping-step", type=int, default=3)
    ap.add_argument(
        "--keep-old",
        action="store_true",
        help="keep earlier checkpoints / dataset pickle in saved/ "
        "(by default they are removed so the run is from scratch)",
    )
    args = ap.parse_args()
    # RecBole's Config also parses sys.argv ('--key=value'); keep it out of our flags.
    sys.argv = sys.argv[:1]

    t0 = time.time()
    runs = args.runs_dir.resolve()
    runs.mkdir(parents=True, exist_ok=True)
    saved = runs / "saved"
    if not args.keep_old and saved.exists():
        # create_dataset() would silently reuse a stale ml1m-Dataset.pth; start clean.
        for p in glob.glob(str(saved / "NeuMF-*.pth")) + glob.glob(str(saved / f"{DATASET_NAME}-*.pth")):
            os.remove(p)
    for d in ("log", "log_tensorboard"):
        if not args.keep_old and (runs / d).exists():
            shutil.rmtree(runs / d)
    # RecBole writes ./log and ./log_tensorboard relative to the cwd.
    os.chdir(runs)

    split = write_atomic_files(args.data_dir, runs / "dataset" / DATASET_NAME)
    print(
        f"[edgerec] atomic files: train={split['n_train']} valid={split['n_valid']} "
        f"test={split['n_test']} -> {runs / 'dataset' / DATASET_NAME}",
        flush=True,
    )

    cfg_dict = build_config(args, runs)
    config = Config(model="NeuMF", dataset=DATASET_NAME, config_dict=cfg_dict)
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)

    t_data = time.time()
    dataset = create_dataset(config)
    dataset_pickle = os.path.join(config["checkpoint_dir"], f"{config['dataset']}-{dataset.__class__.__name__}.pth")
    train_data, valid_data, test_data = data_preparation(config, dataset)
    t_data = time.time() - t_data
    print(
        f"[edgerec] dataset: users={dataset.user_num} items={dataset.item_num} "
        f"inter={dataset.inter_num} ({t_data:.1f}s)",
        flush=True,
    )

    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = NeuMF(config, train_data._dataset).to(config["device"])
    trainer = Trainer(config, model)

    # Record per-epoch validation results (RecBole only logs them).
    valid_history = []
    orig_valid_epoch = trainer._valid_epoch

    def _valid_epoch(valid_data, show_progress=False):
        score, result = orig_valid_epoch(valid_data, show_progress=show_progress)
        valid_history.append(
            {"epoch": len(valid_history), "score": float(score), **{k: float(v) for k, v in result.items()}}
        )
        print(
            f"[edgerec] valid epoch {len(valid_history) - 1}: {dict(result)} (elapsed {time.time() - t0:.0f}s)",
            flush=True,
        )
        return score, result

    trainer._valid_epoch = _valid_epoch

    t_fit = time.time()
    best_valid_score, best_valid_result = trainer.fit(train_data, valid_data, saved=True, show_progress=False)
    t_fit = time.time() - t_fit
    ckpt_file = trainer.saved_model_file

    # Load the best state ourselves (torch>=2.6: weights_only must be False for RecBole's
    # checkpoint, which pickles a recbole Config), then evaluate without RecBole reloading.
    ckpt = torch.load(ckpt_file, map_location="cpu", weights_only=False)
    model.load_state_dict(ckpt["state_dict"])
    model.load_other_parameter(ckpt.get("other_parameter"))
    model.eval()
    t_test = time.time()
    test_result = trainer.evaluate(test_data, load_best_model=False, show_progress=False)
    valid_result_best = trainer.evaluate(valid_data, load_best_model=False, show_progress=False)
    t_test = time.time() - t_test
    print(f"[edgerec] test (full ranking): {dict(test_result)}", flush=True)

    uid, iid = dataset.uid_field, dataset.iid_field
    model.eval()
    ncf = ncf_protocol(model, dataset, read_test_negatives(args.data_dir), uid, iid)
    print(f"[edgerec] NCF 99-negative protocol: hit@10={ncf['hit@10']:.4f} ndcg@10={ncf['ndcg@10']:.4f}", flush=True)

    # ---- reference pairs -------------------------------------------------------------
    rng = np.random.default_rng(REF_SEED)
    test_users = np.array(sorted(set(split["test_users"]), key=int))
    item_tokens = np.array([t for t in dataset.field2id_token[iid][1:]])  # drop '[PAD]'
    u_tok = rng.choice(test_users, size=N_REF_PAIRS, replace=True)
    i_tok = rng.choice(item_tokens, size=N_REF_PAIRS, replace=True)
    u_id = dataset.token2id(uid, u_tok.tolist())
    i_id = dataset.token2id(iid, i_tok.tolist())
    u_t = torch.as_tensor(u_id, dtype=torch.long)
    i_t = torch.as_tensor(i_id, dtype=torch.long)
    inter = Interaction({uid: u_t, iid: i_t})
    with torch.no_grad():
        pred = model.predict(inter)  # sigmoid(forward)
        fwd = model.forward(u_t, i_t)  # pre-sigmoid logit
        man = manual_logit(model, u_t, i_t)  # predict_layer output, by hand
        logit_from_pred = torch.logit(pred.double())  # float64 logit of predict()
    ref = {
        "description": "RecBole 1.2.1 NeuMF reference predictions. predict = sigmoid(forward); "
        "forward returns predict_layer(...).squeeze(-1), i.e. the logit.",
        "seed": REF_SEED,
        "sampling": "numpy default_rng(seed): users uniform with replacement over the test "
        "users' tokens, then items uniform with replacement over the dataset's item tokens "
        "(field2id_token['item_id'][1:], '[PAD]' excluded)",
        "n": N_REF_PAIRS,
        "checkpoint": ckpt_file,
        "user_tokens": u_tok.tolist(),
        "item_tokens": i_tok.tolist(),
        "user_internal_ids": u_id.tolist(),
        "item_internal_ids": i_id.tolist(),
        "predict": pred.double().tolist(),
        "forward_logit": fwd.double().tolist(),
        "predict_layer_logit_manual": man.double().tolist(),
        "logit_of_predict_float64": logit_from_pred.tolist(),
        "max_abs_forward_minus_manual": float((fwd - man).abs().max()),
        "max_abs_sigmoid_forward_minus_predict": float((torch.sigmoid(fwd) - pred).abs().max()),
        "dtype": str(pred.dtype),
    }
    with open(runs / "reference_pairs.json", "w") as f:
        json.dump(ref, f)

    # ---- metrics ---------------------------------------------------------------------
    epochs_run = len(trainer.train_loss_dict)
    metrics = {
        "model": "NeuMF",
        "dataset": DATASET_NAME,
        "test_full_ranking": {k: float(v) for k, v in test_result.items()},
        "valid_full_ranking_best": {k: float(v) for k, v in valid_result_best.items()},
        "best_valid_score_ndcg@10": float(best_valid_score),
        "best_valid_result": {k: float(v) for k, v in best_valid_result.items()},
        "ncf_protocol_99neg_test": ncf,
        "epochs_configured": args.epochs,
        "epochs_run": epochs_run,
        "best_epoch": int(ckpt["epoch"]),
        "early_stopped": epochs_run < args.epochs,
        "train_loss_per_epoch": {str(k): float(v) for k, v in trainer.train_loss_dict.items()},
        "valid_per_epoch": valid_history,
        "wall_time_s": {
            "total": time.time() - t0,
            "dataset_and_dataloaders": t_data,
            "fit": t_fit,
            "final_eval": t_test,
        },
        "threads": torch.get_num_threads(),
        "versions": {
            "recbole": recbole.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "pandas": __import__("pandas").__version__,
            "python": platform.python_version(),
        },
        "checkpoint_file": ckpt_file,
        "checkpoint_file_name": os.path.basename(ckpt_file),
        "dataset_pickle": dataset_pickle,
        "dataset_pickle_name": os.path.basename(dataset_pickle),
        "atomic_files_dir": str(runs / "dataset" / DATASET_NAME),
        "split": {k: v for k, v in split.items() if k not in ("test_users", "test_items")},
        "split_rule": "valid = last line of each user in ml-1m.train.rating; "
        "train = the rest; test = ml-1m.test.rating pairs",
        "dataset_stats": {
            "user_num_incl_pad": int(dataset.user_num),
            "item_num_incl_pad": int(dataset.item_num),
            "inter_num": int(dataset.inter_num),
        },
        "config_dict_passed": cfg_dict,
        "config_final": {
            k: jsonable(config[k])
            for k in sorted(
                set(cfg_dict)
                | {
                    "device",
                    "LABEL_FIELD",
                    "MODEL_TYPE",
                    "eval_type",
                    "train_neg_sample_args",
                    "valid_neg_sample_args",
                    "test_neg_sample_args",
                }
            )
            if k in config
        },
        "torch_weights_only_workaround": "checkpoint loaded with torch.load(weights_only=False) "
        "and trainer.evaluate(load_best_model=False); TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 set "
        "in this process only",
    }
    with open(runs / "recbole_metrics.json", "w") as f:
        json.dump(metrics, f, indent=2)

    print(f"[edgerec] RecBole checkpoint: {ckpt_file}")
    print(f"[edgerec] RecBole dataset pickle: {dataset_pickle}")
    print(f"[edgerec] metrics: {runs / 'recbole_metrics.json'}")
    print(f"[edgerec] reference pairs: {runs / 'reference_pairs.json'}")
    print(f"[edgerec] epochs run {epochs_run} (best {ckpt['epoch']}), total {time.time() - t0:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
