"""What both backbones share, and the one place a backbone is built from its record.

A backbone (`AlexNet`, `ResNet18`) takes RGB as uint8 or in [0, 1] and normalises it
itself (`prepare`, with the optional frozen Sobel front end), names its probe taps
(`units`: layer name -> module, the taps' order), returns them (`taps`) and its embedding
(`forward`, `embed_dim` wide) and its pooled conv features (`trunk`, `trunk_dim` wide),
and can keep layers fixed (`freeze`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sslx.errors import InputError
from sslx.train.model import ModelConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Grey level before the Sobel filters: the plain mean of the three normalised channels, a
# 1x1 conv with every weight 1/3 (facebookresearch/deepcluster models/alexnet.py).
_GREY = torch.tensor([1.0, 1.0, 1.0]) / 3


class Backbone(nn.Module):
    """The shared input handling and freezing; subclasses set `units` and `embed_dim`."""

    config: ModelConfig
    embed_dim: int
    any_input_size = False  # True: takes inputs of any size (global average pooling)

    def init_input(self, config: ModelConfig) -> int:
        """Register the normalisation (and Sobel) buffers; returns the input channels."""
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        if config.sobel:
            self.register_buffer("sobel_weight", _sobel_weight())
        return 2 if config.sobel else 3

    @property
    def units(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 or [0, 1] RGB (N, 3, H, W) -> normalised input (Sobel-filtered if enabled)."""
        # In the parameters' float type: float32, or float64 for the golden test.
        x = images.to(self.mean.dtype) / 255.0 if images.dtype == torch.uint8 else images
        x = (x - self.mean) / self.std
        if self.config.sobel:
            grey = (x * _GREY.to(x).view(1, 3, 1, 1)).sum(1, keepdim=True)
            x = F.conv2d(grey, self.sobel_weight, padding=1)
        return x

    def check_layers(self, layers) -> None:
        unknown = [n for n in layers if n not in self.units]
        if unknown:
            raise InputError(f"unknown layer(s) {unknown}; the taps are {', '.join(self.units)}")

    def freeze(self, layers: tuple[str, ...]) -> None:
        """Fix `layers`: no gradients, and BatchNorm keeps its statistics in training."""
        self.check_layers(layers)
        self.frozen = tuple(layers)
        for name in self.frozen:
            self.units[name].requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True) -> Backbone:
        super().train(mode)
        for name in getattr(self, "frozen", ()):
            self.units[name].eval()
        return self

    @property
    def trunk_dim(self) -> int:
        """Width of `trunk`'s output, the pooled conv features (AlexNet's flattened pool5,
        ResNet's global average pool): the encoder output the multi-view methods project."""
        raise NotImplementedError

    def classifier_layers(self) -> tuple[nn.Module, ...]:
        """The layers after the trunk (AlexNet's fc6, fc7), which the multi-view methods
        replace by their projection heads."""
        return ()

    def first_conv(self) -> nn.Conv2d:
        """The first convolution (its filters are what `sslx viz filters` draws)."""
        return next(m for m in self.modules() if isinstance(m, nn.Conv2d))


def _sobel_weight() -> torch.Tensor:
    gx = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])
    return torch.stack([gx, gx.t()]).unsqueeze(1)  # (2, 1, 3, 3): x and y gradients


def build_backbone(config: ModelConfig) -> Backbone:
    """The backbone a model record describes (untrained: its initialisation)."""
    if config.arch == "resnet18":
        from sslx.train.resnet import ResNet18

        return ResNet18(config)
    from sslx.train.alexnet import AlexNet

    return AlexNet(config)
