"""BiGAN's pictures: image grids as PNG files, written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.utils import make_grid

from sslx.atomic import atomic_write


def to_grid(images: torch.Tensor, nrow: int = 8) -> np.ndarray:
    """Images in [-1, 1] (N, 3, H, W) -> one uint8 HWC grid, `nrow` images per row."""
    grid = make_grid(
        images.detach().float().cpu().clamp(-1, 1),
        nrow=nrow,
        padding=2,
        normalize=True,
        value_range=(-1, 1),
    )
    return grid.mul(255).add(0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def save_png(grid: np.ndarray, path: Path) -> None:
    """Write a PNG atomically, so an interrupted run never leaves half a picture."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb") as f:
        Image.fromarray(grid).save(f, format="PNG")
