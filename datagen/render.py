"""Applying sampled parameters to a source: one affine warp and one colour matrix.

Crop, rotation, flip and resize are folded into a single 2×3 affine map, sampled from
the pyramid level nearest the output scale. Brightness, contrast, saturation and hue
are folded into a single 3×4 colour matrix. Both are exact compositions of the
per-step operations (up to interpolation and a single final clip), and
tests/datagen/test_render.py checks them against a slow step-by-step reference.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from sslx.datagen.sampling import PatchParams
from sslx.datagen.sources import Source

# ITU-R 601 luma, as torchvision's rgb_to_grayscale.
LUMA_RGB = np.array([0.299, 0.587, 0.114])
# RGB <-> YIQ: hue jitter is a rotation of the (I, Q) chroma plane, which keeps the
# whole colour jitter linear (torchvision's HSV hue shift is not).
_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ)
_BGR = [2, 1, 0]


def render_patch(source: Source, params: PatchParams, size: int) -> np.ndarray:
    """The size×size×3 uint8 BGR patch that `params` describes."""
    level = pyramid_level(params, size, len(source.levels))
    matrix = patch_to_source_affine(params, size, level)
    patch = cv2.warpAffine(
        source.levels[level],
        matrix,
        (size, size),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REFLECT_101,
    )
    patch = cv2.cvtColor(patch, cv2.COLOR_BGRA2BGR)
    if (params.brightness, params.contrast, params.saturation, params.hue) != (1, 1, 1, 0):
        mean_rgb = np.array(cv2.mean(patch)[:3])[_BGR]
        jitter = (params.brightness, params.contrast, params.saturation, params.hue)
        if params.color_order is None:
            colour = colour_matrix(*jitter, mean_rgb)
        else:
            colour = ordered_colour_matrix(*jitter, params.color_order, mean_rgb)
        patch = cv2.transform(patch, bgr_matrix(colour))
    return patch


def pyramid_level(params: PatchParams, size: int, num_levels: int) -> int:
    """Coarsest level at which the crop's shorter side still spans >= `size` pixels."""
    ratio = min(params.w, params.h) * (params.view or 1.0) / size
    level = math.floor(math.log2(ratio)) if ratio >= 2 else 0
    return min(level, num_levels - 1)


def patch_to_source_affine(params: PatchParams, size: int, level: int = 0) -> np.ndarray:
    """2×3 map from output pixel (u, v) to pixel coordinates of pyramid `level`.

    In continuous coordinates (pixel i spans [i, i+1)), an output point at offset
    (p, q) from the patch centre, scaled to crop pixels, lands at
    centre + R(α) · (±p, q), with R rotating clockwise on screen so that the content
    appears rotated counter-clockwise, as torchvision's rotate does for α > 0.
    With a shear φ (released recipe) the offset is sheared along x first,
    (p + tan φ · q, q), then rotated; with a `view` the patch is the central view × (w, h)
    of the crop (the released 362 → 256 centre crop), i.e. a smaller output window of
    the same warp.
    """
    a = math.radians(params.rotation_degrees)
    cos, sin = math.cos(a), math.sin(a)
    sx = (-1.0 if params.flip else 1.0) * params.w / size
    sy = params.h / size
    if params.view is not None:
        sx, sy = sx * params.view, sy * params.view
    f = 2.0**-level
    # Output pixel u has centre u + 0.5, i.e. offset (u + 0.5 - size/2) from the middle.
    o = 0.5 - size / 2
    ax, bx = cos * sx, -sin * sy
    ay, by = sin * sx, cos * sy
    if params.shear_degrees:
        t = math.tan(math.radians(params.shear_degrees)) * sy
        bx, by = bx + cos * t, by + sin * t
    # cv2.pyrDown keeps pixel 2j of a level as pixel j of the next, so pixel indices
    # (continuous coordinate - 0.5) scale by f between levels.
    return np.array(
        [
            [f * ax, f * bx, f * (params.cx + ax * o + bx * o - 0.5)],
            [f * ay, f * by, f * (params.cy + ay * o + by * o - 0.5)],
        ]
    )


def colour_matrix(
    brightness: float, contrast: float, saturation: float, hue: float, mean_rgb: np.ndarray
) -> np.ndarray:
    """3×4 RGB matrix for brightness → contrast → saturation → hue, in that order.

    Contrast blends towards the mean grey of the patch after brightness, as
    torchvision's adjust_contrast does; `mean_rgb` is the patch mean before jitter.
    Composing the four steps, H·S·C·B, simplifies because saturation and hue leave
    grey (1, 1, 1) unchanged: the linear part is b·c·(s·H + (1-s)·1·lumaᵀ) and the
    offset is (1-c)·b·mean_grey on every channel. tests/datagen/test_render.py checks
    this against the step-by-step product.
    """
    t = 2 * math.pi * hue
    hue_rotation = _HUE_FIXED + math.cos(t) * _HUE_COS + math.sin(t) * _HUE_SIN
    linear = saturation * hue_rotation + (1 - saturation) * _GREY_PROJECTION
    out = np.empty((3, 4))
    out[:, :3] = brightness * contrast * linear
    out[:, 3] = (1 - contrast) * brightness * float(LUMA_RGB @ mean_rgb)
    return out


def ordered_colour_matrix(
    brightness: float,
    contrast: float,
    saturation: float,
    hue: float,
    order: str,
    mean_rgb: np.ndarray,
) -> np.ndarray:
    """3×4 RGB matrix of the four jitter steps applied in `order` (e.g. "hcbs"), as
    torchvision's ColorJitter draws a random order. Each step is affine; contrast blends
    towards the mean grey of the image at that point of the chain, which is the chain so
    far applied to `mean_rgb` (the mean commutes with affine maps; one clip at the end)."""
    t = 2 * math.pi * hue
    steps = {
        "b": brightness * np.eye(3),
        "s": saturation * np.eye(3) + (1 - saturation) * _GREY_PROJECTION,
        "h": _HUE_FIXED + math.cos(t) * _HUE_COS + math.sin(t) * _HUE_SIN,
    }
    linear, offset = np.eye(3), np.zeros(3)
    for step in order:
        if step == "c":
            grey = float(LUMA_RGB @ (linear @ mean_rgb + offset))
            linear, offset = contrast * linear, contrast * offset + (1 - contrast) * grey
        else:
            linear, offset = steps[step] @ linear, steps[step] @ offset
    return np.concatenate([linear, offset[:, None]], axis=1)


# Hue rotation by t in YIQ, as an RGB matrix: _HUE_FIXED + cos t·_HUE_COS + sin t·_HUE_SIN.
_HUE_FIXED = np.outer(_YIQ_TO_RGB[:, 0], _RGB_TO_YIQ[0])
_HUE_COS = _YIQ_TO_RGB[:, 1:] @ _RGB_TO_YIQ[1:]
_HUE_SIN = _YIQ_TO_RGB[:, 1:] @ np.array([[0.0, -1.0], [1.0, 0.0]]) @ _RGB_TO_YIQ[1:]
_GREY_PROJECTION = np.outer(np.ones(3), LUMA_RGB)


def bgr_matrix(rgb_matrix: np.ndarray) -> np.ndarray:
    """The same 3×4 colour matrix acting on BGR pixels."""
    m = rgb_matrix[_BGR]
    return np.concatenate([m[:, _BGR], m[:, 3:]], axis=1)
