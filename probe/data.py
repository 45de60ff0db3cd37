"""The probe's image transforms, on the labelled datasets of `sslx.common.labelled`."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2


class Transformed(Dataset):
    def __init__(self, base: Dataset, transform) -> None:
        self.base = base
        self.transform = transform

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image, label = self.base[i]
        return self.transform(image), label


def train_transform(size: int, crop_scale_min: float = 0.08) -> v2.Transform:
    """The probe training augmentation: RandomResizedCrop + horizontal flip."""
    return v2.Compose(
        [
            v2.RandomResizedCrop(size, scale=(crop_scale_min, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
        ]
    )


def eval_transform(size: int, crop_ratio: float = 0.875, ten_crop: bool = False) -> v2.Transform:
    """Resize the short side to size / crop_ratio, then one centre crop (or ten crops).
    crop_ratio 0.875 is ImageNet's 256 -> 224; 1.0 resizes whole images (CIFAR)."""
    resize = v2.Resize(round(size / crop_ratio), antialias=True)
    if ten_crop:
        # A plain callable: v2.Lambda would apply torch.stack to each crop on its own.
        return v2.Compose([resize, v2.TenCrop(size), _stack])
    return v2.Compose([resize, v2.CenterCrop(size)])


def _stack(crops: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """TenCrop's ten crops -> one 10 x C x S x S tensor (FrozenTrunk flattens the crops)."""
    return torch.stack(crops)
