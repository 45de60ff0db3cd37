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

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sslx.common.sampling import MAX_CROP_TRIES, random_resized_crop
from sslx.datagen.config import GenerateConfig
from sslx.seeds import patch_uniforms

_U_AREA, _U_ASPECT = 0, MAX_CROP_TRIES
_U_ANGLE = 2 * MAX_CROP_TRIES
_U_CX, _U_CY, _U_FLIP = _U_ANGLE + 1, _U_ANGLE + 2, _U_ANGLE + 3
_U_COLOR = _U_ANGLE + 4  # brightness, contrast, saturation, hue
# The released recipe's extras come after, so the draws above never change.
_U_SQUARE_X, _U_SQUARE_Y = _U_COLOR + 4, _U_COLOR + 5  # the initial square crop
_U_SHEAR, _U_COLOR_APPLY, _U_COLOR_ORDER = _U_COLOR + 6, _U_COLOR + 7, _U_COLOR + 8
NUM_UNIFORMS = _U_COLOR + 9
# The 24 orders of the jitter steps (b, c, s, h), indexed by floor(u * 24).
COLOR_ORDERS = tuple("".join(p) for p in itertools.permutations("bcsh"))


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
    # The released recipe's extras (preset "released"); None where a preset does not use
    # them, and then left out of the JSON sidecar, so other presets' sidecars are unchanged.
    square: tuple[int, int, int] | None = None  # initial square crop (x0, y0, side)
    shear_degrees: float | None = None  # x-shear of the crop
    view: float | None = None  # the patch shows the central view x (w, h) of the crop
    color_applied: bool | None = None  # whether the jitter was drawn (p = color_prob)
    color_order: str | None = None  # order of the jitter steps, e.g. "bcsh"

    def to_dict(self) -> dict:
        # flat fields: dataclasses.asdict's deep copy is slow
        out = {k: v for k, v in self.__dict__.items() if v is not None}
        if self.square is not None:
            out["square"] = list(self.square)
        return out


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

    # The region crops are drawn in: the whole source, or the released recipe's square.
    square = None
    box_h, box_w = height, width
    if aug.initial_crop > 0:
        side = max(1, int(aug.initial_crop * min(height, width)))
        square = (
            int(u[_U_SQUARE_X] * (width - side + 1)),
            int(u[_U_SQUARE_Y] * (height - side + 1)),
            side,
        )
        box_h = box_w = side

    if aug.scale:
        w, h, fallback = random_resized_crop(
            u[_U_AREA : _U_AREA + MAX_CROP_TRIES],
            u[_U_ASPECT : _U_ASPECT + MAX_CROP_TRIES],
            box_h,
            box_w,
            aug.crop_scale_min,
            aug.aspect_ratio_min,
        )
    else:  # a fixed window at native resolution
        w = h = float(config.size) * aug.oversize
        fallback = False

    angle = aug.rotation_degrees * (2 * u[_U_ANGLE] - 1) if aug.rotation else 0.0
    if square is None:
        cx = _sample_centre(u[_U_CX], width, w, h, angle)
        cy = _sample_centre(u[_U_CY], height, h, w, angle)
    else:  # as RandomResizedCrop: the unrotated crop lies inside the square
        cx = square[0] + w / 2 + u[_U_CX] * max(0.0, square[2] - w)
        cy = square[1] + h / 2 + u[_U_CY] * max(0.0, square[2] - h)
    flip = bool(aug.flip and u[_U_FLIP] < aug.flip_prob)

    c = u[_U_COLOR : _U_COLOR + 4]
    applied = bool(u[_U_COLOR_APPLY] < aug.color_prob)
    if aug.color and applied:
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
        **_released_extras(aug, u, square, config.size, applied),
    )


def _released_extras(aug, u: np.ndarray, square, size: int, applied: bool) -> dict:
    """The PatchParams fields only the released recipe's settings use (else none)."""
    extras: dict = {}
    if square is not None:
        extras["square"] = square
    if aug.shear_degrees > 0:
        shear = aug.shear_degrees * (2 * u[_U_SHEAR] - 1) if aug.rotation else 0.0
        extras["shear_degrees"] = float(shear)
    if aug.oversize != 1:
        extras["view"] = size / int(aug.oversize * size)  # 256 / 362 in the released code
    if aug.color and aug.color_prob < 1:
        extras["color_applied"] = applied
    if aug.color and aug.color_random_order:
        extras["color_order"] = COLOR_ORDERS[min(int(u[_U_COLOR_ORDER] * 24), 23)]
    return extras


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
