"""BiGAN's generator G and joint discriminator D, shaped like Donahue et al.'s reference code.

Both work on images in [-1, 1] of side `size` (64 by default, any power of two >= 8) and
on latents z of `latent_dim` dimensions. As in the reference (`deconvnet_64`,
`convnet_64` and `apply_cond` in its net.py):

- every conv and deconv is 5x5 with stride 2, without bias where BatchNorm follows;
- G is DCGAN's: z -> linear -> BatchNorm over the flat vector -> ReLU -> 4x4 map of 8w
  channels (w = `width`, 64: 4x4x512 at 64 px) -> deconvs halving the channels and
  doubling the side, each with BatchNorm + ReLU -> a last deconv to 3 channels -> tanh;
- D's image path is convs doubling the channels (w, 2w, 4w, 8w at 64 px) down to 4x4,
  LeakyReLU 0.2, BatchNorm except on the first layer, then a linear layer to one logit;
- z enters every layer after the first, in G and in D, as a per-sample, per-channel bias
  computed linearly from z and added before BatchNorm. This is how the reference fuses z
  with the conv net: D is a joint network on (x, z), not two nets glued at the end;
- weights are N(0, 0.02) (DCGAN's), the z projections N(0, 0.02 * 5 * 5), the
  reference's scaling, which puts their bias on the scale of a 5x5 conv's output.
"""

from __future__ import annotations

from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

from sslx.train.methods.bigan.spec import START_SIDE, stride2_steps

KERNEL = 5
INIT_STD = 0.02


def _conv(cin: int, cout: int, up: bool, bias: bool) -> nn.Module:
    """5x5 stride-2 conv that halves the side, or deconv that doubles it ("same" padding)."""
    if up:
        return nn.ConvTranspose2d(cin, cout, KERNEL, 2, KERNEL // 2, output_padding=1, bias=bias)
    return nn.Conv2d(cin, cout, KERNEL, 2, KERNEL // 2, bias=bias)


class Block(nn.Module):
    """(de)conv -> + linear(z) as a per-channel bias -> BatchNorm -> activation."""

    def __init__(self, cin: int, cout: int, latent_dim: int, up: bool) -> None:
        super().__init__()
        self.conv = _conv(cin, cout, up, bias=False)
        self.z_bias = nn.Linear(latent_dim, cout, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = nn.ReLU() if up else nn.LeakyReLU(0.2)

    def forward(self, h: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = self.conv(h) + self.z_bias(z)[:, :, None, None]
        return self.act(self.bn(h))


class Generator(nn.Module):
    """z (N, latent_dim) -> images (N, 3, size, size) in [-1, 1]."""

    def __init__(self, latent_dim: int = 200, size: int = 64, width: int = 64) -> None:
        super().__init__()
        steps = stride2_steps(size)
        channels = [width * 2 ** (steps - 1 - i) for i in range(steps)]  # 8w, 4w, 2w, w
        self.start_channels = channels[0]
        flat = channels[0] * START_SIDE * START_SIDE
        self.fc = nn.Linear(latent_dim, flat, bias=False)
        self.fc_bn = nn.BatchNorm1d(flat)  # over the flat vector, as the reference
        self.blocks = nn.ModuleList(
            Block(cin, cout, latent_dim, up=True) for cin, cout in pairwise(channels)
        )
        self.out = _conv(channels[-1], 3, up=True, bias=True)
        _init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.fc_bn(self.fc(z)))
        h = h.view(-1, self.start_channels, START_SIDE, START_SIDE)
        for block in self.blocks:
            h = block(h, z)
        return torch.tanh(self.out(h))


class JointDiscriminator(nn.Module):
    """(images in [-1, 1], z) -> one logit per pair: > 0 says "a real image and its code"."""

    def __init__(self, latent_dim: int = 200, size: int = 64, width: int = 64) -> None:
        super().__init__()
        steps = stride2_steps(size)
        channels = [width * 2**i for i in range(steps)]  # w, 2w, 4w, 8w
        self.first = _conv(3, channels[0], up=False, bias=True)  # no BatchNorm, no z
        self.blocks = nn.ModuleList(
            Block(cin, cout, latent_dim, up=False) for cin, cout in pairwise(channels)
        )
        self.logit = nn.Linear(channels[-1] * START_SIDE * START_SIDE, 1)
        _init(self)

    def forward(self, images: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.first(images), 0.2)
        for block in self.blocks:
            h = block(h, z)
        return self.logit(h.flatten(1)).squeeze(1)


def _init(net: nn.Module) -> None:
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, INIT_STD)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    for m in net.modules():
        if isinstance(m, Block):
            nn.init.normal_(m.z_bias.weight, 0.0, INIT_STD * KERNEL * KERNEL)
