"""Several views of one sample, for the multi-view methods (SimCLR, BYOL, SimSiam, DINO).

A `ViewSpec` is one view's augmentation pipeline, as the methods' papers give it:
RandomResizedCrop + flip (done by the loader, which decodes each patch once and crops it
once per view, `sslx.common.crops.render_crop`), then colour jitter in a random order,
grayscale, Gaussian blur and solarisation (done batched on the device,
`sslx.train.ssl.augment`). Every random number of a view is drawn here, from the
"views" seed stream at (epoch, sample, view): the loader carries the photometric draws
to the device as a row of `PARAMS`, so the views are the same for any worker count, rank
count or resume. Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sslx import seeds
from sslx.common.crops import CROP_UNIFORMS, crop_box
from sslx.common.sampling import CropConfig

# The photometric draws of one view, one column each (a float32 row per sample).
PARAMS = (
    "jitter",  # 1: apply the colour jitter
    "brightness",  # factors of torchvision's ColorJitter (1 = unchanged) ...
    "contrast",
    "saturation",
    "hue",  # ... and the hue shift, in turns
    "order0",  # the jitter's random order: the operation (0-3) at each position
    "order1",
    "order2",
    "order3",
    "grayscale",  # 1: to grey (3 equal channels)
    "blur_sigma",  # > 0: Gaussian blur with this sigma, in 224-px pixels (0: none)
    "solarize",  # 1: invert the values >= 0.5
)
COLUMN = {name: i for i, name in enumerate(PARAMS)}
_PHOTOMETRIC_UNIFORMS = 13  # jitter, 3 factors, hue, 4 order keys, grey, blur, sigma, solarise


@dataclass(frozen=True)
class ViewSpec:
    """One view's pipeline; `jitter` is ColorJitter's (brightness, contrast, saturation,
    hue) strengths, `blur_sigma` the range of the blur's sigma at 224 px."""

    size: int  # output side in pixels
    crop: CropConfig
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.2, 0.1)
    jitter_prob: float = 0.8
    grayscale_prob: float = 0.2
    blur_prob: float = 0.0
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    solarize_prob: float = 0.0


def draw_view(
    seed: int, epoch: int, index: int, view: int, height: int, width: int, spec: ViewSpec
) -> tuple[tuple[int, int, int, int, bool], np.ndarray]:
    """View `view` of sample `index` in `epoch`: its crop box (x0, y0, w, h, flip) in a
    height x width source and its photometric draws (float32, one value per `PARAMS`)."""
    u = seeds.rng(seed, "views", epoch, index, view).random(CROP_UNIFORMS + _PHOTOMETRIC_UNIFORMS)
    box = crop_box(u[:CROP_UNIFORMS], height, width, spec.crop)
    return box, photometric_params(u[CROP_UNIFORMS:], spec)


def photometric_params(u: np.ndarray, spec: ViewSpec) -> np.ndarray:
    """Uniforms -> a `PARAMS` row: factors in [max(0, 1 - s), 1 + s], the hue shift in
    [-h, h], the order a random permutation (argsort of 4 uniforms)."""
    b, c, s, h = spec.jitter
    row = np.zeros(len(PARAMS), np.float32)
    row[COLUMN["jitter"]] = u[0] < spec.jitter_prob
    for k, strength in enumerate((b, c, s)):
        low = max(0.0, 1.0 - strength)
        row[COLUMN["brightness"] + k] = low + (1.0 + strength - low) * u[1 + k]
    row[COLUMN["hue"]] = -h + 2 * h * u[4]
    row[COLUMN["order0"] : COLUMN["order3"] + 1] = np.argsort(u[5:9], kind="stable")
    row[COLUMN["grayscale"]] = u[9] < spec.grayscale_prob
    lo, hi = spec.blur_sigma
    row[COLUMN["blur_sigma"]] = (lo + (hi - lo) * u[11]) if u[10] < spec.blur_prob else 0.0
    row[COLUMN["solarize"]] = u[12] < spec.solarize_prob
    return row
