"""The optimizer step's embedding side: row gradients instead of autograd's dense table gradients, the L2 on the
rows a batch read, and the optimizers that consume them (dense Adam / SGD / Adagrad, or SparseAdam for lazy-adam).

Apart from the training loop because these three must agree on one contract: what a table's `.grad` holds after
`RowGrads.scatter` (a dense buffer for Adam, SGD and Adagrad, a sparse tensor for SparseAdam).
"""

from __future__ import annotations

import torch

from edgerec.errors import EdgerecError
from edgerec.model.config import TrainConfig
from edgerec.model.ncf import NCF


def optimizers(model: NCF, cfg: TrainConfig) -> list[torch.optim.Optimizer]:
    if cfg.optimizer == "sgd":
        return [torch.optim.SGD(model.parameters(), lr=cfg.lr)]
    if cfg.optimizer == "adam":
        return [torch.optim.Adam(model.parameters(), lr=cfg.lr, fused=True)]  # 8x faster step on CPU
    if cfg.optimizer == "adagrad":  # no moments: rows with a zero gradient (not read by the batch) stay put
        return [torch.optim.Adagrad(model.parameters(), lr=cfg.lr, fused=True)]
    tables = {id(t.weight) for t in model.tables().values()}
    layers = [p for p in model.parameters() if id(p) not in tables]
    return [
        torch.optim.SparseAdam([t.weight for t in model.tables().values()], lr=cfg.lr),
        *([torch.optim.Adam(layers, lr=cfg.lr, fused=True)] if layers else []),
    ]


def add_l2_grad(rows: dict[str, torch.Tensor], l2: float) -> None:
    """Add the gradient of l2 * (mean over the batch of each gathered row's squared norm) to the rows' gradients.

    The same update as that penalty in the loss, without its autograd graph (which cost 20 % of the step time of
    NeuMF-8 at batch 256); the logged loss is then the BCE alone.
    """
    for r in rows.values():
        if r.grad is not None:
            r.grad.add_(r.detach(), alpha=2 * l2 / len(r))


class RowGrads:
    """Embedding gradients without a dense backward.

    Autograd's embedding backward zero-fills a dense gradient the size of every table on every step, which at
    batch 256 was a quarter of the step time. Here the batch's rows are gathered as leaf tensors; after backward
    their gradients are added into one persistent dense buffer per table, in which only the rows touched by the
    previous step are cleared. The tables then hold exactly the gradient autograd would have produced, so dense
    Adam takes the same steps as with autograd's gradients.
    """

    def __init__(self, model: NCF, row_mask: dict[str, torch.Tensor] | None = None, sparse: bool = False) -> None:
        self.tables = model.tables()
        # rows outside the mask get an exactly zero gradient on every step, so Adam never moves them
        self.keep = {n: m.to(torch.float32)[:, None] for n, m in (row_mask or {}).items()}
        # sparse: the tables get sparse gradients of the batch's rows (for SparseAdam), no dense buffers at all
        self.sparse = sparse
        self.buffers = {} if sparse else {n: torch.zeros_like(t.weight) for n, t in self.tables.items()}
        self.dirty: dict[str, torch.Tensor | None] = dict.fromkeys(self.tables)
        self.rows: dict[str, torch.Tensor] = {}
        self.ids: dict[str, torch.Tensor] = {}

    def gather(self, users: torch.Tensor, items: torch.Tensor) -> dict[str, torch.Tensor]:
        self.ids = {n: users if n.endswith("_user") else items for n in self.tables}
        self.rows = {n: t.weight.detach().index_select(0, self.ids[n]).requires_grad_() for n, t in self.tables.items()}
        return self.rows

    def touched_everywhere(self) -> None:
        """The next step clears the whole buffers (after an all_reduce every rank's rows are in them)."""
        self.dirty = dict.fromkeys(self.tables)

    def scatter(self) -> None:
        if self.sparse:
            self._scatter_sparse()
            return
        for n, table in self.tables.items():
            buf, dirty = self.buffers[n], self.dirty[n]
            if dirty is None:
                buf.zero_()
            else:
                buf.index_fill_(0, dirty, 0.0)
            grad = self.rows[n].grad
            if grad is not None:
                buf.index_add_(0, self.ids[n], grad)
            self.dirty[n] = self.ids[n]
            if table.weight.grad is not None:  # another loss term read the table through the module
                buf.add_(table.weight.grad)
                self.dirty[n] = None
            if n in self.keep:
                buf.mul_(self.keep[n])
            table.weight.grad = buf

    def _scatter_sparse(self) -> None:
        for n, table in self.tables.items():
            if table.weight.grad is not None:
                raise EdgerecError("lazy-adam: a loss term read a whole embedding table; use --optimizer adam")
            grad = self.rows[n].grad
            if grad is None:
                continue
            if n in self.keep:
                grad = grad * self.keep[n][self.ids[n]]
            # duplicate rows of the batch are summed when SparseAdam coalesces the gradient
            table.weight.grad = torch.sparse_coo_tensor(
                self.ids[n][None], grad, table.weight.shape, check_invariants=False
            )
