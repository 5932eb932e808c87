"""Knowledge distillation: train a student on the labels and on a teacher's scores.

loss = BCE(student, labels) + weight * T^2 * BCE(sigmoid(student / T), sigmoid(teacher / T))   (every batch pair)
       + rank_weight * BCE(student(u, j), 1),  j drawn from the teacher's top-K unseen items of u with
         probability proportional to exp(-rank / rank_lambda)   (ranking distillation, Tang & Wang 2018)

The student can be the pruned teacher (recovery fine-tuning) or a smaller fresh NeuMF. A feature student
(edgerec.model.features.FeatureNCF) trains as training does, id dropout included, so that its feature path alone still
scores an id it never saw; a feature teacher is read folded (the same scores, faster).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch.nn import functional as F

from edgerec.compression.config import DistillConfig
from edgerec.data.split import Dataset
from edgerec.errors import EdgerecError
from edgerec.metrics import catalog_top_k
from edgerec.model.features import fold
from edgerec.model.ncf import NCF
from edgerec.model.training import FitOptions, TrainConfig, TrainResult, fit, torch_scorer


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * BCE between the temperature-softened probabilities (zero when the student equals the teacher's
    logits up to the teacher's own entropy, which is constant)."""
    t = temperature
    return t * t * F.binary_cross_entropy_with_logits(student_logits / t, torch.sigmoid(teacher_logits / t))


def distill(
    student: NCF,
    teacher: NCF,
    ds: Dataset,
    cfg: DistillConfig = DistillConfig(),
    train_cfg: TrainConfig = TrainConfig(),
    progress: Callable[[str, int, int, dict], None] | None = None,
) -> TrainResult:
    """Train `student` (in place, and returned in the result) from `teacher` on ds.train."""
    if (student.arch.n_users, student.arch.n_items) != (teacher.arch.n_users, teacher.arch.n_items):
        raise EdgerecError("student and teacher must cover the same users and items")
    teacher = copy.deepcopy(fold(teacher)).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    topk = (
        torch.from_numpy(catalog_top_k(torch_scorer(teacher), ds, cfg.rank_k))
        if cfg.rank_k and cfg.rank_weight
        else None
    )
    rank_p = torch.exp(-torch.arange(cfg.rank_k, dtype=torch.float32) / cfg.rank_lambda) if topk is not None else None
    gen = torch.Generator().manual_seed(train_cfg.seed)

    def extra(model: NCF, u: torch.Tensor, i: torch.Tensor, y: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        loss = logits.new_zeros(())
        if cfg.weight:
            with torch.no_grad():
                t_logits = teacher(u, i)
            loss = loss + cfg.weight * distillation_loss(logits, t_logits, cfg.temperature)
        if topk is not None and rank_p is not None:
            ranks = torch.multinomial(rank_p, len(u), replacement=True, generator=gen)  # [B]
            j = topk[u, ranks]
            loss = loss + cfg.rank_weight * F.binary_cross_entropy_with_logits(model(u, j), torch.ones(len(u)))
        return loss

    return fit(student, ds, train_cfg, FitOptions("distill", progress, extra_loss=extra))
