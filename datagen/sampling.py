"""Augmentation parameters as a pure function of (seed, sample index).

Nothing here touches pixels: `sample_params` only decides *what* patch i is, and
`render.render_patch` makes it. Because the parameters depend on nothing but
(seed, index, config, source sizes), any worker can make any sample, and the shards
come out byte-identical for every worker count or machine split.

Every sample draws the same fixed number of uniforms in a fixed order, whatever
augmentations are switched on. Turning one augmentation off therefore leaves the
others' values unchanged, so ablation datasets differ only in the factor ablated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sslx.datagen.config import GenerateConfig
from sslx.seeds import patch_uniforms

MAX_CROP_TRIES = 10  # as torchvision's RandomResizedCrop
_U_AREA, _U_ASPECT = 0, MAX_CROP_TRIES
_U_ANGLE = 2 * MAX_CROP_TRIES
_U_CX, _U_CY, _U_FLIP = _U_ANGLE + 1, _U_ANGLE + 2, _U_ANGLE + 3
_U_COLOR = _U_ANGLE + 4  # brightness, contrast, saturation, hue
NUM_UNIFORMS = _U_COLOR + 4


@dataclass(frozen=True)
class PatchParams:
    """Everything that defines one patch. Geometry is in full-resolution source pixels.

    The patch is the source content inside a w×h rectangle centred at (cx, cy) and
    rotated by `rotation_degrees` (counter-clockwise as displayed), mirrored if `flip`,
    resized to size×size, then colour-jittered.
    """

    index: int
    source: int
    cx: float
    cy: float
    w: float
    h: float
    area_fraction: float
    aspect_ratio: float  # h / w
    crop_fallback: bool  # all MAX_CROP_TRIES draws failed to fit; see `random_resized_crop`
    rotation_degrees: float
    flip: bool
    brightness: float
    contrast: float
    saturation: float
    hue: float

    def to_dict(self) -> dict:
        return dict(self.__dict__)  # flat fields: dataclasses.asdict's deep copy is slow


def uniforms(seed: int, index: int) -> np.ndarray:
    """The NUM_UNIFORMS uniforms in [0, 1) that decide sample `index`."""
    return patch_uniforms(seed, index, NUM_UNIFORMS)


def source_of(index: int, num_sources: int) -> int:
    """Sources take turns, so patches are spread evenly over them."""
    return index % num_sources


def sample_params(
    seed: int, index: int, source_sizes: Sequence[tuple[int, int]], config: GenerateConfig
) -> PatchParams:
    """The augmentation parameters of sample `index`; `source_sizes` are (H, W) pairs."""
    aug = config.augment
    source = source_of(index, len(source_sizes))
    height, width = source_sizes[source]
    u = uniforms(seed, index)

    if aug.scale:
        w, h, fallback = random_resized_crop(
            u[_U_AREA : _U_AREA + MAX_CROP_TRIES],
            u[_U_ASPECT : _U_ASPECT + MAX_CROP_TRIES],
            height,
            width,
            aug.crop_scale_min,
            aug.aspect_ratio_min,
        )
    else:  # a fixed window at native resolution
        w = h = float(config.size)
        fallback = False

    angle = aug.rotation_degrees * (2 * u[_U_ANGLE] - 1) if aug.rotation else 0.0
    cx = _sample_centre(u[_U_CX], width, w, h, angle)
    cy = _sample_centre(u[_U_CY], height, h, w, angle)
    flip = bool(aug.flip and u[_U_FLIP] < aug.flip_prob)

    c = u[_U_COLOR : _U_COLOR + 4]
    if aug.color:
        jitter = (
            1 + aug.brightness * (2 * c[0] - 1),
            1 + aug.contrast * (2 * c[1] - 1),
            1 + aug.saturation * (2 * c[2] - 1),
            aug.hue * (2 * c[3] - 1),
        )
    else:
        jitter = (1.0, 1.0, 1.0, 0.0)

    return PatchParams(
        index=index,
        source=source,
        cx=float(cx),
        cy=float(cy),
        w=float(w),
        h=float(h),
        area_fraction=float(w * h / (width * height)),
        aspect_ratio=float(h / w),
        crop_fallback=fallback,
        rotation_degrees=float(angle),
        flip=flip,
        brightness=float(jitter[0]),
        contrast=float(jitter[1]),
        saturation=float(jitter[2]),
        hue=float(jitter[3]),
    )


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


def _sample_centre(u: float, extent: float, along: float, across: float, angle: float) -> float:
    """Centre coordinate along one image axis of length `extent`.

    `along` is the crop side parallel to this axis before rotation, `across` the other.
    The centre is uniform over the positions where the rotated crop's bounding box lies
    inside the image; where no position does, the crop is centred and the part outside
    the image is filled by reflection (see docs/generate.md).
    """
    a = math.radians(angle)
    half = (abs(math.cos(a)) * along + abs(math.sin(a)) * across) / 2
    room = extent - 2 * half
    if room <= 0:
        return extent / 2
    return half + u * room
