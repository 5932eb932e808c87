"""Training in several processes on torch.distributed (gloo on CPUs, NCCL on GPUs).

`edgerec train --nproc N` (TrainConfig(nproc=N)) starts N worker processes on this machine; each joins one
process group, trains the same initial model on its own shard of the positives with its own negatives (the global
batch, cfg.batch_size, split over the ranks), and averages the gradients of every step with one all_reduce, so all
ranks take the same optimizer steps: in expectation the same training as one process with that batch. Rank 0
hands the selected weights back; the parent evaluates and writes the checkpoint, once, atomically. A rank that dies
stops the others and the run fails with one line; nothing is written.

On several machines, launch `edgerec train` itself with torchrun: it reads RANK / WORLD_SIZE / MASTER_ADDR /
MASTER_PORT (torchrun's rendezvous), joins that group (`torchrun_group`) and passes it to edgerec.train, which
trains as that rank; rank 0 writes --out. Training never joins a group by itself: a fit without one trains alone.

    torchrun --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \\
        -m edgerec.entry train --data DATA --out runs/ddp
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgerec.data.split import Dataset
from edgerec.errors import EdgerecError
from edgerec.model.config import TrainConfig

if TYPE_CHECKING:
    from torch.distributed import ProcessGroup

RESULT, STATE = "result.json", "model.safetensors"


def under_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _backend() -> str:
    import torch

    return "nccl" if torch.cuda.is_available() else "gloo"


def init_group(rank: int, world: int, init_method: str) -> ProcessGroup:
    """Join the default process group as `rank` of `world`; the group, for the caller to hand to training."""
    import torch.distributed as dist

    dist.init_process_group(_backend(), init_method=init_method, rank=rank, world_size=world,
                            timeout=timedelta(seconds=120))  # fmt: skip
    group = dist.group.WORLD
    if group is None:
        raise RuntimeError("torch.distributed has no default group right after init_process_group")
    return group


@contextmanager
def torchrun_group() -> Iterator[ProcessGroup | None]:
    """Under torchrun, this process's rank in torchrun's process group (env:// rendezvous), left when the block
    ends; otherwise None (train alone). The CLI joins here, not edgerec.train: a library call never changes the
    process's distributed state behind its caller's back."""
    if not under_torchrun():
        yield None
        return
    import torch.distributed as dist

    group = init_group(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), "env://")
    try:
        yield group
    finally:
        dist.destroy_process_group()


def _worker(rank: int, world: int, init_method: str, ds: Dataset, cfg: TrainConfig, out: str) -> None:
    import torch
    import torch.distributed as dist
    from safetensors.torch import save_file

    from edgerec.model.training import build_model, fit

    torch.set_num_threads(1)  # one core per rank
    group = init_group(rank, world, init_method)
    try:
        torch.manual_seed(cfg.seed)  # the same initial weights on every rank
        res = fit(build_model(ds, cfg), ds, cfg, group=group)
        if rank == 0:
            save_file({k: v.contiguous() for k, v in res.model.state_dict().items()}, str(Path(out) / STATE))
            (Path(out) / RESULT).write_text(json.dumps(res.summary() | {"samples_per_s": res.samples_per_s}))
    finally:
        dist.destroy_process_group()


def fit_nproc(ds: Dataset, cfg: TrainConfig) -> tuple[Any, dict]:
    """(the trained model, its fit summary) from cfg.nproc worker processes on this machine."""
    import multiprocessing as mp

    from safetensors.torch import load_file

    from edgerec.model.training import build_model

    cores = os.cpu_count() or 1
    if cfg.nproc > cores:
        raise EdgerecError(f"--nproc {cfg.nproc} is more processes than this machine's {cores} cores")
    out = Path(tempfile.mkdtemp(prefix="edgerec-ddp-"))
    ctx = mp.get_context("spawn")
    init = f"tcp://127.0.0.1:{_port()}"
    procs = [ctx.Process(target=_worker, args=(r, cfg.nproc, init, ds, cfg, str(out)), daemon=True)
             for r in range(cfg.nproc)]  # fmt: skip
    try:
        for p in procs:
            p.start()
        while any(p.is_alive() for p in procs) and all(p.exitcode in (None, 0) for p in procs):
            time.sleep(0.2)
        dead = [(r, p.exitcode) for r, p in enumerate(procs) if p.exitcode not in (None, 0)]
        if dead:
            # the cause first: a rank killed by a signal from outside, not one that aborted or raised when it lost its
            # peers (SIGABRT, an error exit)
            rank, code = min(dead, key=lambda d: (not (d[1] < 0 and d[1] != -signal.SIGABRT), d[0]))
            raise EdgerecError(
                f"training rank {rank} of {cfg.nproc} died (exit code {code}); the other ranks were stopped "
                "and nothing was written"
            )
        if not (out / RESULT).is_file():
            raise EdgerecError(f"training rank 0 of {cfg.nproc} wrote no result; nothing was written")
        model = build_model(ds, cfg)
        model.load_state_dict(load_file(str(out / STATE)))
        return model.eval(), json.loads((out / RESULT).read_text())
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
            p.join(10)
        shutil.rmtree(out, ignore_errors=True)
