"""The views' photometric augmentation, batched on the device, from the draws the loader
made (`sslx.common.views`): colour jitter in a random order, grayscale, Gaussian blur,
solarisation. Each operation follows torchvision's tensor implementation (ColorJitter,
RandomGrayscale, GaussianBlur, RandomSolarize), applied per sample with its own factors.

The blur's sigma is drawn in pixels of a 224-px view (the papers' size) and scaled to the
view's size, so a 32-px view is blurred as its 224-px version would be; the kernel covers
±3 sigma. docs/fidelity.md records both choices.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from sslx.common.views import COLUMN

_GREY = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale weights
REFERENCE_SIZE = 224  # the size at which the papers give the blur's sigma


def photometric(images: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """uint8 (b, 3, S, S) views and their `PARAMS` rows -> float32 RGB in [0, 1]."""
    with torch.autocast(images.device.type, enabled=False):
        x = images.float() / 255.0
        x = colour_jitter(x, params)
        grey = params[:, COLUMN["grayscale"]] > 0
        x = torch.where(_per_sample(grey), grayscale(x).expand_as(x), x)
        x = gaussian_blur(x, params[:, COLUMN["blur_sigma"]] * x.shape[-1] / REFERENCE_SIZE)
        solarize = _per_sample(params[:, COLUMN["solarize"]] > 0)
        return torch.where(solarize & (x >= 0.5), 1.0 - x, x)


def colour_jitter(x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """ColorJitter: brightness, contrast, saturation and hue in each sample's own order,
    on the samples whose "jitter" draw is 1."""
    on = params[:, COLUMN["jitter"]] > 0
    operations = (_brightness, _contrast, _saturation, _hue)
    for position in range(4):
        op_at = params[:, COLUMN["order0"] + position].long()
        for op, apply in enumerate(operations):
            chosen = torch.nonzero(on & (op_at == op)).flatten()
            if len(chosen):
                factor = params[chosen, COLUMN["brightness"] + op].view(-1, 1, 1, 1)
                x = x.index_copy(0, chosen, apply(x[chosen], factor))
    return x


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """(b, 3, H, W) -> (b, 1, H, W) luma."""
    weights = torch.tensor(_GREY, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * weights).sum(1, keepdim=True)


def _brightness(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return (x * f).clamp(0, 1)


def _contrast(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    mean = grayscale(x).mean(dim=(1, 2, 3), keepdim=True)
    return (f * x + (1 - f) * mean).clamp(0, 1)


def _saturation(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return (f * x + (1 - f) * grayscale(x)).clamp(0, 1)


def _hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    h, s, v = rgb_to_hsv(x)
    return hsv_to_rgb(torch.remainder(h + shift[:, 0], 1.0), s, v)


def rgb_to_hsv(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(b, 3, H, W) RGB in [0, 1] -> hue in turns, saturation, value, each (b, H, W)."""
    r, g, b = x.unbind(1)
    maxc, minc = x.max(1).values, x.min(1).values
    chroma = maxc - minc
    s = chroma / torch.where(maxc == 0, torch.ones_like(maxc), maxc)
    safe = torch.where(chroma == 0, torch.ones_like(chroma), chroma)
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    is_r, is_g = maxc == r, (maxc == g) & (maxc != r)
    h = torch.where(is_r, bc - gc, torch.where(is_g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.where(chroma == 0, torch.zeros_like(h), h)
    return torch.remainder(h / 6.0, 1.0), s, maxc


def hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Inverse of `rgb_to_hsv`: (b, H, W) each -> (b, 3, H, W)."""
    sector = torch.floor(h * 6.0)
    f = h * 6.0 - sector
    sector = sector.long() % 6
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    # (r, g, b) in each of the six sectors of the hue circle.
    table = torch.stack(
        [
            torch.stack([v, t, p], 1),
            torch.stack([q, v, p], 1),
            torch.stack([p, v, t], 1),
            torch.stack([p, q, v], 1),
            torch.stack([t, p, v], 1),
            torch.stack([v, p, q], 1),
        ],
        0,
    )  # (6, b, 3, H, W)
    index = sector.unsqueeze(0).unsqueeze(2).expand(1, -1, 3, -1, -1)
    return table.gather(0, index).squeeze(0)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur sample i with a separable Gaussian of sigma[i] pixels (0: unchanged); reflect
    padding, as torchvision's GaussianBlur."""
    blurred = torch.nonzero(sigma > 0).flatten()
    if not len(blurred):
        return x
    s = sigma[blurred].clamp_min(1e-3)
    side = min(x.shape[-2:])
    radius = min(max(1, math.ceil(3 * float(s.max()))), side - 1)
    if radius < 1:
        return x
    offsets = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-(offsets.view(1, -1) ** 2) / (2 * s.view(-1, 1) ** 2))
    kernel = (kernel / kernel.sum(1, keepdim=True)).repeat_interleave(3, 0)  # (3n, k)
    n, k = len(blurred), 2 * radius + 1
    y = x[blurred].reshape(1, 3 * n, *x.shape[-2:])
    y = F.conv2d(
        F.pad(y, (radius, radius, 0, 0), mode="reflect"), kernel.view(3 * n, 1, 1, k), groups=3 * n
    )
    y = F.conv2d(
        F.pad(y, (0, 0, radius, radius), mode="reflect"), kernel.view(3 * n, 1, k, 1), groups=3 * n
    )
    return x.index_copy(0, blurred, y.view(n, 3, *x.shape[-2:]))


def _per_sample(mask: torch.Tensor) -> torch.Tensor:
    return mask.view(-1, 1, 1, 1)
