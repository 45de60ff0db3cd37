"""ResNet-18 (He et al. 2016) as an sslx backbone: torchvision's network and
initialisation, without its classifier; its embedding is the 512-d global average pool.

Below 128 px the stem is the small-input one of SimCLR's CIFAR-10 ResNet
(google-research/simclr `resnet.py`, `cifar_stem`): a 3x3 stride-1 conv and no max-pool,
so a 32-px input keeps 32x32 maps through layer1 (then 16, 8, 4). From 128 px on it is
torchvision's 7x7 stride-2 conv and 3x3 stride-2 max-pool. The probe taps are the stem's
output and each stage's (`stem`, `layer1`..`layer4`).
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn

from sslx.train.backbone import Backbone
from sslx.train.model import RESNET_LAYERS, SMALL_STEM_BELOW, ModelConfig


class ResNet18(Backbone):
    any_input_size = True  # global average pooling: DINO's small local views fit

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config.resolved()
        in_channels = self.init_input(self.config)
        net = torchvision.models.resnet18(weights=None)  # torchvision's init; no download
        if self.config.input_size < SMALL_STEM_BELOW:
            conv = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            self.stem = nn.Sequential(conv, net.bn1, net.relu)
        else:
            conv = net.conv1
            if in_channels != 3:  # Sobel: two input channels
                conv = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
                nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            self.stem = nn.Sequential(conv, net.bn1, net.relu, net.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = (
            net.layer1,
            net.layer2,
            net.layer3,
            net.layer4,
        )
        self.embed_dim = 512

    @property
    def trunk_dim(self) -> int:
        return 512

    @property
    def units(self) -> dict[str, nn.Module]:
        return {name: getattr(self, name) for name in RESNET_LAYERS}

    def taps(self, images: torch.Tensor, layers=RESNET_LAYERS) -> dict[str, torch.Tensor]:
        """Outputs of the requested stages (computed only as deep as needed)."""
        self.check_layers(layers)
        last = max(RESNET_LAYERS.index(n) for n in layers)
        x, out = self.prepare(images), {}
        for name in RESNET_LAYERS[: last + 1]:
            x = getattr(self, name)(x)
            if name in layers:
                out[name] = x
        return out

    def trunk(self, images: torch.Tensor) -> torch.Tensor:
        """layer4's output, globally average-pooled: (N, 512)."""
        x = self.prepare(images)
        for name in RESNET_LAYERS:
            x = getattr(self, name)(x)
        return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)

    def forward(self, images: torch.Tensor, final_relu: bool = True) -> torch.Tensor:
        """The embedding (already non-negative: the last block ends in a ReLU)."""
        return self.trunk(images)
