"""What `sslx generate` makes: augmentation settings, presets and the dataset config.

Defaults follow Asano et al. (ICLR 2020), Sec. 3 and App. A: scale crops with area
fraction in [1e-4, 1] and aspect ratio in [3/4, 4/3], rotations up to ±35°, horizontal
flips and colour jitter. The paper describes the jitter only qualitatively; the
strengths below are torchvision's usual ColorJitter(0.4, 0.4, 0.4, 0.1).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from sslx import settings
from sslx.common.sampling import ASPECT_RATIO_MIN, CROP_SCALE_MIN, FLIP_PROB
from sslx.errors import InputError
from sslx.options import SEED
from sslx.settings import declare

# Rows of the paper's CIFAR-10 augmentation ablation, as (scale, rotation, color).
# Flip is not one of the ablated factors: it stays on in every preset except "none".
PRESETS: dict[str, tuple[bool, bool, bool]] = {
    "none": (False, False, False),
    "jitter": (False, False, True),
    "rotation": (False, True, False),
    "scale": (True, False, False),
    "rot+jitter": (False, True, True),
    "rot+scale": (True, True, False),
    "jitter+scale": (True, False, True),
    "all": (True, True, True),
    "released": (True, True, True),  # plus RELEASED below
}
# The recipe of the released generator (yukimasano/single_img_pretraining,
# make_dataset_single.py at 8562840), where it differs from the paper's text: a random
# square of half the short side first (--initcrop 0.5, L103), RandomResizedCrop area
# (1/500, 1) of that square to int(sqrt(2) * 256) = 362 px (L90-96), RandomAffine
# rotation 30 and x-shear 30 degrees (L107-108), CenterCrop 256 (L115), ColorJitter(0.4,
# 0.4, 0.4, 0.1) with p = 0.5 in torchvision's random order (L120), no flip (L188).
RELEASED: dict[str, object] = {
    "flip": False,
    "crop_scale_min": 1 / 500,
    "rotation_degrees": 30.0,
    "initial_crop": 0.5,
    "shear_degrees": 30.0,
    "oversize": math.sqrt(2),
    "color_prob": 0.5,
    "color_random_order": True,
}


SWITCH = {
    "scale": "Random scale crops; off: fixed --size windows at native resolution.",
    "rotation": "Random rotation.",
    "flip": "Random horizontal flip.",
    "color": "Colour jitter (brightness, contrast, saturation, hue).",
}


def _switch(name: str) -> Any:
    return declare(True, help=SWITCH[name], type=bool)


def _strength(default: float, help: str, high: float = 1.0) -> Any:
    return declare(default, help=help, type=float, low=0, high=high)


@dataclass(frozen=True)
class AugmentConfig:
    """The paper's augmentations, each switchable. Names follow the paper's symbols."""

    scale: bool = _switch("scale")
    rotation: bool = _switch("rotation")
    flip: bool = _switch("flip")
    color: bool = _switch("color")
    crop_scale_min: float = CROP_SCALE_MIN.field(1e-4)  # β: of the source's H·W
    aspect_ratio_min: float = ASPECT_RATIO_MIN.field(3 / 4)  # γ
    # α is uniform in [-rotation_degrees, rotation_degrees]
    rotation_degrees: float = declare(
        35.0,
        help="Rotation angle is uniform in [-this, +this] degrees.",
        type=float,
        unit="DEGREES",
        low=0,
        high=180,
    )
    flip_prob: float = FLIP_PROB.field(0.5)
    brightness: float = _strength(0.4, "Brightness factor in [1-b, 1+b].")
    contrast: float = _strength(0.4, "Contrast factor in [1-c, 1+c].")
    saturation: float = _strength(0.4, "Saturation factor in [1-s, 1+s].")
    hue: float = _strength(0.1, "Hue shift in [-h, h] turns.", high=0.5)
    # The released generator's extras (preset "released"); the defaults switch them off.
    initial_crop: float = 0.0  # side of a random square cropped first, x the short side
    shear_degrees: float = 0.0  # x-shear uniform in [-shear_degrees, shear_degrees]
    oversize: float = 1.0  # crops are resized to int(oversize * size), then centre-cropped
    color_prob: float = 1.0  # probability that a patch is colour-jittered at all
    color_random_order: bool = False  # jitter steps in a random order per patch

    def __post_init__(self) -> None:
        settings.check(self)
        _check(0 <= self.initial_crop <= 1, "initial_crop must be in [0, 1]")
        _check(0 <= self.shear_degrees < 90, "shear_degrees must be in [0, 90)")
        _check(1 <= self.oversize <= 4, "oversize must be in [1, 4]")
        _check(0 <= self.color_prob <= 1, "color_prob must be in [0, 1]")

    @classmethod
    def from_preset(cls, preset: str, **overrides: object) -> AugmentConfig:
        """The named ablation row, with `overrides` (None values are ignored) applied."""
        if preset not in PRESETS:
            raise InputError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
        scale, rotation, color = PRESETS[preset]
        values = {"scale": scale, "rotation": rotation, "color": color, "flip": preset != "none"}
        if preset == "released":
            values.update(RELEASED)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class GenerateConfig:
    """Everything that determines the bytes of a shard dataset.

    Two runs with equal configs (and equal source files) write byte-identical shards,
    whatever their worker count or `--part` split, which are therefore not in here.
    """

    n: int = declare(1_000_000, help="Number of patches to generate.", type=int, flag="--n", low=1)
    size: int = declare(
        256, help="Patch side in pixels.", type=int, unit="PIXELS", low=16, high=4096
    )
    seed: int = SEED.field(0)
    jpeg_quality: int = declare(
        90, help="JPEG quality of stored patches.", type=int, low=1, high=100
    )
    shard_size: int = declare(5000, help="Patches per tar shard.", type=int, unit="PATCHES", low=1)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        settings.check(self)

    @property
    def num_shards(self) -> int:
        return -(-self.n // self.shard_size)

    def to_dict(self) -> dict:
        """The settings; the released recipe's extras only where used, so the identity
        (and manifest) of every other dataset is what it was before they existed."""
        data = dataclasses.asdict(self)
        neutral = {f: getattr(AugmentConfig, f) for f in _RELEASED_EXTRAS}
        augment = data["augment"].items()
        data["augment"] = {k: v for k, v in augment if k not in neutral or neutral[k] != v}
        return data

    @classmethod
    def from_dict(cls, data: dict) -> GenerateConfig:
        data = dict(data)
        augment = AugmentConfig(**data.pop("augment"))
        return cls(augment=augment, **data)


_RELEASED_EXTRAS = ("initial_crop", "shear_degrees", "oversize", "color_prob", "color_random_order")


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise InputError(message)
