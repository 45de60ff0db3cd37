"""The one decode-and-crop path of training: crop parameters, decoding and resizing.

Crop parameters are a pure function of (seed, epoch, draw): `sample_crops` takes the
"crops" stream of `sslx.seeds` and the one RandomResizedCrop sampler of sslx
(`sslx.common.sampling.random_resized_crop`), so the crops of an epoch do not depend
on the worker count, the batch layout or a resume. `draw_crop` is what every dataset
calls (the shard stream, the shards' random access, the labelled datasets): it
decodes an image if it is still encoded, crops and resizes it. JPEGs are decoded with
OpenCV at a reduced size (libjpeg's DCT scaling) where the crop is at least 2x larger
than the output, which is cheaper than decode + resize.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from sslx import seeds
from sslx.common.sampling import MAX_CROP_TRIES, CropConfig, random_resized_crop

# Per draw: MAX_CROP_TRIES area and aspect uniforms, then x, y and flip.
_U_AREA, _U_ASPECT = 0, MAX_CROP_TRIES
_U_X, _U_Y, _U_FLIP = 2 * MAX_CROP_TRIES, 2 * MAX_CROP_TRIES + 1, 2 * MAX_CROP_TRIES + 2
CROP_UNIFORMS = 2 * MAX_CROP_TRIES + 3


@dataclass(frozen=True)
class Crops:
    """Integer boxes (x0, y0, w, h) in source pixels and flips, one row per draw."""

    x0: np.ndarray
    y0: np.ndarray
    w: np.ndarray
    h: np.ndarray
    flip: np.ndarray


def sample_crops(
    seed: int, epoch: int, draws, height: int, width: int, config: CropConfig
) -> Crops:
    """RandomResizedCrop boxes and flips of `draws` (draw keys) in a height x width image."""
    u = seeds.uniforms(seed, "crops", epoch, draws, CROP_UNIFORMS)
    boxes = np.array([crop_box(row, height, width, config) for row in u], np.int64).reshape(-1, 5)
    x0, y0, w, h, flip = boxes.T
    return Crops(x0=x0, y0=y0, w=w, h=h, flip=flip.astype(bool))


def crop_box(
    u: np.ndarray, height: int, width: int, config: CropConfig
) -> tuple[int, int, int, int, bool]:
    """One crop (x0, y0, w, h, flip) from `CROP_UNIFORMS` uniforms: RandomResizedCrop's
    area and aspect tries, then position and flip."""
    fw, fh, _ = random_resized_crop(
        u[_U_AREA:_U_ASPECT],
        u[_U_ASPECT:_U_X],
        height,
        width,
        config.crop_scale_min,
        config.aspect_ratio_min,
        config.crop_scale_max,
    )
    w = min(max(round(fw), 1), width)
    h = min(max(round(fh), 1), height)
    x0 = int(u[_U_X] * (width - w + 1))
    y0 = int(u[_U_Y] * (height - h + 1))
    return x0, y0, w, h, bool(u[_U_FLIP] < config.flip_prob)


def centre_crops(n: int, height: int, width: int, ratio: float = 1.0) -> Crops:
    """The evaluation "crop": the whole image (ratio 1), or the centred square of side
    ratio x the short side, which is Resize(S / ratio) + CenterCrop(S); no flip."""
    if ratio >= 1:
        w, h = width, height
    else:
        w = h = max(1, round(min(height, width) * ratio))
    return Crops(
        x0=np.full(n, (width - w) // 2, np.int64),
        y0=np.full(n, (height - h) // 2, np.int64),
        w=np.full(n, w, np.int64),
        h=np.full(n, h, np.int64),
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


# More pixels than this is refused by the image's header (0.5 GB as RGB): Pillow's own
# decompression-bomb limit (2 x its MAX_IMAGE_PIXELS), so both readers agree.
MAX_PIXELS = 178_956_970


def decode_rgb(data: bytes, factor: int = 1) -> np.ndarray | None:
    """An encoded image -> RGB uint8 HWC (decoded at 1/factor), or None if undecodable or
    if its header declares more than `MAX_PIXELS` (checked before any decoding)."""
    size = jpeg_size(data)
    if size is not None and size[0] * size[1] > MAX_PIXELS:
        return None
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), _REDUCED[factor])
    except cv2.error:  # OpenCV's own limits (CV_IO_MAX_IMAGE_PIXELS), for other formats
        return None
    return None if image is None else image[:, :, ::-1]


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(height, width) from a JPEG's frame header, without decoding; None if `data` is not
    a JPEG or has no frame header before its scan."""
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 9 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a frame header
            return int.from_bytes(data[i + 5 : i + 7], "big"), int.from_bytes(
                data[i + 7 : i + 9], "big"
            )
        if marker == 0xDA or length < 2:  # the scan starts, or a broken segment
            return None
        i += 2 + length
    return None


def draw_crop(
    source: bytes | np.ndarray,
    draw: int,
    *,
    size: int,
    crop: CropConfig | None,
    seed: int = 0,
    epoch: int = 0,
    shape: tuple[int, int] | None = None,
    centre_ratio: float = 1.0,
) -> np.ndarray | None:
    """Draw `draw`'s crop of one image, resized to size x size: RGB uint8 HWC.

    `source` is an RGB array, or the encoded bytes of an image of `shape` (H, W).
    `crop=None` is the evaluation view (`centre_crops`); None if `source` is undecodable."""
    height, width = source.shape[:2] if isinstance(source, np.ndarray) else shape
    if crop is None:
        box = centre_crops(1, height, width, centre_ratio)
    else:
        box = sample_crops(seed, epoch, [draw], height, width, crop)
    return render_crop(
        source,
        int(box.x0[0]),
        int(box.y0[0]),
        int(box.w[0]),
        int(box.h[0]),
        bool(box.flip[0]),
        size,
        (height, width),
    )


def render_crop(
    source: bytes | np.ndarray,
    x0: int,
    y0: int,
    w: int,
    h: int,
    flip: bool,
    size: int,
    shape: tuple[int, int],
) -> np.ndarray | None:
    """Crop box (x0, y0, w, h) of an RGB array, or of encoded bytes that must decode to
    `shape` (then at a reduced size where the box allows), resize to size x size, flip."""
    height, width = shape
    factor = 1
    if isinstance(source, np.ndarray):
        image = source
    else:
        factor = reduction(min(w, h), size)
        image = decode_rgb(source, factor)
        if image is None or image.shape[:2] != (-(-height // factor), -(-width // factor)):
            return None
    if factor > 1:
        x0, y0, x1, y1 = x0 // factor, y0 // factor, -(-(x0 + w) // factor), -(-(y0 + h) // factor)
    else:
        x1, y1 = x0 + w, y0 + h
    window = np.ascontiguousarray(image[y0:y1, x0:x1])
    shrink = window.shape[0] > size or window.shape[1] > size
    out = cv2.resize(
        window, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    )
    return np.ascontiguousarray(out[:, ::-1]) if flip else out
