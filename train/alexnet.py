"""The AlexNet of DeepCluster and of the paper: BatchNorm after every conv, optional Sobel.

conv 96-256-384-384-256 with kernels 11/5/3/3/3, max-pools 3/2 after conv1, conv2 and
conv5, then fc6/fc7 (`classifier_width` wide, 4096 in the paper). The model takes RGB
in [0, 1] (or uint8) and normalises it itself, so every stage feeds it the same way.

Small inputs: at 224 px conv1 has stride 4 and the maps are 55/27/13/13/13 -> 6 after
pool5. The same stride at 64 px would leave a 1x1 map after pool5, and at 32 px no
map at all, so `conv1_stride` defaults to 4 for inputs >= 128 px, 2 for >= 64 px and
1 below, with "same" padding (5) for strides 1 and 2. At 64 and 32 px that gives maps
32/15/7/7/7 -> 3 after pool5. fc6 takes whatever pool5 gives (256 * 6 * 6 at 224,
256 * 3 * 3 at 64 and 32). docs/checkpoints.md lists the shapes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sslx.train.backbone import Backbone
from sslx.train.model import _CHANNELS, _KERNELS, _POOLED, CONV_LAYERS, ModelConfig


class AlexNet(Backbone):
    """Trunk conv1..conv5 plus fc6/fc7; method heads live in the methods, not here."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        config = config.resolved()
        self.config = config
        in_channels = self.init_input(config)
        self.convs = nn.ModuleDict()
        for i, (name, out, k) in enumerate(zip(CONV_LAYERS, _CHANNELS, _KERNELS, strict=True)):
            stride = config.conv1_stride if i == 0 else 1
            padding = config.conv1_padding if i == 0 else k // 2
            self.convs[name] = nn.Sequential(
                nn.Conv2d(in_channels, out, k, stride=stride, padding=padding),
                nn.BatchNorm2d(out),
                nn.ReLU(inplace=True),
            )
            in_channels = out
        self.pool = nn.MaxPool2d(kernel_size=3, stride=2)
        side = config.spatial_sizes()["pool5"]
        width = config.classifier_width
        self.flat_dim = _CHANNELS[-1] * side * side
        self.embed_dim = width
        self.fc6 = nn.Sequential(nn.Dropout(0.5), nn.Linear(self.flat_dim, width), nn.ReLU(True))
        self.fc7 = nn.Sequential(nn.Dropout(0.5), nn.Linear(width, width))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """DeepCluster's initialisation: He-normal convs, N(0, 0.01) linears, zero biases."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    @property
    def trunk_dim(self) -> int:
        return self.flat_dim

    def classifier_layers(self) -> tuple[nn.Module, ...]:
        return (self.fc6, self.fc7)

    @property
    def units(self) -> dict[str, nn.Module]:
        return dict(self.convs.items())

    def taps(self, images: torch.Tensor, layers=CONV_LAYERS) -> dict[str, torch.Tensor]:
        """ReLU outputs of the requested conv layers (computed only as deep as needed)."""
        self.check_layers(layers)
        last = max(CONV_LAYERS.index(n) for n in layers)
        x, out = self.prepare(images), {}
        for name in CONV_LAYERS[: last + 1]:
            x = self.convs[name](x)
            if name in layers:
                out[name] = x
            if name in _POOLED:
                x = self.pool(x)
        return out

    def trunk(self, images: torch.Tensor) -> torch.Tensor:
        """pool5 output, flattened."""
        x = self.prepare(images)
        for name in CONV_LAYERS:
            x = self.convs[name](x)
            if name in _POOLED:
                x = self.pool(x)
        return torch.flatten(x, 1)

    def forward(self, images: torch.Tensor, final_relu: bool = True) -> torch.Tensor:
        """The fc7 embedding; DeepCluster clusters it before the final ReLU."""
        x = self.fc7(self.fc6(self.trunk(images)))
        return F.relu(x) if final_relu else x
