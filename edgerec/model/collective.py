"""What training does across the ranks of a process group, each with the group passed in: a fit without one (None)
trains alone, so no call can pick up a group some other code in the process happened to join."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from edgerec.model.ncf import NCF

if TYPE_CHECKING:
    from torch.distributed import ProcessGroup


def rank_and_world(group: ProcessGroup | None) -> tuple[int, int]:
    """(this process's rank, the group's size); (0, 1) alone."""
    if group is None:
        return 0, 1
    import torch.distributed as dist

    return dist.get_rank(group), dist.get_world_size(group)


def fewest(n: int, group: ProcessGroup | None) -> int:
    """The smallest `n` over the ranks, so that every rank takes the same number of steps (a rank that stopped
    early would leave the others blocked in an all_reduce)."""
    if rank_and_world(group)[1] == 1:
        return n
    import torch.distributed as dist

    t = torch.tensor([n], dtype=torch.int64)
    dist.all_reduce(t, op=dist.ReduceOp.MIN, group=group)
    return int(t)


def average_gradients(model: NCF, group: ProcessGroup) -> None:
    """DDP's gradient averaging, done by hand (the tables' gradients are assigned by RowGrads, not by autograd
    hooks): one all_reduce of every gradient flattened together, then divided by the world size. Every rank then
    takes the same optimizer step, so the weights stay identical on all ranks."""
    import torch.distributed as dist
    from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

    grads = [p.grad for p in model.parameters() if p.grad is not None]
    flat = _flatten_dense_tensors(grads)
    dist.all_reduce(flat, group=group)
    flat.div_(dist.get_world_size(group))
    for g, reduced in zip(grads, _unflatten_dense_tensors(flat, grads), strict=True):
        g.copy_(reduced)
