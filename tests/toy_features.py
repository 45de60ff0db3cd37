"""Small feature sets whose geometry is known, for the kNN and clustering tests. Import it
after `sys.path.insert(0, str(Path(__file__).parents[1]))` (from tests/<package>/)."""

from __future__ import annotations

import math

import torch


def on_circle(degrees: list[float]) -> torch.Tensor:
    """Unit 2-D points at these angles; cosine similarity is the cosine of the angle."""
    radians = torch.tensor(degrees, dtype=torch.float64) * math.pi / 180
    return torch.stack([radians.cos(), radians.sin()], 1).float()


def blobs(n_per: int, classes: int, dims: int, spread: float, seed: int):
    """Gaussian blobs around random centres (the same for every seed), float16 like the
    feature cache."""
    centres = torch.randn(classes, dims, generator=torch.Generator().manual_seed(99))
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(classes).repeat(n_per)
    x = centres[labels] + spread * torch.randn(len(labels), dims, generator=generator)
    return x.half(), labels
