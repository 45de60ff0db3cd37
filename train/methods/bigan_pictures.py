"""BiGAN's pictures: image grids as PNG files (written atomically) and a fixed batch of patches."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.utils import make_grid

from sslx.atomic import atomic_write
from sslx.train.crops import draw_crop


def to_grid(images: torch.Tensor, nrow: int = 8) -> np.ndarray:
    """Images in [-1, 1] (N, 3, H, W) -> one uint8 HWC grid, `nrow` images per row."""
    grid = make_grid(images.detach().float().cpu().clamp(-1, 1), nrow=nrow, padding=2,
                     normalize=True, value_range=(-1, 1))  # fmt: skip
    return grid.mul(255).add(0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def save_png(grid: np.ndarray, path: Path) -> None:
    """Write a PNG atomically, so an interrupted run never leaves half a picture."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb") as f:
        Image.fromarray(grid).save(f, format="PNG")


def first_patches(shard: str | Path, n: int, patch_size: int, size: int) -> torch.Tensor | None:
    """The first n patches of a shard, whole (no train crop) at `size` px: uint8 (n, 3, S, S).

    The same patches every epoch and after every resume, whatever the data order. None if
    the shard yields none (its unreadable samples are reported by the loader anyway).
    """
    images = []
    try:
        with tarfile.open(shard) as tar:
            for member in tar:
                if len(images) == n:
                    break
                if not member.name.endswith(".jpg"):
                    continue
                jpeg = tar.extractfile(member).read()
                side = patch_size
                image = draw_crop(jpeg, 0, size=size, crop=None, shape=(side, side))
                if image is not None:
                    images.append(image)
    except (OSError, tarfile.TarError):
        pass
    if not images:
        return None
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
