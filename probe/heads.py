"""The linear probes (per-channel BatchNorm without affine, then a linear layer), as in the
paper's released probe code (yukimasano/linear-probes), on the pooled taps of
`sslx.train.taps` (the pooling the paper's code applies before its probes)."""

from __future__ import annotations

import torch
from torch import nn


class Probe(nn.Module):
    """BatchNorm2d(C, affine=False) on the pooled C x h x w map, then one linear layer on
    the flattened map, Xavier-uniform (gain 1) with zero bias: yukimasano/linear-probes
    eval_linear_probes.py (its `Conv2d` whose kernel covers the whole map is this linear
    layer). The features arrive flattened (the cache stores rows) and are reshaped here."""

    def __init__(self, shape: tuple[int, int, int], num_classes: int) -> None:
        super().__init__()
        self.shape = tuple(shape)
        self.norm = nn.BatchNorm2d(self.shape[0], affine=False)
        self.linear = nn.Linear(self.shape[0] * self.shape[1] * self.shape[2], num_classes)
        nn.init.xavier_uniform_(self.linear.weight, gain=1.0)
        nn.init.zeros_(self.linear.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        maps = features.float().reshape(len(features), *self.shape)
        return self.linear(torch.flatten(self.norm(maps), 1))


class LinearProbes(nn.Module):
    """One `Probe` per layer, on pooled features (dict of N x C*h*w rows); `shapes` gives
    each layer's pooled map (C, h, w)."""

    def __init__(self, shapes: dict[str, tuple[int, int, int]], num_classes: int) -> None:
        super().__init__()
        self.probes = nn.ModuleDict(
            {layer: Probe(shape, num_classes) for layer, shape in shapes.items()}
        )

    @property
    def layers(self) -> tuple[str, ...]:
        return tuple(self.probes)

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {n: self.probes[n](features[n]) for n in self.probes}
