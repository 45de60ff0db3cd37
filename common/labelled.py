"""Labelled datasets, the one home of their readers: `sslx probe` and `--method supervised`.

- `imagefolder`: any class-per-folder tree (how ImageNet is stored), read with
  torchvision's ImageFolder and decoded by `sslx.common.crops.decode_rgb` (OpenCV).
- `cifar10` / `cifar100`: torchvision's on-disk format (`DIR/cifar-10-batches-py`,
  `DIR/cifar-100-python`), read with a restricted unpickler, or a class-per-folder tree
  of the same classes, such as the shared CIFAR-10 archive (`cifar10/train/<class>/*.jpg`).

Validation: `val_dir` (a second tree of the same classes), else a fixed, seeded,
per-class held-out fraction of the training data (`val_fraction`, 0.1 by default), except
for the CIFAR pickles, whose official test split is the default. Items are
(uint8 RGB tensor 3 x H x W, label).

The paper's "full supervision" reference row (`LabelledData`, `LabelledDraws`) trains on
the training split of the same readers, so with the same `--val-fraction` and
`--split-seed` the supervised network never sees the images it is later probed on. Draw
`i` of an epoch is training image `order[i]` (a permutation from the "data_order"
stream), cropped with the run's crop parameters, a pure function of (seed, epoch, i)
exactly as for the shards (`crops.draw_crop`). Its held-out split, in the evaluation
view (`LabelledViews`), gives the run's `val_top1` after every epoch.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Subset
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension

from sslx import seeds
from sslx.common.crops import MAX_PIXELS, CropConfig, decode_rgb, draw_crop, jpeg_size
from sslx.common.datasets import DATASETS, DEFAULT_VAL_FRACTION, LabelledConfig
from sslx.errors import InputError, check_apart


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
class LabelledSplit:
    train: Dataset  # items: (uint8 tensor 3 x H x W, int label)
    val: Dataset
    classes: list[str]
    info: dict = field(default_factory=dict)  # how the data was made, for results.json


def read_rgb(path: str) -> torch.Tensor:
    """An image file as a uint8 RGB tensor 3 x H x W (decoded by `crops.decode_rgb`)."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise InputError(f"cannot read image {path}: {e.strerror}") from None
    if _too_large(data):
        raise InputError(
            f"image {path} declares more than the {MAX_PIXELS:,} pixels sslx decodes; resize it"
        )
    image = decode_rgb(data)
    if image is None:
        raise InputError(f"cannot decode image {path}: not a readable image file")
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)


def _too_large(data: bytes) -> bool:
    """Whether an image file's header declares more than `MAX_PIXELS` (read without
    decoding: the JPEG frame header, else Pillow's header reader and its bomb check)."""
    size = jpeg_size(data)
    if size is not None:
        return size[0] * size[1] > MAX_PIXELS
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.size[0] * im.size[1] > MAX_PIXELS
    except Image.DecompressionBombError:
        return True
    except (OSError, SyntaxError, ValueError):
        return False  # no header Pillow knows: the decoder says what is wrong


class ArrayImages(Dataset):
    """Images held in one uint8 N x H x W x 3 array (the CIFAR pickles)."""

    def __init__(self, images: np.ndarray, targets: list[int]) -> None:
        self.images = images
        self.targets = list(targets)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return torch.from_numpy(self.images[i]).permute(2, 0, 1).contiguous(), self.targets[i]


def held_out_split(targets, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """A fixed per-class split: `fraction` of each class (seeded permutation) is held out."""
    if not 0 < fraction < 1:
        raise InputError(f"--val-fraction must be between 0 and 1 (got {fraction})")
    targets = torch.as_tensor(targets)
    generator = torch.Generator().manual_seed(seeds.int_seed(seed, "split"))
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


class _LoopSafeFolder(ImageFolder):
    """torchvision's ImageFolder, whose walk follows links: a link loop in a class folder
    would list its images up to 40 times over, and a held-out split would then share
    images with training. Here each real folder is walked once, and an image reached
    twice (two links to one file) is refused."""

    @staticmethod
    def make_dataset(
        directory, class_to_idx, extensions=None, is_valid_file=None, allow_empty=False
    ):
        seen_dirs: set[str] = set()
        seen_files: dict[str, str] = {}
        samples = []
        for name in sorted(class_to_idx):
            folders = []
            for top, dirs, files in os.walk(os.path.join(directory, name), followlinks=True):
                real = os.path.realpath(top)
                if real in seen_dirs:
                    dirs[:] = []  # a loop, or a folder linked twice: already listed
                    continue
                seen_dirs.add(real)
                folders.append((top, files))
            for top, files in sorted(folders):  # torchvision's order: by folder path, file name
                for file in sorted(files):
                    path = os.path.join(top, file)
                    if not has_file_allowed_extension(path, IMG_EXTENSIONS):
                        continue
                    target = os.path.realpath(path)
                    if target in seen_files:
                        raise InputError(f"{path} and {seen_files[target]} are one image (a link)")
                    seen_files[target] = path
                    samples.append((path, class_to_idx[name]))
        return samples


def image_folder(root: Path) -> ImageFolder:
    """An ImageFolder with one-line errors for a missing path, no classes or an empty class."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"dataset path not found: {root}")
    if not any(p.is_dir() for p in root.iterdir()):
        raise InputError(f"{root} has no class folders (expected {root}/<class>/<image>)")
    dataset = _LoopSafeFolder(str(root), loader=read_rgb, allow_empty=True)
    counts = np.bincount(dataset.targets, minlength=len(dataset.classes))
    empty = [c for c, n in zip(dataset.classes, counts, strict=True) if n == 0]
    if empty:
        raise InputError(f"{root}: no images in class folder(s) {', '.join(empty)}")
    return dataset


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles only what CIFAR files hold (dicts, lists, strings, numpy arrays): any
    other global, such as a function a crafted file would call, is refused unrun."""

    def find_class(self, module: str, name: str):
        allowed = _CIFAR_GLOBALS.get((module, name))
        if allowed is None:
            raise pickle.UnpicklingError(f"it calls {module}.{name}, which CIFAR files never do")
        return allowed


_RECONSTRUCT = (np._core if hasattr(np, "_core") else np.core).multiarray._reconstruct
_CIFAR_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


def _unpickle(path: Path) -> dict:
    if not path.is_file():
        raise InputError(f"{path.parent} is incomplete: {path.name} is missing")
    try:
        with open(path, "rb") as f:
            data = _CifarUnpickler(f, encoding="latin1").load()
    except Exception as e:  # a damaged or crafted pickle raises many types
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InputError(f"cannot read {path}: {reason}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path} is not a CIFAR batch file")
    return data


def read_cifar(name: str, root: Path, train: bool) -> tuple[ArrayImages, list[str]]:
    """One split of torchvision's CIFAR files, read directly (N x 3072 rows of R, G, B planes).
    They are read with a restricted unpickler, never plain pickle.load: a data folder
    cannot run code. (torchvision checks the official release's MD5s instead, which
    would refuse re-packed copies.)"""
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


def load_labelled(
    dataset: str,
    data_dir: Path,
    *,
    val_dir: Path | None = None,
    val_fraction: float | None = None,
    split_seed: int = 0,
    download: bool = False,
) -> LabelledSplit:
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
            return LabelledSplit(train, val, classes, {**info, "val": "official test split"})
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


def _with_validation(train, classes, info, val_dir, val_fraction, split_seed) -> LabelledSplit:
    if val_dir is not None:
        why = "the same images would be in training and validation"
        check_apart(("--val-dir", val_dir), ("--data-dir", info["data_dir"]), why)
        val = image_folder(Path(val_dir))
        if list(val.classes) != classes:
            raise InputError(f"--val-dir {val_dir} has other classes than the training data")
        return LabelledSplit(train, val, classes, {**info, "val": f"folder {val_dir}"})
    fraction = DEFAULT_VAL_FRACTION if val_fraction is None else val_fraction
    train_idx, val_idx = held_out_split(train.targets, fraction, split_seed)
    info = {**info, "val": f"held out {fraction} per class, split seed {split_seed}"}
    return LabelledSplit(Subset(train, train_idx), Subset(train, val_idx), classes, info)


class LabelledData:
    """The training split of a labelled dataset: what the loop needs to know about it."""

    def __init__(self, config: LabelledConfig) -> None:
        if not config.data_dir:
            raise InputError("--method supervised needs --data-dir (and --dataset)")
        data = load_labelled(
            config.dataset,
            Path(config.data_dir),
            val_dir=Path(config.val_dir) if config.val_dir else None,
            val_fraction=None if config.val_dir else config.val_fraction,
            split_seed=config.split_seed,
        )
        self.images = data.train  # items: (uint8 tensor 3 x H x W, label)
        self.val = data.val  # the held-out split: the supervised run's per-epoch val_top1
        self.classes = list(data.classes)
        self.info = data.info
        self.where = config.data_dir
        self.num_samples = len(self.images)
        self.labels = split_labels(self.images)
        identity = {"info": data.info, "classes": self.classes, "labels": _digest(self.labels)}
        self.fingerprint = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def split_labels(images) -> np.ndarray:
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
        self.order = seeds.rng(seed, "data_order", epoch).permutation(data.num_samples)

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, i: int) -> tuple[np.ndarray | None, int, int, str | None]:
        index = int(self.order[i])
        image, label = self.data.images[index]
        out = draw_crop(
            image.permute(1, 2, 0).numpy(),
            i,
            size=self.input_size,
            crop=self.crop,
            seed=self.seed,
            epoch=self.epoch,
        )
        return out, index, int(label), None


class LabelledViews(torch.utils.data.Dataset):
    """A labelled split in the evaluation view, no augmentation: item i -> (image i
    centre-cropped (`crops.centre_crops`, `centre_ratio` of the short side) and resized to
    `input_size`, uint8 HWC; i; label; None), the draws that training batches."""

    def __init__(self, images: Dataset, *, input_size: int, centre_ratio: float) -> None:
        self.images, self.input_size, self.centre_ratio = images, input_size, centre_ratio

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[np.ndarray | None, int, int, str | None]:
        image, label = self.images[i]
        out = draw_crop(
            image.permute(1, 2, 0).numpy(),
            i,
            size=self.input_size,
            crop=None,
            centre_ratio=self.centre_ratio,
        )
        return out, i, int(label), None
