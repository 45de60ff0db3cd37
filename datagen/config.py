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

from sslx.errors import InputError

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


@dataclass(frozen=True)
class AugmentConfig:
    """The paper's augmentations, each switchable. Names follow the paper's symbols."""

    scale: bool = True
    rotation: bool = True
    flip: bool = True
    color: bool = True
    crop_scale_min: float = 1e-4  # β: smallest crop area as a fraction of H·W
    aspect_ratio_min: float = 3 / 4  # γ: h/w is log-uniform in [γ, 1/γ]
    rotation_degrees: float = 35.0  # α is uniform in [-rotation_degrees, rotation_degrees]
    flip_prob: float = 0.5
    brightness: float = 0.4  # factor uniform in [1-b, 1+b]
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1  # fraction of a full turn, uniform in [-hue, hue]
    # The released generator's extras (preset "released"); the defaults switch them off.
    initial_crop: float = 0.0  # side of a random square cropped first, x the short side
    shear_degrees: float = 0.0  # x-shear uniform in [-shear_degrees, shear_degrees]
    oversize: float = 1.0  # crops are resized to int(oversize * size), then centre-cropped
    color_prob: float = 1.0  # probability that a patch is colour-jittered at all
    color_random_order: bool = False  # jitter steps in a random order per patch

    def __post_init__(self) -> None:
        _check(0 < self.crop_scale_min <= 1, "--crop-scale-min must be in (0, 1]")
        _check(0 < self.aspect_ratio_min <= 1, "--aspect-ratio-min must be in (0, 1]")
        _check(0 <= self.rotation_degrees <= 180, "--rotation-degrees must be in [0, 180]")
        _check(0 <= self.flip_prob <= 1, "--flip-prob must be in [0, 1]")
        for name in ("brightness", "contrast", "saturation"):
            _check(0 <= getattr(self, name) <= 1, f"--{name} must be in [0, 1]")
        _check(0 <= self.hue <= 0.5, "--hue must be in [0, 0.5]")
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

    n: int = 1_000_000
    size: int = 256
    seed: int = 0
    jpeg_quality: int = 90
    shard_size: int = 5000
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        _check(self.n >= 1, f"--n must be at least 1 (got {self.n})")
        _check(16 <= self.size <= 4096, f"--size must be in [16, 4096] (got {self.size})")
        _check(0 <= self.seed < 2**63, "--seed must be in [0, 2**63)")
        _check(1 <= self.jpeg_quality <= 100, "--jpeg-quality must be in [1, 100]")
        _check(self.shard_size >= 1, "--shard-size must be at least 1")

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
