"""The RandomResizedCrop rule, the one crop sampler of sslx, and its settings.

Patches (`sslx generate`, the paper's β and γ) and train crops (`sslx train`,
`CropConfig`) draw their crops with `random_resized_crop`; `sslx probe` takes the same
`--crop-scale-min` for its training augmentation. The settings are declared here once
and bound to a field of each config that holds them. Pure Python (no numpy, no torch):
`--help` and generate's workers import it cheaply.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from sslx import settings
from sslx.errors import InputError
from sslx.settings import Setting

MAX_CROP_TRIES = 10  # as torchvision's RandomResizedCrop

CROP_SCALE_MIN = Setting(
    "RandomResizedCrop: smallest crop area, as a fraction of the image it is cut from (the "
    "paper's β for patches).",
    float,
    unit="FRACTION",
    low=0,
    high=1,
    open_low=True,
)
CROP_SCALE_MAX = Setting(
    "RandomResizedCrop: largest crop area fraction.",
    float,
    unit="FRACTION",
    low=0,
    high=1,
    open_low=True,
)
ASPECT_RATIO_MIN = Setting(
    "RandomResizedCrop: h/w (and so w/h) is log-uniform in [this, 1/this] (the paper's γ).",
    float,
    unit="RATIO",
    low=0,
    high=1,
    open_low=True,
)
FLIP_PROB = Setting("Probability of a horizontal flip.", float, unit="PROBABILITY", low=0, high=1)


@dataclass(frozen=True)
class CropConfig:
    """Train crops: RandomResizedCrop + flip at the model's input size (DeepCluster's and
    RotNet's transform, torchvision's defaults)."""

    crop_scale_min: float = CROP_SCALE_MIN.field(0.08)
    crop_scale_max: float = CROP_SCALE_MAX.field(1.0)
    aspect_ratio_min: float = ASPECT_RATIO_MIN.field(3 / 4)
    flip_prob: float = FLIP_PROB.field(0.5)

    def __post_init__(self) -> None:
        settings.check(self)
        if self.crop_scale_min > self.crop_scale_max:
            raise InputError(
                f"--crop-scale-min {self.crop_scale_min} is above --crop-scale-max "
                f"{self.crop_scale_max}"
            )

    def to_dict(self) -> dict:
        return asdict(self)


def random_resized_crop(
    u_area: Sequence[float],
    u_aspect: Sequence[float],
    height: int,
    width: int,
    scale_min: float,
    ratio_min: float,
    scale_max: float = 1.0,
) -> tuple[float, float, bool]:
    """RandomResizedCrop's rule, the one sampler of sslx (patches and train crops).

    Try t: area fraction ~ U[scale_min, scale_max], aspect ratio h/w log-uniform in
    [ratio_min, 1/ratio_min] (the interval is symmetric, so h/w and w/h have the same
    law). Draws that do not fit inside the image are rejected; after
    len(u_area) rejections the crop is the largest one inside the image with the aspect
    ratio clamped to [ratio_min, 1/ratio_min], as torchvision falls back.
    Returns (w, h, fell back) in pixels, unrounded.
    """
    log_lo, log_hi = math.log(ratio_min), -math.log(ratio_min)
    for ua, ur in zip(u_area, u_aspect, strict=True):
        area = (scale_min + (scale_max - scale_min) * ua) * height * width
        ratio = math.exp(log_lo + (log_hi - log_lo) * ur)
        w, h = math.sqrt(area / ratio), math.sqrt(area * ratio)
        if w <= width and h <= height:
            return w, h, False
    ratio = min(max(height / width, ratio_min), 1 / ratio_min)
    w = min(float(width), height / ratio)
    return w, w * ratio, True
