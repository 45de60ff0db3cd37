"""Probe datasets as uint8 RGB tensors (3 x H x W) with integer labels, split train / val.

- `imagefolder`: any class-per-folder tree (how ImageNet is stored), read with
  torchvision's ImageFolder and decoded with torchvision.io (libjpeg-turbo).
- `cifar10` / `cifar100`: torchvision's on-disk format (`DIR/cifar-10-batches-py`,
  `DIR/cifar-100-python`), or a class-per-folder tree of the same classes, such as the
  shared CIFAR-10 archive (`cifar10/train/<class>/*.jpg`).

Validation: `val_dir` (a second tree of the same classes), else a fixed, seeded,
per-class held-out fraction of the training data (`val_fraction`, 0.1 by default), except
for the CIFAR pickles, whose official test split is the default. Images are resized to
the network's input size by `train_transform` / `eval_transform`.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Subset
from torchvision.datasets import ImageFolder
from torchvision.io import ImageReadMode, decode_image
from torchvision.transforms import v2

from sslx.errors import InputError

DATASETS = ("imagefolder", "cifar10", "cifar100")
DEFAULT_VAL_FRACTION = 0.1


@dataclass(frozen=True)
class CifarFormat:
    """Where torchvision keeps one CIFAR variant on disk, and how its pickles are keyed."""

    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    names_key: str
    labels_key: str
    num_classes: int


CIFAR = {
    "cifar10": CifarFormat(
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        ("test_batch",),
        "batches.meta",
        "label_names",
        "labels",
        10,
    ),
    "cifar100": CifarFormat(
        "cifar-100-python", ("train",), ("test",), "meta", "fine_label_names", "fine_labels", 100
    ),
}


@dataclass
class ProbeData:
    train: Dataset  # items: (uint8 tensor 3 x H x W, int label)
    val: Dataset
    classes: list[str]
    info: dict = field(default_factory=dict)  # how the data was made, for results.json


def read_rgb(path: str) -> torch.Tensor:
    try:
        return decode_image(path, mode=ImageReadMode.RGB)
    except RuntimeError as e:
        raise InputError(f"cannot decode image {path}: {str(e).splitlines()[0]}") from None


class ArrayImages(Dataset):
    """Images held in one uint8 N x H x W x 3 array (the CIFAR pickles)."""

    def __init__(self, images: np.ndarray, targets: list[int]) -> None:
        self.images = images
        self.targets = list(targets)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return torch.from_numpy(self.images[i]).permute(2, 0, 1).contiguous(), self.targets[i]


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
        return v2.Compose([resize, v2.TenCrop(size), v2.Lambda(torch.stack)])
    return v2.Compose([resize, v2.CenterCrop(size)])


def held_out_split(targets, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """A fixed per-class split: `fraction` of each class (seeded permutation) is held out."""
    if not 0 < fraction < 1:
        raise InputError(f"--val-fraction must be between 0 and 1 (got {fraction})")
    targets = torch.as_tensor(targets)
    generator = torch.Generator().manual_seed(seed)
    train, val = [], []
    for label in targets.unique().tolist():
        members = (targets == label).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        k = round(fraction * len(members))
        val += members[:k].tolist()
        train += members[k:].tolist()
    if not train or not val:
        raise InputError(f"--val-fraction {fraction} leaves an empty train or validation split")
    return sorted(train), sorted(val)


def image_folder(root: Path) -> ImageFolder:
    """An ImageFolder with one-line errors for a missing path, no classes or an empty class."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"dataset path not found: {root}")
    if not any(p.is_dir() for p in root.iterdir()):
        raise InputError(f"{root} has no class folders (expected {root}/<class>/<image>)")
    dataset = ImageFolder(str(root), loader=read_rgb, allow_empty=True)
    counts = np.bincount(dataset.targets, minlength=len(dataset.classes))
    empty = [c for c, n in zip(dataset.classes, counts, strict=True) if n == 0]
    if empty:
        raise InputError(f"{root}: no images in class folder(s) {', '.join(empty)}")
    return dataset


def _unpickle(path: Path) -> dict:
    if not path.is_file():
        raise InputError(f"{path.parent} is incomplete: {path.name} is missing")
    try:
        with open(path, "rb") as f:
            return pickle.load(f, encoding="latin1")
    except Exception as e:  # a damaged pickle raises many types
        raise InputError(f"cannot read {path}: {e}") from None


def read_cifar(name: str, root: Path, train: bool) -> tuple[ArrayImages, list[str]]:
    """One split of torchvision's CIFAR files, read directly (N x 3072 rows of R, G, B planes).
    Reading them ourselves skips torchvision's MD5 check of the official release."""
    fmt = CIFAR[name]
    folder = Path(root) / fmt.folder
    images, labels = [], []
    for file in fmt.train_files if train else fmt.test_files:
        batch = _unpickle(folder / file)
        images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels += list(batch[fmt.labels_key])
    classes = list(_unpickle(folder / fmt.meta_file)[fmt.names_key])
    array = np.concatenate(images).transpose(0, 2, 3, 1)  # N x 32 x 32 x 3
    return ArrayImages(np.ascontiguousarray(array), labels), classes


def download_cifar(name: str, root: Path) -> None:
    """Fetch the official release with torchvision (checks its MD5); only with --download."""
    from torchvision.datasets import CIFAR10, CIFAR100

    (CIFAR10 if name == "cifar10" else CIFAR100)(str(root), train=True, download=True)


def load_probe_data(
    dataset: str,
    data_dir: Path,
    *,
    val_dir: Path | None = None,
    val_fraction: float | None = None,
    split_seed: int = 0,
    download: bool = False,
) -> ProbeData:
    """The train and validation sets; every kind of bad input is an InputError."""
    data_dir = Path(data_dir)
    if dataset not in DATASETS:
        raise InputError(f"unknown dataset {dataset!r} (known: {', '.join(DATASETS)})")
    if download:
        if dataset not in CIFAR:
            raise InputError("--download is only for cifar10 and cifar100")
        download_cifar(dataset, data_dir)
    if not data_dir.is_dir():
        raise InputError(f"dataset path not found: {data_dir}")
    if dataset in CIFAR and (data_dir / CIFAR[dataset].folder).is_dir():
        train, classes = read_cifar(dataset, data_dir, train=True)
        info = {"dataset": dataset, "format": "cifar-pickles", "data_dir": str(data_dir)}
        if val_fraction is None and val_dir is None:
            val, _ = read_cifar(dataset, data_dir, train=False)
            return ProbeData(train, val, classes, {**info, "val": "official test split"})
    else:
        train = image_folder(data_dir)
        classes = list(train.classes)
        info = {"dataset": dataset, "format": "image-folder", "data_dir": str(data_dir)}
        if dataset in CIFAR and len(classes) != CIFAR[dataset].num_classes:
            raise InputError(
                f"{data_dir} holds neither {CIFAR[dataset].folder}/ nor "
                f"{CIFAR[dataset].num_classes} class folders (found {len(classes)})"
            )
    return _with_validation(train, classes, info, val_dir, val_fraction, split_seed)


def _with_validation(train, classes, info, val_dir, val_fraction, split_seed) -> ProbeData:
    if val_dir is not None:
        val = image_folder(Path(val_dir))
        if list(val.classes) != classes:
            raise InputError(f"--val-dir {val_dir} has other classes than the training data")
        return ProbeData(train, val, classes, {**info, "val": f"folder {val_dir}"})
    fraction = DEFAULT_VAL_FRACTION if val_fraction is None else val_fraction
    train_idx, val_idx = held_out_split(train.targets, fraction, split_seed)
    info = {**info, "val": f"held out {fraction} per class, split seed {split_seed}"}
    return ProbeData(Subset(train, train_idx), Subset(train, val_idx), classes, info)
