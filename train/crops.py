"""Training crops: parameters are a pure function of (seed, epoch, sample index).

`sample_crops` draws torchvision-style RandomResizedCrop boxes and flips for a batch
of samples at once from a counter-based hash, so the crops of an epoch do not depend
on the worker count, the batch layout or a resume. `render_crops` applies them, with
OpenCV's JPEG decoder and, where the crop is at least 2x larger than the output, a
reduced-size decode (libjpeg's DCT scaling), which is cheaper than decode + resize.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from sslx.errors import InputError

_ATTEMPTS = 10  # as torchvision's RandomResizedCrop
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


@dataclass(frozen=True)
class CropConfig:
    """RandomResizedCrop + flip at the model's input size (DeepCluster/RotNet's transform)."""

    crop_scale_min: float = 0.08
    crop_scale_max: float = 1.0
    aspect_ratio_min: float = 3 / 4
    flip_prob: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.crop_scale_min <= self.crop_scale_max <= 1:
            raise InputError(
                "train crops need 0 < crop scale min <= crop scale max <= 1 "
                f"(got {self.crop_scale_min}, {self.crop_scale_max})"
            )
        if not 0 < self.aspect_ratio_min <= 1:
            raise InputError(f"aspect ratio min must be in (0, 1] (got {self.aspect_ratio_min})")
        if not 0 <= self.flip_prob <= 1:
            raise InputError(f"flip probability must be in [0, 1] (got {self.flip_prob})")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Crops:
    """Integer boxes (x0, y0, w, h) in source pixels and flips, one row per sample."""

    x0: np.ndarray
    y0: np.ndarray
    w: np.ndarray
    h: np.ndarray
    flip: np.ndarray


def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
        x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
        return x ^ (x >> np.uint64(31))


def uniforms(seed: int, epoch: int, indices: np.ndarray, n: int) -> np.ndarray:
    """(len(indices), n) uniforms in [0, 1): a pure function of (seed, epoch, index, draw)."""
    key = _splitmix64(_splitmix64(np.uint64(seed & 0xFFFFFFFFFFFFFFFF)) ^ np.uint64(epoch))
    idx = np.asarray(indices, dtype=np.uint64)[:, None]
    draw = np.arange(n, dtype=np.uint64)[None, :]
    with np.errstate(over="ignore"):
        bits = _splitmix64(_splitmix64(key ^ idx) + draw * np.uint64(0xD1B54A32D192ED03))
    return (bits >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def sample_crops(
    seed: int, epoch: int, indices: np.ndarray, height: int, width: int, config: CropConfig
) -> Crops:
    """RandomResizedCrop boxes as torchvision draws them (10 tries, then a centre crop)."""
    indices = np.asarray(indices)
    u = uniforms(seed, epoch, indices, 4 * _ATTEMPTS + 1)
    area = height * width
    scale = config.crop_scale_min + u[:, 0:_ATTEMPTS] * (
        config.crop_scale_max - config.crop_scale_min
    )
    log_r = math.log(config.aspect_ratio_min)
    ratio = np.exp(log_r + u[:, _ATTEMPTS : 2 * _ATTEMPTS] * (-2 * log_r))  # w / h
    w = np.rint(np.sqrt(scale * area * ratio)).astype(np.int64)
    h = np.rint(np.sqrt(scale * area / ratio)).astype(np.int64)
    ok = (w >= 1) & (h >= 1) & (w <= width) & (h <= height)
    first = np.where(ok.any(1), ok.argmax(1), -1)
    rows = np.arange(len(indices))
    pick = np.maximum(first, 0)
    w, h = w[rows, pick], h[rows, pick]
    ux, uy = u[rows, 2 * _ATTEMPTS + pick], u[rows, 3 * _ATTEMPTS + pick]
    x0 = np.floor(ux * (width - w + 1)).astype(np.int64)
    y0 = np.floor(uy * (height - h + 1)).astype(np.int64)
    fallback = first < 0  # torchvision's fallback: the central crop at the closest ratio
    if fallback.any():
        side = min(height, width)
        w[fallback], h[fallback] = side, side
        x0[fallback], y0[fallback] = (width - side) // 2, (height - side) // 2
    flip = u[:, 4 * _ATTEMPTS] < config.flip_prob
    return Crops(x0=x0, y0=y0, w=w, h=h, flip=flip)


def full_frames(n: int, height: int, width: int) -> Crops:
    """The evaluation "crop": the whole patch, resized, no flip."""
    zeros = np.zeros(n, dtype=np.int64)
    return Crops(
        x0=zeros,
        y0=zeros.copy(),
        w=np.full(n, width, np.int64),
        h=np.full(n, height, np.int64),
        flip=np.zeros(n, dtype=bool),
    )


def reduction(crop_side: int, output_size: int) -> int:
    """Largest libjpeg scale-down (1, 2, 4, 8) that keeps the crop >= the output size."""
    for factor in (8, 4, 2):
        if crop_side >= factor * output_size:
            return factor
    return 1


_REDUCED = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


def render_crop(
    jpeg: bytes, x0: int, y0: int, w: int, h: int, flip: bool, size: int, height: int, width: int
) -> np.ndarray | None:
    """Decode, crop, resize to size x size, flip; RGB uint8, or None if undecodable."""
    factor = reduction(min(w, h), size)
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), _REDUCED[factor])
    if (
        image is None
        or image.shape[0] != -(-height // factor)
        or image.shape[1] != -(-width // factor)
    ):
        return None
    if factor > 1:
        x0, y0, x1, y1 = x0 // factor, y0 // factor, -(-(x0 + w) // factor), -(-(y0 + h) // factor)
    else:
        x1, y1 = x0 + w, y0 + h
    window = image[y0:y1, x0:x1]
    shrink = window.shape[0] > size or window.shape[1] > size
    out = cv2.resize(
        window, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    )
    return out[:, ::-1, ::-1] if flip else out[:, :, ::-1]  # BGR -> RGB (and mirror)


def crop_image(
    rgb: np.ndarray, x0: int, y0: int, w: int, h: int, flip: bool, size: int
) -> np.ndarray:
    """Crop an RGB uint8 HWC array, resize to size x size, flip; for already-decoded data
    such as the labelled datasets of `--method supervised`."""
    window = rgb[y0 : y0 + h, x0 : x0 + w]
    shrink = window.shape[0] > size or window.shape[1] > size
    out = cv2.resize(
        np.ascontiguousarray(window),
        (size, size),
        interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR,
    )
    return np.ascontiguousarray(out[:, ::-1]) if flip else out
