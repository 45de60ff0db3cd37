"""Neural style transfer (Gatys, Ecker & Bethge, CVPR 2016) with sslx's frozen networks, for
`sslx viz style`: the content image, the style image, then one result per network.

The losses (docs/fidelity.md, "Style transfer", compares them with the paper and the
PyTorch neural style tutorial):

- style: the Gram matrix of every tap (AlexNet conv1..conv5, ResNet-18 stem..layer4),
  divided by the tap's number of positions so that images of two sizes compare; per tap
  the squared error to the style image's Gram relative to that Gram's own sum of squares;
  the taps weighted equally (the paper's w_l = 1/5);
- content: the squared error to the content image's features at conv4 (ResNet-18: layer3,
  its fourth tap too), relative to their sum of squares.

Relative errors, where the paper's are absolute: the paper rescaled VGG so that every
filter's mean activation is 1, which made its layers and its alpha/beta comparable; here
networks of any activation scale (a random one beside trained ones) are drawn side by side
with one pair of weights, and a relative error gives each the same balance.

The taps are what `Backbone.taps` returns: after BatchNorm and ReLU. The image is
optimised as RGB in [0, 1], the input the networks were trained on; each network
normalises it itself (`Backbone.prepare`: ImageNet mean and std, Sobel if it has one).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from sslx.atomic import atomic_write
from sslx.common.labelled import read_rgb
from sslx.errors import InputError
from sslx.probe.run import Network
from sslx.train.backbone import Backbone
from sslx.train.model import LAYERS

# Content taps: AlexNet's conv4 as in the paper's figures (VGG's conv4_2); ResNet-18's
# fourth tap of five, the same depth in the network's own naming.
CONTENT_LAYER = {"alexnet": "conv4", "resnet18": "layer3"}
MARGIN = 4  # white pixels around each picture of the figure
TITLE_PX = 14  # title font size; the title strip is twice as tall


@dataclass(frozen=True)
class Targets:
    """What a network sees in the two images: the content features and the style Grams."""

    content_layer: str
    content: torch.Tensor  # (1, C, H, W) at content_layer
    grams: dict[str, torch.Tensor]  # style layer -> (1, C, C)


def load_image(path: Path, flag: str, size: int, min_side: int) -> torch.Tensor:
    """An image file as float RGB in [0, 1], (1, 3, h, w) with its longer side `size`;
    unreadable, undecodable, huge (`crops.MAX_PIXELS`) or small files are an InputError."""
    try:
        image = read_rgb(str(path))  # the labelled-data decode path and its pixel limit
    except InputError as e:
        raise InputError(f"{flag}: {e}") from None
    height, width = image.shape[1:]
    scale = size / max(height, width)
    shape = (max(1, round(height * scale)), max(1, round(width * scale)))
    if min(height, width) < min_side or min(shape) < min_side:
        raise InputError(
            f"{flag}: {path} is too small ({width}x{height}, {shape[1]}x{shape[0]} at --size "
            f"{size}); style transfer needs at least {min_side} px per side"
        )
    return resize(image[None].float().contiguous() / 255.0, shape)


def check_fits(net: Network, image: torch.Tensor, flag: str, size: int) -> None:
    """Refuse an image too small for the network's deepest tap: AlexNet's conv5 is followed
    by a 3x3 max-pool in `taps`, so at conv1 stride 4 each side needs 63 px. (ResNet-18's
    padded stages leave a map at any size.)"""
    config = net.model.config
    if net.model.any_input_size:
        return
    for side in image.shape[-2:]:
        at = replace(config, input_size=int(side))  # this side, the network's conv1 stride
        if min(at.spatial_sizes().values()) < 1:
            h, w = image.shape[-2:]
            raise InputError(
                f"{flag} is {w}x{h} px at --size {size}, too small for {net.name} "
                f"({config.arch} trained at {config.input_size} px, conv1 stride "
                f"{config.conv1_stride}); use a larger --size"
            )


def resize(image: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """(1, 3, H, W) -> (1, 3, *shape), antialiased so that shrinking does not alias."""
    if tuple(image.shape[-2:]) == tuple(shape):
        return image
    out = F.interpolate(image, size=shape, mode="bilinear", antialias=True, align_corners=False)
    return out.clamp(0.0, 1.0)


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, C): F Fᵀ over positions, divided by the H * W positions, so
    it does not grow with the image and the style image may be another size."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (h * w)


def style_layers(model: Backbone) -> tuple[str, ...]:
    """Every tap of the network: conv1..conv5, or stem..layer4."""
    return LAYERS[model.config.arch]


def targets(model: Backbone, content: torch.Tensor, style: torch.Tensor) -> Targets:
    """The content image's features and the style image's Gram matrices (no gradient)."""
    layer = CONTENT_LAYER[model.config.arch]
    with torch.no_grad():
        content_features = model.taps(content, (layer,))[layer]
        grams = {n: gram_matrix(f) for n, f in model.taps(style, style_layers(model)).items()}
    return Targets(layer, content_features, grams)


def losses(
    model: Backbone, image: torch.Tensor, target: Targets
) -> tuple[torch.Tensor, torch.Tensor]:
    """(content loss, style loss) of `image` against `target`, each relative to the
    target's own size (sum of squares), so that networks of any activation scale, a random
    one too, weigh style against content alike."""
    wanted = tuple(dict.fromkeys((*target.grams, target.content_layer)))
    taps = model.taps(image, wanted)
    content = _relative(taps[target.content_layer], target.content)
    per_layer = [_relative(gram_matrix(taps[n]), a) for n, a in target.grams.items()]
    return content, torch.stack(per_layer).mean()


def _relative(value: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (value - target).square().sum() / target.square().sum().clamp_min(1e-12)


def stylise(
    model: Backbone,
    content: torch.Tensor,
    style: torch.Tensor,
    steps: int,
    style_weight: float,
    content_weight: float,
) -> tuple[torch.Tensor, list[float]]:
    """The content image repainted in the style by `steps` L-BFGS iterations, started from
    the content image, and the total loss at each evaluation (the first: before any step)."""
    model = model.eval().requires_grad_(False)  # only the image is optimised
    target = targets(model, content, style)
    # Contiguous: L-BFGS flattens the gradient with view(), which a decoded image's
    # channels-last strides would refuse.
    image = content.detach().clone(memory_format=torch.contiguous_format).requires_grad_(True)
    # Zero tolerances: no early stop, so --steps is the number of iterations (no line
    # search: one evaluation per iteration) and a run's length does not depend on its data.
    optimiser = torch.optim.LBFGS(
        [image], max_iter=steps, tolerance_grad=0.0, tolerance_change=0.0, history_size=100
    )
    history: list[float] = []

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        content_loss, style_loss = losses(model, image, target)
        total = content_weight * content_loss + style_weight * style_loss
        total.backward()
        history.append(total.item())
        return total

    optimiser.step(closure)
    return image.detach().clamp(0.0, 1.0), history


def save_figure(panels: list[tuple[str, torch.Tensor]], out: Path) -> tuple[int, int]:
    """Titled pictures side by side, each (1, 3, h, w) in [0, 1] and fitted into the first's
    h x w box, written to `out` as a PNG; returns its (width, height)."""
    from PIL import Image, ImageDraw, ImageFont

    height, width = panels[0][1].shape[-2:]
    cell_w, title_h = width + 2 * MARGIN, 2 * TITLE_PX
    sheet = Image.new("RGB", (cell_w * len(panels), title_h + height + MARGIN), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=TITLE_PX)  # Pillow's own font: no system fonts
    for i, (title, picture) in enumerate(panels):
        fitted = _fit(picture, height, width)
        left = i * cell_w + MARGIN + (width - fitted.shape[-1]) // 2
        top = title_h + (height - fitted.shape[-2]) // 2
        sheet.paste(Image.fromarray(_to_uint8(fitted)), (left, top))
        text = _shorten(draw, title, font, width)
        x = i * cell_w + MARGIN + (width - draw.textlength(text, font=font)) / 2
        draw.text((x, (title_h - TITLE_PX) / 2), text, fill="black", font=font)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out, "wb") as f:
        sheet.save(f, format="PNG")
    return sheet.size


def _fit(picture: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Shrink or enlarge to fit inside height x width, keeping the aspect ratio."""
    h, w = picture.shape[-2:]
    scale = min(height / h, width / w)
    shape = (min(height, max(1, round(h * scale))), min(width, max(1, round(w * scale))))
    return resize(picture, shape)


def _to_uint8(picture: torch.Tensor):
    # torchvision's save_image rounding: x * 255 + 0.5, truncated.
    pixels = picture[0].mul(255).add(0.5).clamp(0, 255).to(torch.uint8)
    return pixels.permute(1, 2, 0).contiguous().numpy()


def _shorten(draw, text: str, font, width: int) -> str:
    """`text`, cut and ended with an ellipsis where it is wider than the picture."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"
