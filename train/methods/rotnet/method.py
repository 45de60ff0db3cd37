"""RotNet (Gidaris, Singh & Komodakis, ICLR 2018): predict which of 4 rotations was applied."""

from __future__ import annotations

import torch
from torch import nn

from sslx.train.backbone import Backbone
from sslx.train.batches import Batch
from sslx.train.losses import accuracy, cross_entropy
from sslx.train.methods.base import Method, StepOutput
from sslx.train.methods.rotnet.spec import SPEC


def rotate_batch(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image in all 4 rotations (0, 90, 180, 270 degrees counter-clockwise).

    Returns the 4N images, grouped by rotation, and labels 0-3 (rotation / 90 degrees),
    as in Gidaris et al. (2018).
    """
    n = images.shape[0]
    rotated = torch.cat([torch.rot90(images, k, dims=(2, 3)) for k in range(4)])
    labels = torch.arange(4, device=images.device).repeat_interleave(n)
    return rotated, labels


class RotNet(Method):
    """The RotNet plug-in: a linear head on fc7 classifies the rotation."""

    spec = SPEC

    def __init__(self, backbone: Backbone, options: object = None) -> None:
        super().__init__(backbone, options)
        self.head = nn.Linear(backbone.embed_dim, 4)
        nn.init.normal_(self.head.weight, 0.0, 0.01)
        nn.init.zeros_(self.head.bias)

    def forward(self, images: torch.Tensor, batch: Batch) -> StepOutput:
        rotated, labels = rotate_batch(images)
        logits = self.head(self.backbone(rotated))
        loss = cross_entropy(logits, labels)
        return StepOutput(loss, {SPEC.pretext.metric: accuracy(logits, labels)})
