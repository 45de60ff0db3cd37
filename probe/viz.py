"""A network's conv1 filters as an image grid (the paper's Figure 3), for `sslx viz filters`.

RGB networks show each 3 x 11 x 11 filter as a colour tile. Sobel networks see only
grey-level gradients, so their 2-channel filters are shown as the single grey-level
filter they amount to: conv1 composed with the Sobel x / y kernels (13 x 13).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont
from torchvision.utils import make_grid

from sslx.atomic import atomic_write
from sslx.train.backbone import Backbone


def sobel_equivalent(weight: torch.Tensor, sobel: torch.Tensor) -> torch.Tensor:
    """(out, 2, k, k) filters on Sobel x/y -> (out, 1, k+2, k+2) filters on the grey image.

    Cross-correlating with sobel then with weight equals one cross-correlation with their
    composition; read it off as the flipped response to a single bright pixel."""
    k = weight.shape[-1]
    side = 2 * k + 3
    impulse = torch.zeros(1, 1, side, side)
    impulse[0, 0, side // 2, side // 2] = 1.0
    response = F.conv2d(F.conv2d(impulse, sobel, padding=1), weight)  # out x (k+4) x (k+4)
    return response[:, :, 1 : k + 3, 1 : k + 3].flip(-1, -2).permute(1, 0, 2, 3)


def conv1_filters(model: Backbone) -> torch.Tensor:
    """The first conv's weights as images, (out, channels, k, k), channels 3 (RGB) or 1
    (grey): AlexNet's conv1, ResNet-18's stem conv."""
    weight = model.first_conv().weight.detach().float().cpu()
    if model.config.sobel:
        return sobel_equivalent(weight, model.sobel_weight.float().cpu())
    return weight


def filter_grid(filters: torch.Tensor, columns: int = 12, zoom: int = 4) -> torch.Tensor:
    """Each filter min-max scaled on its own, tiled `columns` wide, enlarged `zoom` times."""
    grid = make_grid(
        filters, nrow=columns, padding=1, normalize=True, scale_each=True, pad_value=1.0
    )
    return F.interpolate(grid[None], scale_factor=zoom, mode="nearest")[0]


def filters_title(name: str, model: Backbone) -> str:
    """What the picture shows: whose filters, how many, of what size, on what input."""
    weight = model.first_conv().weight
    count, k = weight.shape[0], weight.shape[-1]
    seen = "the Sobel gradients, shown as grey filters" if model.config.sobel else "RGB"
    return f"conv1 filters of {name}: {count} of {k}x{k} on {seen}"


def titled(image: Image.Image, title: str, size: int = 14) -> Image.Image:
    """`image` under a white band holding `title`, widened if the title needs it."""
    font = ImageFont.load_default(size=size)
    left, top, right, bottom = font.getbbox(title)
    band = bottom - top + size
    width = max(image.width, right - left + size)
    canvas = Image.new("RGB", (width, image.height + band), "white")
    ImageDraw.Draw(canvas).text((size // 2, size // 2 - top), title, fill="black", font=font)
    canvas.paste(image, ((width - image.width) // 2, band))
    return canvas


def filters_image(
    model: Backbone, columns: int = 12, zoom: int = 4, title: str = ""
) -> Image.Image:
    """The conv1 filter grid of `model` as an RGB image, under `title` if given."""
    grid = filter_grid(conv1_filters(model), columns, zoom)
    pixels = grid.mul(255).add(0.5).clamp(0, 255).byte().permute(1, 2, 0).numpy()
    image = Image.fromarray(pixels)
    return titled(image, title) if title else image


def save_filters(
    model: Backbone, out: Path, columns: int = 12, zoom: int = 4, title: str = ""
) -> tuple[int, int]:
    """Write `filters_image` to `out` as a PNG; returns its (width, height)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    image = filters_image(model, columns, zoom, title)
    with atomic_write(out, "wb") as f:
        image.save(f, format="PNG")
    return image.width, image.height
