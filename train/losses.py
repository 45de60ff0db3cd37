"""Losses and task constructions as pure functions of tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def rotate_batch(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image in all 4 rotations (0, 90, 180, 270 degrees counter-clockwise).

    Returns the 4N images, grouped by rotation, and labels 0-3 (rotation / 90 degrees),
    as in Gidaris et al. (2018).
    """
    n = images.shape[0]
    rotated = torch.cat([torch.rot90(images, k, dims=(2, 3)) for k in range(4)])
    labels = torch.arange(4, device=images.device).repeat_interleave(n)
    return rotated, labels


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy, computed in float32 whatever the autocast dtype."""
    return F.cross_entropy(logits.float(), labels)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Top-1 accuracy in [0, 1], as a detached scalar tensor."""
    return (logits.detach().argmax(1) == labels).float().mean()
