"""The per-tap pooling every per-layer evaluation sees: the linear probes, the probe's kNN
and k-means (`sslx probe`) and the training monitor (`sslx train --monitor`).

Pooling follows the paper's released probe code (after Zhang et al.): each conv tap is
max-pooled to about 9-10k dimensions before its probe. At 224 px the pools are fixed:

    conv1 96x55x55 -> 6/6 pad 3 -> 96x10x10 = 9600
    conv2 256x27x27 -> 4/4      -> 256x6x6  = 9216
    conv3 384x13x13 -> 3/3 pad 1 -> 384x5x5 = 9600
    conv4 384x13x13 -> 3/3 pad 1 -> 384x5x5 = 9600
    conv5 256x13x13 -> 2/2      -> 256x6x6  = 9216

Other input sizes give other map sides (32/15/7/7/7 at 64 and 32 px), so the rule there
is: max-pool adaptively to the same output grid as at 224 px (10/6/5/5/6 per layer), which
gives the same dimensionality at every input size; a map that is already no larger than
that grid is kept as it is.
"""

from __future__ import annotations

import torch
from torch import nn

from sslx.train.model import ModelConfig

# (layer, map side at 224 px) -> (kernel = stride, padding), as in the paper's code.
PAPER_POOLS = {
    ("conv1", 55): (6, 3),
    ("conv2", 27): (4, 0),
    ("conv3", 13): (3, 1),
    ("conv4", 13): (3, 1),
    ("conv5", 13): (2, 0),
}
# The output side those pools give; the target grid for every other input size.
POOLED_SIDE = {"conv1": 10, "conv2": 6, "conv3": 5, "conv4": 5, "conv5": 6}
# ResNet-18 (no reference protocol): the side that keeps each tap near 9k dimensions,
# 64 x 12 x 12 = 9216, 128 x 8 x 8 = 8192, 256 x 6 x 6 = 9216, 512 x 4 x 4 = 8192.
POOLED_SIDE |= {"stem": 12, "layer1": 12, "layer2": 8, "layer3": 6, "layer4": 4}


def tap_pool(layer: str, side: int) -> nn.Module:
    """The max-pool applied to `layer`'s tap when its map is side x side."""
    if (layer, side) in PAPER_POOLS:
        kernel, padding = PAPER_POOLS[(layer, side)]
        return nn.MaxPool2d(kernel, stride=kernel, padding=padding)
    if side <= POOLED_SIDE[layer]:
        return nn.Identity()
    return nn.AdaptiveMaxPool2d(POOLED_SIDE[layer])


def pooled_shape(layer: str, shape: tuple[int, int, int]) -> tuple[int, int, int]:
    channels, side, _ = shape
    pool = tap_pool(layer, side)
    out = pool(torch.zeros(1, 1, side, side)).shape[-1]
    return channels, out, out


def probe_shapes(model: ModelConfig, layers=None) -> dict[str, tuple[int, int, int]]:
    """The pooled map (C, h, w) each layer's probe sees, for this network geometry."""
    shapes = model.resolved().tap_shapes()
    return {layer: pooled_shape(layer, shapes[layer]) for layer in layers or model.layers}


def probe_dims(model: ModelConfig, layers=None) -> dict[str, int]:
    """Input dimension of each layer's probe for this network geometry."""
    return {n: c * h * w for n, (c, h, w) in probe_shapes(model, layers).items()}


class TapPooling(nn.Module):
    """Conv taps (dict of N x C x H x W) -> pooled, flattened features (dict of N x D)."""

    def __init__(self, model: ModelConfig, layers=None) -> None:
        super().__init__()
        shapes = model.resolved().tap_shapes()
        self.layers = tuple(layers or model.layers)
        self.pools = nn.ModuleDict({n: tap_pool(n, shapes[n][1]) for n in self.layers})

    def forward(self, taps: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {n: torch.flatten(self.pools[n](taps[n]), 1) for n in self.layers}
