"""The multi-view losses as small pure functions of tensors (each tested against a value
worked by hand in tests/train/ssl/test_losses.py). Computed in float32 under autocast.

Across ranks: `nt_xent` takes every rank's embeddings as its keys (gathered with their
gradients) and this rank's as its queries, so that the mean over ranks is the one-rank
loss of the global batch; the other losses are means over samples, which DDP's gradient
average already makes rank-independent.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def nt_xent(
    queries: tuple[torch.Tensor, torch.Tensor],
    keys: tuple[torch.Tensor, torch.Tensor],
    offset: int,
    temperature: float,
) -> torch.Tensor:
    """SimCLR's normalised-temperature cross-entropy (Chen et al. 2020, eq. 1).

    `queries` are this rank's two views' projections (b, d) each; `keys` are all ranks'
    (B, d) each, in which this rank's rows start at `offset`. Every query is classified
    against the 2B - 1 other keys; its positive is the same sample's other view. Returns
    the mean over the 2b queries.
    """
    q = F.normalize(torch.cat(queries).float(), dim=1)
    k = F.normalize(torch.cat(keys).float(), dim=1)
    b, total = len(queries[0]), len(keys[0])
    logits = q @ k.t() / temperature  # (2b, 2B)
    rows = torch.arange(2 * b, device=q.device)
    own = offset + rows % b + (rows >= b) * total  # each query's own column
    positive = offset + rows % b + (rows < b) * total  # its other view
    logits = logits.masked_fill(F.one_hot(own, 2 * total).bool(), float("-inf"))
    return F.cross_entropy(logits, positive)


def negative_cosine(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """SimSiam's D(p, z) = -cos(p, stopgrad(z)), averaged over samples (Chen & He 2021)."""
    return -F.cosine_similarity(p.float(), z.detach().float(), dim=1).mean()


def normalised_mse(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """BYOL's ||p/|p| - z/|z| ||^2 = 2 - 2 cos(p, z), z a target (no gradient), averaged
    over samples (Grill et al. 2020, eq. 2)."""
    return (2 - 2 * F.cosine_similarity(p.float(), z.detach().float(), dim=1)).mean()


def dino_loss(
    student: list[torch.Tensor],
    teacher: list[torch.Tensor],
    centre: torch.Tensor,
    student_temperature: float,
    teacher_temperature: float,
) -> torch.Tensor:
    """DINO's cross-entropy between the centred, sharpened teacher distribution of each
    global view and the student's of every other view (Caron et al. 2021, Algorithm 1).

    `student` holds the logits of every view (globals first), `teacher` those of the
    global views; the mean over the (view, teacher view) pairs with different views.
    """
    targets = [
        F.softmax((t.float() - centre) / teacher_temperature, dim=1).detach() for t in teacher
    ]
    logs = [F.log_softmax(s.float() / student_temperature, dim=1) for s in student]
    terms = [
        -(target * log).sum(1).mean()
        for i, target in enumerate(targets)
        for j, log in enumerate(logs)
        if i != j
    ]
    return torch.stack(terms).mean()


@torch.no_grad()
def updated_centre(
    centre: torch.Tensor, teacher_sum: torch.Tensor, count: int, momentum: float
) -> torch.Tensor:
    """DINO's centre: an EMA of the teacher's mean output; `teacher_sum` is the sum of the
    teacher's logits over the `count` rows of the global batch (summed over ranks)."""
    return centre * momentum + teacher_sum / count * (1 - momentum)
