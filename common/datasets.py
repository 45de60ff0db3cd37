"""The kinds of labelled data sslx reads and the settings that choose one, torch-free for
`--help` (`sslx.common.labelled` reads them: ImageFolder trees, CIFAR-10/100 files).

`LabelledConfig` is declared once and used by `sslx probe` and by `sslx train --method
supervised` (whose options extend it with `--patience`), so with the same
`--val-fraction` and `--split-seed` both hold out the same images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sslx import settings
from sslx.settings import MOVABLE, Setting

CIFAR_DATASETS = ("cifar10", "cifar100")
DATASETS = ("imagefolder", *CIFAR_DATASETS)
DEFAULT_VAL_FRACTION = 0.1


def eval_crop_ratio(dataset: str) -> float:
    """The evaluation view's centre crop as a fraction of the short side: ImageNet's
    Resize 256 + CenterCrop 224 for folders, the whole 32 px image for CIFAR."""
    return 1.0 if dataset in CIFAR_DATASETS else 0.875


DATASET = Setting(
    "imagefolder: DIR/<class>/<image>; cifar10/cifar100: torchvision's files in DIR, or a "
    "class-per-folder tree of those classes.",
    str,
    choices=DATASETS,
)
DATA_DIR = Setting(
    "The labelled training images (the dataset root).",
    Path,
    unit="DIR",
    resume=MOVABLE,
    parse=str,
)
VAL_DIR = Setting(
    "Validation images in the same layout; nothing is held out of --data-dir then.",
    Path,
    unit="DIR",
    resume=MOVABLE,
    parse=str,
)
VAL_FRACTION = Setting(
    "Fraction of each class of --data-dir held out for validation (never trained on).",
    float,
    unit="FRACTION",
    low=0,
    high=1,
    open_low=True,
    open_high=True,
)
SPLIT_SEED = Setting("Seed of the held-out split.", int, low=0)


@dataclass(frozen=True)
class LabelledConfig:
    """Which labelled data, and how its validation split is made. Empty paths mean none;
    `val_fraction` None means the default: CIFAR pickles keep their official test split,
    other data hold out `DEFAULT_VAL_FRACTION` of each class."""

    dataset: str = DATASET.field("imagefolder")
    data_dir: str = DATA_DIR.field("")
    val_dir: str = VAL_DIR.field("")
    val_fraction: float | None = VAL_FRACTION.field(None)
    split_seed: int = SPLIT_SEED.field(0)

    def __post_init__(self) -> None:
        settings.check(self)
