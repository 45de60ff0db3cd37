"""Labelled training data for `--method supervised`: the probe's datasets, seen as draws.

The paper's "full supervision" reference row trains the same AlexNet with labels. It
reads the datasets `sslx probe` reads (`sslx.probe.data`: ImageFolder trees and the CIFAR
pickles) through the same train/validation split, so with the same `--val-fraction` and
`--split-seed` the supervised network never sees the images it is later probed on.

Draw `i` of an epoch is training image `order[i]` (a permutation seeded by (seed, epoch)),
cropped with the run's crop parameters, which are a pure function of (seed, epoch, i)
exactly as for the shards (`crops.sample_crops`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from sslx.errors import InputError
from sslx.train.crops import CropConfig, crop_image, sample_crops


class LabelledData:
    """The training split of a labelled dataset: what the loop needs to know about it."""

    def __init__(
        self,
        dataset: str,
        data_dir: str,
        val_dir: str = "",
        val_fraction: float = 0.1,
        split_seed: int = 0,
    ) -> None:
        from sslx.probe.data import load_probe_data  # the probe owns the dataset readers

        if not data_dir:
            raise InputError("--method supervised needs --data-dir (and --dataset)")
        data = load_probe_data(
            dataset,
            Path(data_dir),
            val_dir=Path(val_dir) if val_dir else None,
            val_fraction=None if val_dir else val_fraction,
            split_seed=split_seed,
        )
        self.images = data.train  # items: (uint8 tensor 3 x H x W, label)
        self.classes = list(data.classes)
        self.info = data.info
        self.num_samples = len(self.images)
        self.labels = _labels(self.images)
        identity = {"info": data.info, "classes": self.classes, "labels": _digest(self.labels)}
        self.fingerprint = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def _labels(images) -> np.ndarray:
    """Labels without decoding any image (Subset of an ImageFolder or of CIFAR arrays)."""
    base, indices = images, None
    if isinstance(images, torch.utils.data.Subset):
        base, indices = images.dataset, np.asarray(images.indices)
    targets = np.asarray(base.targets, dtype=np.int64)
    return targets if indices is None else targets[indices]


def _digest(labels: np.ndarray) -> str:
    return hashlib.sha256(labels.astype(np.int64).tobytes()).hexdigest()


class LabelledDraws(torch.utils.data.Dataset):
    """One epoch of a labelled dataset: draw i -> (image uint8 HWC, index, label, error)."""

    def __init__(
        self, data: LabelledData, *, input_size: int, crop: CropConfig, seed: int, epoch: int
    ) -> None:
        self.data, self.input_size, self.crop = data, input_size, crop
        self.seed, self.epoch = seed, epoch
        self.order = np.random.default_rng([seed, epoch, 1]).permutation(data.num_samples)

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, i: int) -> tuple[np.ndarray | None, int, int, str | None]:
        index = int(self.order[i])
        image, label = self.data.images[index]
        rgb = image.permute(1, 2, 0).numpy()
        height, width = rgb.shape[:2]
        box = sample_crops(self.seed, self.epoch, np.array([i]), height, width, self.crop)
        out = crop_image(
            rgb, int(box.x0[0]), int(box.y0[0]), int(box.w[0]), int(box.h[0]),
            bool(box.flip[0]), self.input_size,
        )  # fmt: skip
        return out, index, int(label), None
